"""The controller's timeline (what each poll saw, for the live page): the points, their bounds,
stale verdicts, the since filter; the control loop adding a point per poll; GET /timeline."""

import math
from pathlib import Path

from canary_common.registry import RolloutState
from canary_controller.analysis.base import Decision, Verdict
from canary_controller.app import create_app
from canary_controller.loop import Controller
from canary_controller.settings import load_settings
from canary_controller.timeline import Timeline, metric_point

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "controller" / "analysis.yaml"

SEQUENTIAL = {
    "name": "accuracy",
    "kind": "accuracy",
    "promotion_gate": True,
    "n": {"canary": 120.0, "production": 480.0},
    "p": {"canary": 0.9166666666, "production": 0.93125},
    "g_hat": -0.0145833333,
    "margin": 0.02,
    "delta_rollback": 0.0,
    "bounds": {"lower": -0.1123456789, "upper": 0.0834567891, "kind": "..."},
    "rollback": False,
    "non_inferior": False,
    "explanation": "accuracy gate: ...",
}
THRESHOLD = {
    "name": "latency_p95",
    "kind": "threshold",
    "scope": "last 30 s",
    "threshold": 1000,
    "value": 0.0123,
    "n": {"canary": 40.0},
    "min_samples": 30,
    "failed": True,
    "explanation": "...",
}


def state(weight=20.0, phase="progressing", canary="2"):
    return RolloutState(production_version="1", canary_version=canary, weight=weight, mode="auto", phase=phase)


def verdict(*metrics, decision=Decision.CONTINUE):
    return Verdict(decision, "words", list(metrics), [])


def test_metric_point_keeps_what_the_charts_need():
    p = metric_point(SEQUENTIAL)
    assert p == {
        "name": "accuracy",
        "kind": "accuracy",
        "p_canary": 0.91667,
        "p_production": 0.93125,
        "g_hat": -0.01458,
        "lower": -0.11235,
        "upper": 0.08346,
        "margin": 0.02,
        "delta_rollback": 0.0,
        "rollback": False,
        "non_inferior": False,
    }
    # Nothing yet (no samples): None, never NaN (the page reads JSON).
    empty = metric_point(
        {
            "name": "latency",
            "kind": "latency",
            "p": {"canary": None, "production": None},
            "g_hat": float("nan"),
            "bounds": {"lower": float("-inf"), "upper": None},
        }
    )
    assert empty["p_canary"] is None and empty["g_hat"] is None and empty["lower"] is None
    # Threshold mode: the canary's value against a fixed number; "failed" is its rollback.
    t = metric_point(THRESHOLD)
    assert t["value"] == 0.0123 and t["threshold"] == 1000 and t["rollback"] is True and t["lower"] is None


def test_metric_point_keeps_a_regression_kinds_scale():
    mae = {
        "name": "mae",
        "kind": "mae",
        "p": {"canary": 0.8, "production": 0.82},
        "regression": {"clip": 250.0, "measure": "..."},
    }
    assert metric_point(mae)["clip"] == 250.0 and "tolerance" not in metric_point(mae)
    within = {"name": "within_50", "kind": "within_tolerance", "regression": {"tolerance": 50.0}}
    assert metric_point(within)["tolerance"] == 50.0


def test_metric_point_carries_which_detector_fired():
    fired = dict(SEQUENTIAL, rollback=True, detector="change", change_since=1700000123.4567)
    p = metric_point(fired)
    assert p["detector"] == "change" and p["change_since"] == 1700000123.457 and p["rollback"] is True
    assert "detector" not in metric_point(dict(SEQUENTIAL, detector=None))


def test_every_poll_is_a_point_and_a_verdict_counts_once():
    clock = iter(range(100, 200)).__next__
    tl = Timeline(clock=lambda: 0.0)
    idle = tl.add(state(0.0, "idle", canary=None), None, None, {"decision": "hold"}, at=clock())
    assert idle == {
        "at": 100.0,
        "weight": 0.0,
        "phase": "idle",
        "mode": "auto",
        "production_version": "1",
        "canary_version": None,
        "decision": "hold",
        "verdict": None,
        "metrics": None,
    }
    v = verdict(SEQUENTIAL)
    first = tl.add(state(), v, 101.0, {"decision": "continue"}, at=clock())
    assert first["weight"] == 20.0 and first["verdict"] == "continue"
    assert [m["name"] for m in first["metrics"]] == ["accuracy"]
    # The same verdict again (a poll that made none: outage, baseline): a gap, not a repeat.
    again = tl.add(state(), v, 101.0, {"decision": "hold"}, at=clock())
    assert again["metrics"] is None and again["verdict"] is None
    newer = tl.add(state(), verdict(SEQUENTIAL), 103.0, {"decision": "continue"}, at=clock())
    assert newer["metrics"] is not None
    # No state read yet (registry down from the start): the point is there, with nothing known.
    unknown = tl.add(None, None, None, {"decision": "hold"}, at=clock())
    assert unknown["weight"] is None and unknown["phase"] is None
    assert [p["at"] for p in tl.points()] == [100.0, 101.0, 102.0, 103.0, 104.0]


