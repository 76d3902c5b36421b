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
from typing import Iterator, Sequence

import requests

from loadgen import arrivals, scenario
from loadgen.config import Config, ConfigError, from_env
from loadgen.late import LateLabeller
from loadgen.runner import OpenLoopRunner
from loadgen.sender import PredictSender, Sample
from loadgen.tally import Tally


def log(message: str) -> None:
    print(f"loadgen: {message}", flush=True)


def heldout_samples() -> list[tuple[str, int]]:
    """The dataset's held-out split; imported here so that tests can run without it."""
    from canary_common.dataset import load_split

    _, heldout = load_split()
    return [(review.text, int(review.label)) for review in heldout]


def sample_stream(samples: Sequence[tuple[str, int]], label_fraction: float, seed: int) -> Iterator[Sample]:
    """Endless samples: each pass over the set in a fresh shuffled order."""
    rng = random.Random(seed)
    order = list(samples)
    for _ in itertools.count():
        rng.shuffle(order)
        for text, label in order:
            yield Sample(text, label, send_label=rng.random() < label_fraction)


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


def run(config: Config, samples: Sequence[tuple[str, int]], stop: threading.Event) -> dict:
    """One whole run; returns the summary."""
    tally = Tally(started_at=time.monotonic())
    late = LateLabeller(config.target_url, config.label_delay_s, config.request_timeout_s) \
        if config.label_mode == "late" else None
    runner = OpenLoopRunner(PredictSender(config.target_url, config.request_timeout_s, late=late), tally,
                            pool_size=config.pool_size, late_after_s=config.late_after_s)
    timer = scenario.schedule(config.scenario, config.scenario_delay_s, config.admin_url,
                              config.admin_token, tally, log)
    log(f"sending {config.rate:g} req/s ({config.arrivals}) to {config.target_url}/predict for "
        f"{'ever' if config.duration_s == 0 else f'{config.duration_s:g}s'}, "
        f"{len(samples)} labelled samples, up to {config.pool_size} in flight, labels "
        f"{'inline' if late is None else f'late (+{config.label_delay_s:g}s via /feedback)'}")
    try:
        runner.run(arrivals.offsets(config.rate, config.arrivals, config.seed),
                   sample_stream(samples, config.label_fraction, config.seed),
                   config.duration_s, stop, config.progress_s,
                   on_progress=lambda now: _progress(tally.progress_line(now)))
    finally:
        if timer is not None:
            timer.cancel()
        runner.drain(min(config.request_timeout_s, 5.0))
        if late is not None:
            late.flush(10.0)  # labels still waiting are sent now rather than lost
    summary = tally.summary(time.monotonic())
    if late is not None:
        summary["late_labels"] = late.summary()
    summary.update(target=config.target_url, rate=config.rate, arrivals=config.arrivals,
                   scenario=config.scenario)
    return summary


def main(environ=None, samples: Sequence[tuple[str, int]] | None = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        config = from_env(environ)
    except ConfigError as exc:
        log(f"bad setting: {exc}")
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if samples is None:
        try:
            samples = heldout_samples()
        except ImportError as exc:
            log(f"cannot load the held-out split ({exc}): PYTHONPATH must include common/")
            return 2
    if not samples:
        log("no samples to send")
        return 2
    if not wait_ready(config.target_url, config.wait_timeout_s, stop):
        print(json.dumps({"event": "summary", "sent": 0, "status": "stopped" if stop.is_set() else "target_not_ready",
                          "target": config.target_url}), flush=True)
        return 0 if stop.is_set() else 1
    summary = run(config, samples, stop)
    print(json.dumps(summary, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
