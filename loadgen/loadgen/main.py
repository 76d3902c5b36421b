"""Entry point: read settings, wait for the target, run, print the summary as one JSON line."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence

import requests

from loadgen import arrivals, payloads, scenario
from loadgen.config import NO_DATA, Config, ConfigError, from_env
from loadgen.late import LateLabeller
from loadgen.payloads import DATA_SETS, Batch, DataSet, Sample
from loadgen.runner import OpenLoopRunner
from loadgen.sender import PredictSender
from loadgen.tally import Tally


def log(message: str) -> None:
    print(f"loadgen: {message}", flush=True)


def heldout_samples() -> list[tuple[str, int]]:
    """The sentiment dataset's held-out split."""
    return list(payloads.load(payloads.SENTIMENT).samples)


def sample_stream(
    samples: Sequence[tuple], label_fraction: float, seed: int, rows: int = 1
) -> Iterator[Sample | Batch]:
    """Endless samples: each pass over the set in a fresh shuffled order. With rows > 1, Batches
    of that many samples, each labelled (or not) as a whole."""
    rng = random.Random(seed)
    order = list(samples)

    def passes() -> Iterator[tuple]:
        for _ in itertools.count():
            rng.shuffle(order)
            yield from order

    if rows == 1:
        for features, label in passes():
            yield Sample(features, label, send_label=rng.random() < label_fraction)
    each = passes()
    while True:
        batch = tuple(Sample(*next(each)) for _ in range(rows))
        yield Batch(batch, send_label=rng.random() < label_fraction)


def wait_ready(target_url: str, timeout_s: float, stop: threading.Event, poll_s: float = 2.0) -> bool:
    """Poll GET /ready until 200, logging each failed try; False on timeout or stop."""
    url = target_url.rstrip("/") + "/ready"
    started = time.monotonic()
    attempts = max(1, int(timeout_s / poll_s) + 1)
    for _ in range(attempts):
        try:
            resp = requests.get(url, timeout=poll_s)
            if resp.status_code == 200:
                log(f"target ready: {url}")
                return True
            why = f"HTTP {resp.status_code}"
        except requests.RequestException as exc:
            why = type(exc).__name__
        waited = time.monotonic() - started
        if waited >= timeout_s:
            break
        log(f"waiting for {url}: {why} ({waited:.0f}s of {timeout_s:.0f}s)")
        if stop.wait(poll_s):
            return False
    log(f"target not ready after {timeout_s:.0f}s: {url}")
    return False


HEARTBEAT_FILE = os.environ.get("HEARTBEAT_FILE", "/tmp/loadgen-heartbeat")


def _progress(line: str) -> None:
    """Log the progress line and leave it in the heartbeat file the container healthcheck reads."""
    log(line)
    try:
        with open(HEARTBEAT_FILE, "w") as f:
            f.write(line + "\n")
    except OSError:
        pass  # a read-only file system must not stop the traffic


