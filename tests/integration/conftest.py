"""The full stack, started once per test session as real processes (see support/stack.py)."""

import os
import tempfile
from pathlib import Path

import pytest

from support.procs import ROOT
from support.stack import Stack

# Seed-lab threshold mode, with a short dwell and window so rollouts finish in seconds. The
# latency threshold is raised from 100 ms: CI shares 2 cores among a dozen processes, and this
# suite is about the rollout mechanics, not the latency gate (unit-tested in the analysis).
# The accuracy threshold is lowered from 85 % for the same reason: the seed's rule re-checks a
# noisy ratio at every poll, and with version 2 at 93.8 % held-out, 85 % after 20 labels falsely
# rolled a healthy canary back in ~18 % of simulated runs of the promotion test (it failed CI so).
# At 75 % after 30 labels that is ~0.1 %, and the bad canary (~59 %) still fails it in seconds.
THRESHOLD_ENV = {
    "ANALYSIS_CONFIG": str(ROOT / "controller/analysis-threshold.yaml"),
    "ACCURACY_THRESHOLD": "75",
    "MIN_SAMPLES": "30",
    "STEP_INTERVAL_S": "4",
    "WINDOW_S": "30",
    "LATENCY_THRESHOLD": "1000",
}


@pytest.fixture(scope="session")
def stack():
    log_dir = Path(os.environ.get("TEST_LOG_DIR") or tempfile.mkdtemp(prefix="canary-stack-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    s = Stack(log_dir)
    try:
        s.start(routers=2, controller_env=THRESHOLD_ENV)
        yield s
    finally:
        s.stop()
        print(f"\nstack logs in {log_dir}")
