"""loadgen: settings, arrivals, progress/summary math, the open-loop scheduler, SIGTERM.

The router is being written elsewhere, so these tests talk to a tiny real Flask stand-in
router on a loopback port: it answers /ready and /predict in the contract's shape (optionally
slowly) and records when each request arrived. The lead runs loadgen against the real stack.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from flask import Flask, jsonify, request

from loadgen import arrivals
from loadgen.config import ConfigError, from_env
from loadgen.main import run, sample_stream, wait_ready
from loadgen.runner import OpenLoopRunner
from loadgen.sender import PredictSender, Sample
from loadgen.tally import Outcome, Reservoir, Tally
from support.served_app import ServedApp

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = [(f"text {i}", i % 2) for i in range(10)]


class StandInRouter(ServedApp):
    """A Flask stand-in for the router: every 5th request goes to the canary, which answers
    wrongly; production answers right. `delay_s` makes every answer slow."""

    def __init__(self, delay_s: float = 0.0, ready: bool = True):
        self.delay_s = delay_s
        self.ready = ready
        self.arrivals: list[float] = []
        self.bodies: list[dict] = []
        self.admin_calls: list[tuple[str, str | None]] = []
        self.feedback: list[tuple[float, dict]] = []
        self._lock = threading.Lock()
        app = Flask("stand-in-router")

        @app.get("/ready")
        def ready():
            return (jsonify(ready=True), 200) if self.ready else (jsonify(ready=False), 503)

        @app.post("/predict")
        def predict():
            body = request.get_json()
            with self._lock:
                self.arrivals.append(time.monotonic())
                self.bodies.append(body)
                n = len(self.arrivals)
            time.sleep(self.delay_s)
            arm = "canary" if n % 5 == 0 else "production"
            label = body.get("actual_label", 0)
            prediction = 1 - label if arm == "canary" else label
            return jsonify(
                prediction=prediction,
                model_version=arm,
                version="2" if arm == "canary" else "1",
                latency_ms=1.0,
                request_id=str(n),
            )

        @app.post("/feedback")
        def feedback():
            with self._lock:
                self.feedback.append((time.monotonic(), request.get_json()))
            return jsonify(outcome="correct")

        @app.post("/simulate_failure/<int:on>")
        def simulate_failure(on):
            self.admin_calls.append((f"/simulate_failure/{on}", request.headers.get("Authorization")))
            return jsonify(simulate_failure=bool(on))

        self.serve(app)


# ---- settings and arrivals ----------------------------------------------------------------


def test_defaults_match_the_brief():
    config = from_env({})
    assert config.target_url == "http://nginx:8080"
    assert config.rate == 10 and config.duration_s == 0 and config.progress_s == 10
    assert config.scenario == "none" and config.scenario_delay_s == 60 and config.arrivals == "fixed"
    assert config.pool_size == 50  # enough for 10 req/s each taking the whole 5 s timeout


@pytest.mark.parametrize(
    "env, words",
    [
        ({"RATE": "0"}, "RATE must be > 0"),
        ({"RATE": "fast"}, "RATE must be a number"),
        ({"SCENARIO": "chaos"}, "SCENARIO must be one of none, bad-canary"),
        ({"ARRIVALS": "bursty"}, "ARRIVALS must be one of fixed, poisson"),
        ({"LABEL_FRACTION": "1.5"}, "LABEL_FRACTION must be >= 0 and <= 1"),
    ],
)
def test_bad_settings_are_named(env, words):
    with pytest.raises(ConfigError, match=words):
        from_env(env)


def test_fixed_arrivals_are_evenly_spaced():
    assert list(itertools.islice(arrivals.offsets(4, "fixed"), 5)) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_poisson_arrivals_have_the_requested_mean_rate_and_are_reproducible():
    first = list(itertools.islice(arrivals.offsets(20, "poisson", seed=7), 4000))
    again = list(itertools.islice(arrivals.offsets(20, "poisson", seed=7), 4000))
    assert first == again
    assert all(b > a for a, b in zip(first, first[1:]))
    assert 4000 / first[-1] == pytest.approx(20, rel=0.05)


def test_sample_stream_cycles_through_every_sample_and_respects_the_label_fraction():
    stream = sample_stream(SAMPLES, label_fraction=0.0, seed=1)
    one_pass = [next(stream) for _ in SAMPLES]
    assert sorted((s.text, s.label) for s in one_pass) == sorted(SAMPLES)
    assert not any(s.send_label for s in one_pass)
    assert all(s.send_label for s in itertools.islice(sample_stream(SAMPLES, 1.0, 1), 50))


# ---- progress and summary math ------------------------------------------------------------


def test_reservoir_percentiles_are_nearest_rank():
    r = Reservoir()
    for v in range(1, 101):
        r.add(float(v))
    assert r.percentile(50) == 50 and r.percentile(95) == 95 and r.percentile(100) == 100
    assert Reservoir().percentile(50) is None


def test_reservoir_stays_bounded():
    r = Reservoir(size=100)
    for v in range(10_000):
        r.add(float(v))
    assert len(r.values) == 100 and r.seen == 10_000


def _fill(tally: Tally) -> None:
    # production: 8 answers, 6 right, latencies 10..80 ms; canary: 2 answers, 1 right; 1 error
    for i in range(8):
        tally.count_sent()
        tally.record(Outcome(ok=True, arm="production", version="1", correct=i < 6, latency_ms=10.0 * (i + 1)))
    for i in range(2):
        tally.count_sent()
        tally.record(Outcome(ok=True, arm="canary", version="2", correct=i == 0, latency_ms=100.0 + i))
    tally.count_sent()
    tally.record(Outcome(ok=False, error="http_503", latency_ms=3.0))
    tally.count_late()


def test_summary_math():
    tally = Tally(started_at=100.0)
    _fill(tally)
    s = tally.summary(now=105.5)
    assert (s["sent"], s["ok"], s["errors"], s["late"], s["scheduled"], s["in_flight"]) == (11, 10, 1, 1, 12, 0)
    assert s["elapsed_s"] == 5.5 and s["achieved_rps"] == 2.0
    assert s["errors_by_kind"] == {"http_503": 1}
    prod, canary = s["models"]["production"], s["models"]["canary"]
    assert (prod["requests"], prod["share_pct"], prod["accuracy_pct"]) == (8, 80.0, 75.0)
    assert (canary["requests"], canary["share_pct"], canary["accuracy_pct"]) == (2, 20.0, 50.0)
    assert prod["latency_ms"] == {"p50": 40.0, "p95": 80.0}
    assert canary["versions"] == {"2": 2}
    json.dumps(s)  # one JSON line


def test_progress_line_reports_the_window_and_then_starts_a_new_one():
    tally = Tally(started_at=0.0)
    _fill(tally)
    line = tally.progress_line(now=10.0)
    assert line.startswith("t=10s sent=11 ok=10 err=1 late=1 in_flight=0 | last 10s: ")
    assert "production v1 80.0% acc 75.0% p50 40ms p95 80ms" in line
    assert "canary v2 20.0% acc 50.0% p50 100ms p95 101ms" in line
    tally.count_sent()
    tally.record(Outcome(ok=True, arm="canary", version="2", correct=True, latency_ms=5.0))
    line = tally.progress_line(now=20.0)
    assert "sent=12 ok=11" in line
    assert "production 0.0% acc - p50 - p95 -" in line and "canary v2 100.0% acc 100.0%" in line


def test_unlabelled_answers_count_in_the_split_but_not_in_accuracy():
    tally = Tally(started_at=0.0)
    tally.record(Outcome(ok=True, arm="production", correct=None, latency_ms=1.0))
    tally.record(Outcome(ok=True, arm="production", correct=True, latency_ms=1.0))
    prod = tally.summary(1.0)["models"]["production"]
    assert prod["requests"] == 2 and prod["accuracy_pct"] == 100.0


# ---- sending and the open-loop scheduler ---------------------------------------------------


def test_sender_posts_text_and_label_and_reads_the_answer():
    with StandInRouter() as router:
        send = PredictSender(router.url, timeout_s=2)
        outcome = send(Sample("good film", 1))
        assert outcome.ok and outcome.arm == "production" and outcome.version == "1" and outcome.correct
        send(Sample("no label", 0, send_label=False))
        assert router.bodies == [{"text": "good film", "actual_label": 1}, {"text": "no label"}]


def test_sender_classifies_failures():
    outcome = PredictSender("http://127.0.0.1:9", timeout_s=1)(Sample("x", 0))
    assert not outcome.ok and outcome.error == "connection"
    with StandInRouter(delay_s=0.5) as router:
        outcome = PredictSender(router.url, timeout_s=0.1)(Sample("x", 0))
    assert not outcome.ok and outcome.error == "timeout"


def _run_open_loop(url: str, rate: float, duration_s: float, pool_size: int) -> tuple[Tally, float, OpenLoopRunner]:
    tally = Tally(started_at=time.monotonic())
    runner = OpenLoopRunner(PredictSender(url, timeout_s=5), tally, pool_size=pool_size)
    runner.run(arrivals.offsets(rate), sample_stream(SAMPLES, 1.0, 0), duration_s, threading.Event())
    return tally, time.monotonic() - tally.started_at, runner


def test_a_slow_server_does_not_slow_the_schedule():
    with StandInRouter(delay_s=0.5) as router:
        tally, took, runner = _run_open_loop(router.url, rate=20, duration_s=2.0, pool_size=100)
        assert runner.drain(5)
        arrived = sorted(router.arrivals)
    # 20 req/s for 2 s: 40 slots, all sent on time although each answer takes 0.5 s.
    assert tally.sent == 40 and tally.late == 0
    assert took < 2.4
    assert len(arrived) == 40 and tally.ok == 40
    # Measured at the server from the run's start (cold connections may delay the first few):
    # the last request is there by ~1.95 s and the second second got its ~20 requests.
    since_start = [t - tally.started_at for t in arrived]
    assert since_start[-1] < 2.3
    assert 17 <= sum(1 for t in since_start if t >= 1.0) <= 21


def test_requests_that_find_no_free_worker_are_late_not_queued():
    with StandInRouter(delay_s=0.5) as router:
        tally, took, runner = _run_open_loop(router.url, rate=20, duration_s=2.0, pool_size=2)
        runner.drain(5)
    # Two workers finish about 4 requests a second: ~8 go out, the rest are dropped as late,
    # and the run still ends on time instead of stretching to 10 s.
    assert took < 2.4
    assert tally.sent + tally.late == 40
    assert 4 <= tally.sent <= 12 and tally.late >= 28


def test_progress_lines_come_every_progress_interval():
    lines = []
    with StandInRouter() as router:
        tally = Tally(started_at=time.monotonic())
        runner = OpenLoopRunner(PredictSender(router.url, timeout_s=2), tally, pool_size=4)
        runner.run(
            arrivals.offsets(20),
            sample_stream(SAMPLES, 1.0, 0),
            1.05,
            threading.Event(),
            progress_s=0.25,
            on_progress=lambda now: lines.append(tally.progress_line(now)),
        )
        runner.drain(2)
    assert len(lines) == 4
    assert all(" | last 0s: production" in line for line in lines)


def test_stop_ends_a_forever_run():
    stop = threading.Event()
    with StandInRouter() as router:
        tally = Tally(started_at=time.monotonic())
        runner = OpenLoopRunner(PredictSender(router.url, timeout_s=2), tally, pool_size=4)
        threading.Timer(0.5, stop.set).start()
        runner.run(arrivals.offsets(10), sample_stream(SAMPLES, 1.0, 0), 0, stop)
        took = time.monotonic() - tally.started_at
        runner.drain(2)
    assert took < 1.0
    assert 4 <= tally.sent <= 7


def test_wait_ready_gives_up_after_its_bound():
    with StandInRouter(ready=False) as router:
        started = time.monotonic()
        assert not wait_ready(router.url, timeout_s=0.5, stop=threading.Event(), poll_s=0.2)
        assert time.monotonic() - started < 2
        router.ready = True
        assert wait_ready(router.url, timeout_s=0.5, stop=threading.Event(), poll_s=0.2)


def test_bad_canary_scenario_enables_the_failure_simulation_with_the_token(capsys):
    with StandInRouter() as router:
        config = from_env(
            {
                "TARGET_URL": router.url,
                "ADMIN_URL": router.url,
                "ADMIN_TOKEN": "s3cret",
                "RATE": "20",
                "DURATION": "1",
                "SCENARIO": "bad-canary",
                "SCENARIO_DELAY_S": "0.3",
                "PROGRESS_S": "0.5",
            }
        )
        summary = run(config, SAMPLES, threading.Event())
    assert router.admin_calls == [("/simulate_failure/1", "Bearer s3cret")]
    assert summary["events"][0]["result"] == "ok" and summary["scenario"] == "bad-canary"
    assert summary["sent"] == 20 and summary["ok"] == 20
    assert summary["models"]["canary"]["requests"] == 4 and summary["models"]["canary"]["accuracy_pct"] == 0.0
    assert "scenario bad-canary: ok" in capsys.readouterr().out


def test_sigterm_prints_the_summary_and_exits_0():
    with StandInRouter() as router:
        env = dict(
            os.environ,
            TARGET_URL=router.url,
            RATE="20",
            DURATION="0",
            PROGRESS_S="0.5",
        )
        code = f"import sys; from loadgen.main import main; sys.exit(main(samples={SAMPLES!r}))"
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in proc.stdout), daemon=True)
        reader.start()
        try:
            # Signal only once it is sending (its handlers are installed by then), however slow
            # the machine is to start Python.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any("sending" in line for line in list(lines)):
                time.sleep(0.05)
            time.sleep(1.2)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
            reader.join(5)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, lines
    assert any("target ready" in line for line in lines)
    assert any(" | last " in line for line in lines)  # progress lines came
    summary = json.loads(lines[-1])
    assert summary["event"] == "summary" and summary["sent"] >= 10 and summary["errors"] == 0


def test_late_labels_go_to_feedback_after_the_delay():
    from loadgen.late import LateLabeller

    with StandInRouter() as router:
        late = LateLabeller(router.url, delay_s=0.3)
        send = PredictSender(router.url, timeout_s=2, late=late)
        sent_at = time.monotonic()
        outcomes = [send(Sample(f"t{i}", i % 2)) for i in range(4)] + [send(Sample("no label", 1, send_label=False))]
        assert all(o.ok for o in outcomes)
        assert all("actual_label" not in b for b in router.bodies)  # nothing inline
        deadline = time.monotonic() + 5
        while len(router.feedback) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [b["actual_label"] for _, b in router.feedback] == [0, 1, 0, 1]
        assert [b["request_id"] for _, b in router.feedback] == ["1", "2", "3", "4"]
        assert min(t for t, _ in router.feedback) - sent_at >= 0.3
        assert late.flush(2) and late.summary()["ok"] == 4


def test_late_mode_settings():
    config = from_env({"LABEL_MODE": "late", "LABEL_DELAY_S": "2.5"})
    assert (config.label_mode, config.label_delay_s) == ("late", 2.5)
    assert from_env({}).label_mode == "inline"
    with pytest.raises(ConfigError, match="LABEL_MODE must be one of inline, late"):
        from_env({"LABEL_MODE": "later"})