def test_bounded_and_since():
    tl = Timeline(max_points=3, clock=lambda: 50.0)
    for at in range(5):
        tl.add(state(), None, at=float(at))
    assert [p["at"] for p in tl.points()] == [2.0, 3.0, 4.0]
    assert [p["at"] for p in tl.points(since=2.5)] == [3.0, 4.0]
    assert tl.points(since=4.0) == []
    assert len(tl.points(since=math.nan)) == 3  # a nonsense "since" asks for everything
    body = tl.as_dict([{"at": 4.0, "decision": "rollback", "summary": "s"}], since=3.0)
    assert set(body) == {"points", "history", "max_points", "started_at", "now"}
    assert [p["at"] for p in body["points"]] == [4.0]
    assert body["history"][0]["decision"] == "rollback" and body["max_points"] == 3 and body["now"] == 50.0


# -- the control loop adds a point at every poll -------------------------------------------------
class FakeRegistry:
    def __init__(self, st):
        self.state = st

    def read_state(self):
        return self.state


class FakePrometheus:
    """Counters that grow by the same amount every poll on both arms (a healthy canary)."""

    PER_POLL = {"requests": 100, "errors": 0, "labelled": 50, "correct": 46, "latency_count": 100, "latency_fast": 97}

    def __init__(self, counters):
        self.field_of = {query: name for name, query in counters.items()}
        self.polls = {}

    def instant(self, query):
        name = self.field_of.get(query)
        if name not in self.PER_POLL:
            return []  # latency buckets, the canary's up{}: nothing
        n = self.polls[query] = self.polls.get(query, 0) + 1
        return [
            ({"model": arm, "version": version, "instance": "r1"}, float(self.PER_POLL[name] * n))
            for arm, version in (("production", "1"), ("canary", "2"))
        ]

    def wait_for_scrape(self, *args):
        return True


class NoActions:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def controller(st):
    settings = load_settings({"ANALYSIS_CONFIG": str(DEFAULT_CONFIG)})
    now = iter(float(t) for t in range(1000, 2000))
    prom = FakePrometheus(dict(settings.analysis.counters))
    return Controller(settings, FakeRegistry(st), prom, NoActions(), clock=lambda: next(now))


def test_the_loop_records_each_poll_with_the_verdicts_bounds():
    c = controller(state(0.0, "idle", canary=None))
    c.tick()
    (idle,) = c.timeline.points()
    assert idle["phase"] == "idle" and idle["weight"] == 0.0 and idle["metrics"] is None

    c.registry.state = state(10.0)
    c.tick()  # the counters' baseline: no verdict yet
    c.tick()  # increments: a verdict
    c.tick()
    pts = c.timeline.points()
    assert len(pts) == 4
    assert pts[1]["weight"] == 10.0 and pts[1]["metrics"] is None
    judged = pts[2]["metrics"]
    assert [m["name"] for m in judged] == ["accuracy", "availability", "latency"]
    acc = judged[0]
    assert acc["p_canary"] == 0.92 and acc["p_production"] == 0.92 and acc["g_hat"] == 0.0
    assert acc["lower"] < 0 < acc["upper"] and acc["margin"] > 0
    assert pts[3]["metrics"] is not None and pts[3]["at"] > pts[2]["at"]

    app = create_app(c.settings, start_loop=False)
    app.extensions["canary_controller"].timeline = c.timeline
    app.extensions["canary_controller"].history = c.history
    client = app.test_client()
    body = client.get("/timeline").get_json()
    assert len(body["points"]) == 4 and body["history"] == list(c.history)
    since = client.get(f"/timeline?since={pts[2]['at']}").get_json()
    assert [p["at"] for p in since["points"]] == [pts[3]["at"]]
    assert client.get("/timeline?since=soon").status_code == 200  # ignored, not an error
