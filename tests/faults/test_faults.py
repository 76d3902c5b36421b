"""The fault suite (`make faults`): the compose stack under open-loop labelled traffic at 40
requests a second, one fault at a time, each in its own window: the fault is applied 5 s in and
healed later. Per fault it records what clients got (errors, p50, p99, max, retries; the client
is support.openloop's: keep-alive, retries only what was never answered) and what the controller
decided, and prints the whole table as JSON at the end (also test-logs/faults/faults.json). The
README's reliability table is this output.

Targets: no client errors for every fault but production down; p99 <= 100 ms while the canary is
dead; the controller holds through a Prometheus outage, resumes after being killed (deciding once),
and rolls a slow canary back on latency. Grafana, Alertmanager and loadgen are not started: the
suite is the traffic, and neither of the others is on the request path.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from loadgen import payloads
from support.compose import Compose, wait_for
from support.openloop import Client, OpenLoop, summary
from support.procs import ROOT

HERE = Path(__file__).resolve().parent
LOG_DIR = ROOT / "test-logs" / "faults"
RATE = 40.0
SERVICES = ["mlflow", "model-server-production", "model-server-canary", "router", "nginx", "prometheus", "controller"]
FEEDBACK_DIR = "/var/lib/canary-feedback"
CANARY_DEAD_P99_MS = 100.0
BACKEND_TIMEOUT_S = 2.0  # the router's default BACKEND_TIMEOUT_S

pytestmark = pytest.mark.skipif(shutil.which("docker") is None, reason="docker CLI not installed")


class FaultSuite:
    def __init__(self, compose: Compose):
        self.c = compose
        self.edge = compose.url("CANARY_HTTP_PORT")
        self.controller = compose.url("CONTROLLER_PORT")
        self.rows: list[dict] = []
        self.loop = OpenLoop(Client(self.edge), payloads.load(payloads.SENTIMENT), RATE)

    # -- the stack ------------------------------------------------------------------------
    def container(self, service: str, index: int = 1) -> str:
        return f"{self.c.project}-{service}-{index}"

    def docker(self, *args) -> None:
        subprocess.run(["docker", *args], check=True, capture_output=True, text=True, timeout=120)

    def compose(self, *args) -> None:
        self.c.run(*args, timeout=300)

    def state(self) -> dict:
        return requests.get(f"{self.controller}/status", timeout=5).json()

    def history_since(self, wall: float) -> list[dict]:
        """The controller's decisions (not its holds) since `wall`, oldest first."""
        status = wait_for(self.state, 60, "the controller's /status")
        return [
            {"decision": h["decision"], "after_s": round(h["at"] - wall, 1), "summary": h["summary"]}
            for h in reversed(status["history"])
            if h["at"] >= wall
        ]

    def arm(self) -> dict:
        """A fresh manual rollout of the healthy canary at 20 % (the lab's /reset), served."""
        wait_for(lambda: requests.post(f"{self.edge}/reset", timeout=10).status_code == 200, 120, "/reset")
        state = wait_for(
            lambda: (s := self.state())["canary_percentage"] == 20 and s["phase"] == "progressing" and s,
            60,
            "the rollout at 20 %",
        )
        time.sleep(2)  # every router worker follows the state within STATE_POLL_S
        return state

    # -- a window -------------------------------------------------------------------------
    def window(
        self,
        name: str,
        steps: list[tuple[float, str, object]],
        length_s: float,
        until=None,
        fault: tuple[str, str] | None = None,
    ) -> dict:
        """Run `steps` ((offset s, mark, action)) from the window's start; the window ends at
        length_s, or earlier once `until()` is true after the last step. `fault`: the two marks
        between which the fault was on (figures for that span are given apart)."""
        before = self.state()
        t0, wall0 = time.monotonic(), time.time()
        marks = {}
        for offset, mark, action in steps:
            time.sleep(max(0.0, t0 + offset - time.monotonic()))
            marks[mark] = time.monotonic()
            action()
        while time.monotonic() < t0 + length_s and not (until and until()):
            time.sleep(1.0)
        end = time.monotonic()
        results = self.loop.between(t0, end)
        row = {"fault": name, "window_s": round(end - t0, 1), **summary(results)}
        if fault:
            start, stop = marks[fault[0]], marks.get(fault[1], end)
            during = summary([r for r in results if start <= r.scheduled < stop])
            row["during_fault"] = {k: during[k] for k in ("requests", "client_errors", "p50_ms", "p99_ms", "max_ms")}
        after = wait_for(self.state, 60, "the controller's /status")
        row["controller"] = {
            "decisions": self.history_since(wall0),
            "before": _brief(before),
            "after": _brief(after),
            "state_writes": after["generation"] - before["generation"],
        }
        row["marks_s"] = {k: round(v - t0, 1) for k, v in marks.items()}
        self.last_marks = marks
        self.rows.append(row)
        print(json.dumps(row), flush=True)
        return row

    def finish(self) -> None:
        self.loop.stop()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        table = {"rate_rps": RATE, "faults": self.rows}
        (LOG_DIR / "faults.json").write_text(json.dumps(table, indent=2))
        print("fault suite, the figures of record:\n" + json.dumps(table, indent=2))
        print(markdown_table(self.rows))


