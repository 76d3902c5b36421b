"""The decision webhook (controller/canary_controller/notify.py), against a real HTTP receiver.

The receiver is the tests' stand-in HTTP server (pytest-httpserver, threaded) on 127.0.0.1: it
answers with scripted status codes, or hangs until released, and records every request. Backoffs are a few
milliseconds through the Notifier's constructor; the tests wait on events with timeouts, and
assert only lower bounds on time, so a slow machine cannot fail them.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from werkzeug import Request, Response

from canary_common.registry import RolloutState
from canary_controller import notify
from canary_controller.analysis.config import ConfigError
from canary_controller.loop import Controller
from canary_controller.settings import load_settings
from support.procs import free_port

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "controller" / "analysis.yaml"

WAIT_S = 10.0  # upper bound for anything that should take milliseconds


class Receiver:
    """Records POSTs to /hook on the stand-in server; answers `script` in order (then 200), or
    hangs while `hang` is set."""

    def __init__(self, standin, script=()):
        self.script = list(script)
        self.requests: list[dict] = []
        self.cond = threading.Condition()
        self.hang = threading.Event()
        self.release = threading.Event()
        standin.expect_request("/hook", method="POST").respond_with_handler(self.answer)
        self.url = standin.url_for("/hook")

    def answer(self, request: Request) -> Response:
        with self.cond:
            self.requests.append({"at": time.monotonic(), "body": request.get_json(), "headers": dict(request.headers)})
            self.cond.notify_all()
            status = self.script.pop(0) if self.script else 200
        if self.hang.is_set():
            self.release.wait(WAIT_S)
        return Response(status=status)

    def wait_for(self, n: int, timeout: float = WAIT_S) -> list[dict]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.requests) >= n, timeout), (
                f"expected {n} requests, got {len(self.requests)}"
            )
            return list(self.requests)


@pytest.fixture
def receiver(standin):
    made = []

    def make(script=()):
        assert not made, "one receiver per test"
        made.append(Receiver(standin, script))
        return made[-1]

    yield make
    for r in made:
        r.release.set()
    notify.close_all()


@pytest.fixture
def notifier():
    made = []

    def make(url, **kwargs):
        made.append(notify.Notifier(url, **{"backoff_s": 0.01, **kwargs}))
        return made[-1]

    yield make
    for n in made:
        n.close()


def state():
    return RolloutState(production_version="1", canary_version="2", weight=10.0, mode="auto", phase="progressing")


def payload(decision="step_up", summary="10% -> 20%: accuracy holds"):
    return notify.decision_payload(decision, summary, 1_700_000_000.0, "sentiment", state())


def metric(result: str) -> float:
    return REGISTRY.get_sample_value("canary_controller_webhook_deliveries_total", {"result": result}) or 0.0


def test_the_payload_carries_the_decision_the_state_and_an_id(receiver, notifier):
    r = receiver()
    before = metric("delivered")
    n = notifier(r.url, token="s3cret")
    sent = payload()
    n.send(sent)
    (got,) = r.wait_for(1)
    assert n.wait_idle(WAIT_S)
    assert (
        got["body"]
        == sent
        == {
            "delivery_id": sent["delivery_id"],
            "decision": "step_up",
            "model_name": "sentiment",
            "production_version": "1",
            "canary_version": "2",
            "weight": 10.0,
            "phase": "progressing",
            "mode": "auto",
            "summary": "10% -> 20%: accuracy holds",
            "at": 1_700_000_000.0,
            "time": "2023-11-14T22:13:20Z",
        }
    )
    assert len(sent["delivery_id"]) == 32 and payload()["delivery_id"] != sent["delivery_id"]
    assert got["headers"]["Authorization"] == "Bearer s3cret"
    assert got["headers"]["X-Canary-Delivery"] == sent["delivery_id"]
    assert got["headers"]["Content-Type"] == "application/json"
    assert n.counts == {"delivered": 1, "failed": 0, "dropped": 0}
    assert metric("delivered") == before + 1


def test_a_503_then_a_429_are_retried_with_the_same_id_until_delivered(receiver, notifier):
    r = receiver([503, 429])
    n = notifier(r.url)
    sent = payload()
    n.send(sent)
    got = r.wait_for(3)
    assert n.wait_idle(WAIT_S)
    assert [g["body"]["delivery_id"] for g in got] == [sent["delivery_id"]] * 3
    assert "Authorization" not in got[0]["headers"]  # no token set
    assert n.counts == {"delivered": 1, "failed": 0, "dropped": 0}


def test_a_400_is_not_retried(receiver, notifier):
    r = receiver([400])
    before = metric("failed")
    n = notifier(r.url)
    n.send(payload())
    assert n.wait_idle(WAIT_S)
    assert len(r.requests) == 1
    assert n.counts == {"delivered": 0, "failed": 1, "dropped": 0}
    assert metric("failed") == before + 1


def test_attempts_are_capped_and_connection_errors_are_retried(receiver, notifier):
    r = receiver([500] * 10)
    n = notifier(r.url, max_attempts=3)
    n.send(payload())
    assert n.wait_idle(WAIT_S)
    assert len(r.requests) == 3 and n.counts["failed"] == 1

    down = notifier(f"http://127.0.0.1:{free_port()}/hook", max_attempts=2)  # nothing listens: refused
    down.send(payload())
    assert down.wait_idle(WAIT_S)
    assert down.counts == {"delivered": 0, "failed": 1, "dropped": 0}


def test_the_backoff_doubles_up_to_its_cap(receiver, notifier):
    assert [notify.backoff_delay(a, 1.0, 10.0) for a in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    r = receiver([503, 503, 503])
    n = notifier(r.url, backoff_s=0.05)
    n.send(payload())
    got = r.wait_for(4)
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(got)]
    # Each wait is at least its delay (waits never end early), so the gaps grow: 0.05, 0.1, 0.2 s.
    assert all(gap >= delay - 0.005 for gap, delay in zip(gaps, (0.05, 0.1, 0.2), strict=True)), gaps
    assert n.wait_idle(WAIT_S) and n.counts["delivered"] == 1


def test_a_full_queue_drops_the_oldest_waiting_delivery_and_counts_it(receiver, notifier):
    r = receiver()
    r.hang.set()
    before = metric("dropped")
    n = notifier(r.url, queue_size=2)
    first, *rest = [payload(summary=f"decision {i}") for i in range(4)]
    n.send(first)
    r.wait_for(1)  # the first is in flight, so the queue is empty again
    for p in rest:
        n.send(p)
    assert n.counts["dropped"] == 1 and metric("dropped") == before + 1
    r.hang.clear()
    r.release.set()
    got = r.wait_for(3)
    assert n.wait_idle(WAIT_S)
    assert [g["body"]["summary"] for g in got] == ["decision 0", "decision 2", "decision 3"]
    assert n.counts == {"delivered": 3, "failed": 0, "dropped": 1}


class _Registry:
    """A fake registry (the loop's own tests use a fuller one): the state a decision left."""

    def read_state(self):
        return state()


def controller(url: str, **env) -> Controller:
    settings = load_settings(
        {
            "ANALYSIS_CONFIG": str(DEFAULT_CONFIG),
            "DECISION_WEBHOOK_URL": url,
            "DECISION_WEBHOOK_MAX_ATTEMPTS": "1",
            **env,
        }
    )
    c = Controller(settings, registry=_Registry(), prometheus=None, actions=None, clock=lambda: 1_700_000_000.0)
    c.last_state = state()
    return c


def test_every_recorded_decision_but_hold_is_sent(receiver):
    r = receiver()
    c = controller(r.url, DECISION_WEBHOOK_TOKEN="t0k")
    decisions = ["hold", "step_up", "hold", "promote", "promoted", "rollback", "watch", "metrics_back", "hold"]
    for d in decisions:
        c.record(d, f"why {d}")
    got = r.wait_for(6)
    assert notify.notifier_for(c.settings).wait_idle(WAIT_S)
    assert [g["body"]["decision"] for g in r.requests] == [d for d in decisions if d != "hold"]
    body = got[0]["body"]
    assert (body["summary"], body["model_name"], body["canary_version"], body["weight"], body["at"]) == (
        "why step_up",
        "sentiment",
        "2",
        10.0,
        1_700_000_000.0,
    )
    assert got[0]["headers"]["Authorization"] == "Bearer t0k"
    assert len({g["body"]["delivery_id"] for g in got}) == 6


def test_no_url_no_webhook(receiver):
    c = controller("")
    assert notify.notifier_for(c.settings) is None
    assert c.record("rollback", "nothing listens")["decision"] == "rollback"


def test_record_returns_at_once_while_the_receiver_hangs(receiver):
    r = receiver()
    r.hang.set()
    c = controller(r.url)
    c.record("step_up", "first")
    r.wait_for(1)  # the sender is now stuck in that POST (5 s timeout)
    started = time.monotonic()
    for i in range(20):
        c.record("step_up", f"more {i}")
    assert time.monotonic() - started < 1.0
    assert [h["decision"] for h in c.history][:2] == ["step_up", "step_up"]
    assert len(r.requests) == 1


@pytest.mark.parametrize(
    "env, message",
    [
        ({"DECISION_WEBHOOK_URL": "hooks.example.com"}, "DECISION_WEBHOOK_URL"),
        ({"DECISION_WEBHOOK_MAX_ATTEMPTS": "0"}, "DECISION_WEBHOOK_MAX_ATTEMPTS"),
        ({"DECISION_WEBHOOK_TIMEOUT_S": "soon"}, "DECISION_WEBHOOK_TIMEOUT_S"),
    ],
)
def test_bad_webhook_settings_stop_the_controller_with_a_message(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({"ANALYSIS_CONFIG": str(DEFAULT_CONFIG), **env})


def test_webhook_settings_from_the_environment():
    s = load_settings(
        {
            "ANALYSIS_CONFIG": str(DEFAULT_CONFIG),
            "DECISION_WEBHOOK_URL": "https://hooks.example/x",
            "DECISION_WEBHOOK_TOKEN": "abc",
            "DECISION_WEBHOOK_MAX_ATTEMPTS": "7",
            "DECISION_WEBHOOK_TIMEOUT_S": "2.5",
        }
    )
    assert (
        s.decision_webhook_url,
        s.decision_webhook_token,
        s.decision_webhook_max_attempts,
        s.decision_webhook_timeout_s,
    ) == ("https://hooks.example/x", "abc", 7, 2.5)
    off = load_settings({"ANALYSIS_CONFIG": str(DEFAULT_CONFIG), "DECISION_WEBHOOK_MAX_ATTEMPTS": ""})
    assert (off.decision_webhook_url, off.decision_webhook_max_attempts) == ("", 5)