def run(config: Config, samples: Sequence[tuple] | DataSet, stop: threading.Event) -> dict:
    """One whole run; returns the summary. `samples`: a DataSet, or (text, label) pairs."""
    data = payloads.as_data_set(samples)
    tally = Tally(started_at=time.monotonic())
    late = (
        LateLabeller(config.target_url, config.label_delay_s, config.request_timeout_s, label_key=data.label_key)
        if config.label_mode == "late"
        else None
    )
    runner = OpenLoopRunner(
        PredictSender(config.target_url, config.request_timeout_s, late=late, data=data),
        tally,
        pool_size=config.pool_size,
        late_after_s=config.late_after_s,
    )
    timer = scenario.schedule(
        config.scenario, config.scenario_delay_s, config.admin_url, config.admin_token, tally, log
    )
    log(
        f"sending {config.rate:g} req/s ({config.arrivals}) to {config.target_url}/predict for "
        f"{'ever' if config.duration_s == 0 else f'{config.duration_s:g}s'}, "
        f"{len(data.samples)} labelled samples{describe(data, config.rows)}, up to {config.pool_size} in flight, "
        f"labels {'inline' if late is None else f'late (+{config.label_delay_s:g}s via /feedback)'}"
    )
    try:
        runner.run(
            arrivals.offsets(config.rate, config.arrivals, config.seed),
            sample_stream(data.samples, config.label_fraction, config.seed, config.rows),
            config.duration_s,
            stop,
            config.progress_s,
            on_progress=lambda now: _progress(tally.progress_line(now)),
        )
    finally:
        if timer is not None:
            timer.cancel()
        runner.drain(min(config.request_timeout_s, 5.0))
        if late is not None:
            late.flush(10.0)  # labels still waiting are sent now rather than lost
    summary = tally.summary(time.monotonic())
    if late is not None:
        summary["late_labels"] = late.summary()
    summary.update(target=config.target_url, rate=config.rate, arrivals=config.arrivals, scenario=config.scenario)
    if data.name != payloads.SENTIMENT or config.rows > 1:
        summary.update(data=data.name, task=data.task, rows_per_request=config.rows)
    return summary


def describe(data: DataSet, rows: int) -> str:
    """The words the start line adds for anything but the lab's one text per request."""
    if data.name == payloads.SENTIMENT and rows == 1:
        return ""
    key = data.label_key
    return f" of {data.name} ({data.task}, {rows} row{'s' if rows > 1 else ''} per request with {key})"


def no_data_reason(config: Config) -> tuple[str, str]:
    """(why nothing is sent, what to do about it)."""
    if config.data == NO_DATA:
        return "LOADGEN_DATA=none", "sending nothing"
    return (
        f"no labelled data for model {config.model_name!r}",
        f"it is not a bundled demo ({', '.join(DATA_SETS)}), so loadgen sends nothing. Send labelled "
        f"traffic to {config.target_url}/predict yourself, or set LOADGEN_DATA to a bundled data set "
        f"whose columns fit the model (LOADGEN_DATA=none silences this)",
    )


def idle(config: Config, stop: threading.Event) -> dict:
    """No data to send: say so, then keep the heartbeat fresh (the container stays healthy and is
    not restarted in a loop) until stopped or DURATION has passed."""
    why, advice = no_data_reason(config)
    log(f"{why}: {advice}")
    started = time.monotonic()
    _progress("t=0s idle: " + why)
    while not stop.wait(min(config.progress_s, config.duration_s or config.progress_s)):
        waited = time.monotonic() - started
        if config.duration_s and waited >= config.duration_s:
            break
        _progress(f"t={waited:.0f}s idle: {why}")
    return {"event": "summary", "sent": 0, "status": "no_data", "reason": why, "target": config.target_url}


def main(environ=None, samples: Sequence[tuple] | DataSet | None = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        config = from_env(environ)
    except ConfigError as exc:
        log(f"bad setting: {exc}")
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if samples is None and config.data in ("", NO_DATA):
        print(json.dumps(idle(config, stop), sort_keys=True), flush=True)
        return 0
    if samples is None:
        try:
            samples = payloads.load(config.data)
        except ImportError as exc:
            log(
                f"cannot load the held-out split of {config.data} ({exc}): canary-common must be installed (pip install ./common), "
                f"and the tabular demos need numpy and scikit-learn"
            )
            return 2
    samples = payloads.as_data_set(samples)
    if not samples.samples:
        log("no samples to send")
        return 2
    if not wait_ready(config.target_url, config.wait_timeout_s, stop):
        print(
            json.dumps(
                {
                    "event": "summary",
                    "sent": 0,
                    "status": "stopped" if stop.is_set() else "target_not_ready",
                    "target": config.target_url,
                }
            ),
            flush=True,
        )
        return 0 if stop.is_set() else 1
    summary = run(config, samples, stop)
    print(json.dumps(summary, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