def _brief(state: dict) -> dict:
    return {k: state.get(k) for k in ("phase", "canary_percentage", "mode", "canary_version", "generation")}


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| fault | client errors | retried | p50 | p99 | max | p99 while on | controller |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        first = min(r["marks_s"].values(), default=0.0)  # when the fault was applied
        decided = (
            ", ".join(f"{d['decision']} (+{d['after_s'] - first:.0f} s)" for d in r["controller"]["decisions"])
            or "held"
        )
        during = r.get("during_fault", {}).get("p99_ms")
        errors = f"{r['client_errors']} / {r['requests']}"
        if r["errors_by_kind"]:
            errors += " (" + ", ".join(f"{n} {k}" for k, n in sorted(r["errors_by_kind"].items())) + ")"
        if "feedback_while_full" in r:
            decided += f"; /feedback while full: {r['feedback_while_full']}"
        lines.append(
            f"| {r['fault']} | {errors} | {r['retried']} | {r['p50_ms']} ms | {r['p99_ms']} ms "
            f"| {r['max_ms']} ms | {'' if during is None else f'{during} ms'} | {decided} |"
        )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def suite():
    compose = Compose("canary-faults", files=(HERE / "compose.faults.yml",))
    with compose.up(SERVICES, LOG_DIR) as c:
        s = FaultSuite(c)
        s.arm()
        s.loop.start()
        time.sleep(5)  # connections warm, Prometheus has scraped the rollout's first counts
        try:
            yield s
        finally:
            s.finish()


def phase_is(suite, phase):
    return lambda: _safe_state(suite).get("phase") == phase


def _safe_state(suite) -> dict:
    try:
        return suite.state()
    except (requests.RequestException, ValueError):
        return {}


# -- the faults, in order ---------------------------------------------------------------------
def test_no_fault(suite):
    row = suite.window("none", [], 20)
    assert row["client_errors"] == 0, row


def test_canary_killed(suite):
    suite.arm()
    row = suite.window(
        "canary model server killed, started 15 s later",
        [
            (5, "kill", lambda: suite.compose("kill", "model-server-canary")),
            (20, "start", lambda: suite.compose("start", "model-server-canary")),
        ],
        35,
        fault=("kill", "start"),
    )
    assert row["client_errors"] == 0, row
    assert row["during_fault"]["p99_ms"] <= CANARY_DEAD_P99_MS, row
    assert row["controller"]["after"]["phase"] == "rolled_back", row  # a dead canary is rolled back


def test_production_killed(suite):
    suite.arm()
    row = suite.window(
        "production model server killed, started 15 s later",
        [
            (5, "kill", lambda: suite.compose("kill", "model-server-production")),
            (20, "start", lambda: suite.compose("start", "model-server-production")),
        ],
        40,
        fault=("kill", "start"),
    )
    # The documented policy: a clear 5xx, fast (no hang); the client errors are expected here.
    assert row["max_ms"] < 2 * BACKEND_TIMEOUT_S * 1000 + 1000, row
    assert set(row["errors_by_kind"]) <= {"http_502", "http_503"}, row


def test_router_replica_stopped_and_started(suite):
    suite.arm()
    router = suite.container("router", 1)
    row = suite.window(
        "one router replica stopped (SIGTERM), started 15 s later",
        [
            (5, "stop", lambda: suite.docker("stop", router)),
            (20, "start", lambda: suite.docker("start", router)),
        ],
        35,
        fault=("stop", "start"),
    )
    assert row["client_errors"] == 0, row


def test_routers_scaled_to_three_and_back(suite):
    row = suite.window(
        "routers scaled 2 -> 3, back to 2 after 15 s",
        [
            (5, "up", lambda: suite.compose("up", "-d", "--no-deps", "--no-recreate", "--scale", "router=3", "router")),
            (
                20,
                "down",
                lambda: suite.compose("up", "-d", "--no-deps", "--no-recreate", "--scale", "router=2", "router"),
            ),
        ],
        35,
    )
    assert row["client_errors"] == 0, row


def test_nginx_restarted(suite):
    row = suite.window(
        "nginx restarted",
        [
            (5, "restart", lambda: suite.compose("restart", "nginx")),
        ],
        25,
    )
    assert row["client_errors"] == 0, row


def test_mlflow_down_60s(suite):
    suite.arm()
    row = suite.window(
        "MLflow stopped for 60 s",
        [
            (5, "stop", lambda: suite.compose("stop", "mlflow")),
            (65, "start", lambda: suite.compose("start", "mlflow")),
        ],
        80,
        fault=("stop", "start"),
    )
    assert row["client_errors"] == 0, row


def test_prometheus_down_60s_holds(suite):
    suite.arm()
    row = suite.window(
        "Prometheus stopped for 60 s",
        [
            (5, "stop", lambda: suite.compose("stop", "prometheus")),
            (65, "start", lambda: suite.compose("start", "prometheus")),
        ],
        80,
        fault=("stop", "start"),
    )
    assert row["client_errors"] == 0, row
    # It must hold: no decision but "hold" and "metrics back", and the state as it was.
    assert row["controller"]["state_writes"] == 0, row
    assert {d["decision"] for d in row["controller"]["decisions"]} <= {"hold", "metrics_back"}, row
    assert row["controller"]["after"]["phase"] == "progressing", row


def test_controller_killed_mid_rollout(suite):
    """The canary turns bad and the controller is killed at once: while it is away nothing is
    decided; back, it rolls the canary back, once."""
    suite.arm()
    edge = suite.edge
    seen = {}

    def fail_and_kill():
        assert requests.post(f"{edge}/simulate_failure/1", timeout=10).status_code == 200
        suite.compose("kill", "controller")

    def start():
        seen["while_away"] = requests.get(
            f"{suite.c.url('MLFLOW_PORT')}/api/2.0/mlflow/registered-models/get",
            params={"name": "sentiment"},
            timeout=5,
        ).json()
        suite.compose("start", "controller")

    row = suite.window(
        "controller killed mid-rollout (canary turned bad), started 15 s later",
        [
            (5, "kill", fail_and_kill),
            (20, "start", start),
        ],
        80,
        until=phase_is(suite, "rolled_back"),
        fault=("kill", "start"),
    )
    requests.post(f"{edge}/simulate_failure/0", timeout=10)
    assert row["client_errors"] == 0, row
    tags = {t["key"]: t["value"] for t in seen["while_away"]["registered_model"]["tags"]}
    away = json.loads(tags["canary.state"])
    assert away["generation"] == row["controller"]["before"]["generation"], (away, row)  # nothing decided
    rollbacks = [d for d in row["controller"]["decisions"] if d["decision"] == "rollback"]
    assert len(rollbacks) == 1 and row["controller"]["after"]["phase"] == "rolled_back", row
    assert row["controller"]["state_writes"] == 1, row  # the rollback, written once


def set_canary_latency(suite, ms: float) -> None:
    code = (
        "import json, urllib.request; urllib.request.urlopen(urllib.request.Request("
        f"'http://127.0.0.1:8000/faults', data=json.dumps({{'latency_ms': {ms}}}).encode(), "
        "headers={'Content-Type': 'application/json'}), timeout=5)"
    )
    suite.compose("exec", "-T", "model-server-canary", "python", "-c", code)


def test_slow_canary_rolled_back_on_latency(suite):
    suite.arm()
    row = suite.window(
        "canary slowed by 500 ms",
        [
            (5, "slow", lambda: set_canary_latency(suite, 500)),
        ],
        90,
        until=phase_is(suite, "rolled_back"),
        fault=("slow", "end"),
    )
    set_canary_latency(suite, 0)
    assert row["client_errors"] == 0, row
    assert row["max_ms"] < BACKEND_TIMEOUT_S * 1000, row  # within the backend timeout
    rollbacks = [d for d in row["controller"]["decisions"] if d["decision"] == "rollback"]
    assert rollbacks and "latency" in rollbacks[0]["summary"], row


class LateLabels:
    """Unlabelled predictions, each labelled through /feedback a moment later; what came back."""

    def __init__(self, edge: str, rate: float = 5.0):
        self.edge, self.rate = edge, rate
        self.answers: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        session = requests.Session()
        while not self._stop.wait(1 / self.rate):
            try:
                pred = session.post(f"{self.edge}/predict", json={"text": "I love it"}, timeout=5).json()
                resp = session.post(
                    f"{self.edge}/feedback", json={"request_id": pred["request_id"], "actual_label": 1}, timeout=5
                )
                self.answers.append((time.monotonic(), resp.status_code, resp.text))
            except (requests.RequestException, ValueError, KeyError) as exc:
                self.answers.append((time.monotonic(), 0, repr(exc)))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def test_feedback_disk_full(suite):
    suite.arm()
    routers = [suite.container("router", i) for i in (1, 2)]

    def fill():
        for router in routers:  # `cat` stops at "No space left on device"
            subprocess.run(
                ["docker", "exec", router, "sh", "-c", f"cat /dev/zero > {FEEDBACK_DIR}/fill"],
                capture_output=True,
                timeout=60,
            )

    def free():
        for router in routers:
            suite.docker("exec", router, "rm", "-f", f"{FEEDBACK_DIR}/fill")

    with LateLabels(suite.edge) as late:
        row = suite.window(
            "feedback store's disk full for 15 s",
            [
                (5, "fill", fill),
                (20, "free", free),
            ],
            35,
            fault=("fill", "free"),
        )
    marks = suite.last_marks
    full = [(code, text) for t, code, text in late.answers if marks["fill"] + 1 < t < marks["free"]]
    row["feedback_while_full"] = sorted({code for code, _ in full})
    assert row["client_errors"] == 0, row  # predictions go on
    assert full and all(code == 503 and "store" in text for code, text in full), full[:3]
    healed = [code for t, code, _ in late.answers if t > marks["free"] + 2]
    assert healed and all(code == 200 for code in healed), healed
