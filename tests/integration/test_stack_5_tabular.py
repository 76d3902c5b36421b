"""The bundled tabular demos rolled out on real components (MLflow, model servers and routers
under gunicorn, Prometheus, the controller, nginx), with no fault injected: the better version is
promoted and the worse one rolled back on the evidence of the held-out rows' own labels.

breast-cancer (a classifier, 30 numeric features) is judged on accuracy; diabetes (a regressor)
on the clipped mean absolute error, its truth sent as actual_value. Their own stack, apart from
the sentiment one the other modules share.
"""

import json
import os
import tempfile
import time
from pathlib import Path

import pytest

from support.procs import ROOT
from support.stack import Stack, Traffic, demo_bodies

FAST = str(ROOT / "tests/integration/analysis-fast.yaml")
FAST_REGRESSION = str(ROOT / "tests/integration/analysis-fast-regression.yaml")


@pytest.fixture(scope="module")
def stack():
    base = Path(os.environ.get("TEST_LOG_DIR") or tempfile.mkdtemp(prefix="canary-tabular-"))
    log_dir = base / "tabular"
    log_dir.mkdir(parents=True, exist_ok=True)
    s = Stack(log_dir, model_name="breast-cancer")
    try:
        s.start(routers=2, controller_env={"ANALYSIS_CONFIG": FAST, "STEP_INTERVAL_S": ""})
        yield s
    finally:
        s.stop()


def decision_of(stack, version) -> dict:
    tags = {t["key"]: t["value"] for t in stack.registry().get_version(version).get("tags", [])}
    return json.loads(tags["canary.decision"]), tags


def roll_out(stack, version, production, until, timeout, bodies):
    stack.deploy(version, production=production)
    registry = stack.registry()
    with Traffic(stack.public_url, rate=50, bodies=bodies) as traffic:
        started = time.monotonic()
        stack.wait_for(
            lambda: registry.read_state().phase == until,
            timeout=timeout,
            interval=0.5,
            what=f"version {version} {until}",
        )
        took = time.monotonic() - started
    assert traffic.non_ok == 0, traffic.failures[:5]
    return took


def test_breast_cancer_better_version_is_promoted_and_worse_rolled_back(stack):
    bodies = demo_bodies("breast-cancer")
    promoted = roll_out(stack, "2", "1", "promoted", 300, bodies)
    decision, _ = decision_of(stack, "2")
    assert decision["decision"] == "promote" and stack.registry().read_state().production_version == "2"
    accuracy = next(m for m in decision["metrics"] if m["name"] == "accuracy")
    rolled = roll_out(stack, "3", "2", "rolled_back", 120, bodies)
    decision, tags = decision_of(stack, "3")
    assert "accuracy" in tags["canary.rollback_reason"], tags["canary.rollback_reason"]
    worse = next(m for m in decision["metrics"] if m["name"] == "accuracy")
    print(
        f"breast-cancer: version 2 promoted {promoted:.0f}s after deploy (accuracy canary "
        f"{accuracy['p']['canary']:.3f} vs production {accuracy['p']['production']:.3f}); version 3 rolled back "
        f"{rolled:.0f}s after deploy ({worse['p']['canary']:.3f} vs {worse['p']['production']:.3f})"
    )


def test_diabetes_regressor_judged_on_its_errors(stack):
    stack.use_model("diabetes", ANALYSIS_CONFIG=FAST_REGRESSION, STEP_INTERVAL_S="")
    bodies = demo_bodies("diabetes")
    assert "actual_value" in bodies[0]
    rolled = roll_out(stack, "3", "1", "rolled_back", 180, bodies)
    decision, tags = decision_of(stack, "3")
    assert "mae" in tags["canary.rollback_reason"] or "within_50" in tags["canary.rollback_reason"], tags
    mae = next(m for m in decision["metrics"] if m["name"] == "mae")
    assert mae["regression"]["clip"] == 250
    promoted = roll_out(stack, "2", "1", "promoted", 420, bodies)
    decision, _ = decision_of(stack, "2")
    better = next(m for m in decision["metrics"] if m["name"] == "mae")
    print(
        f"diabetes: version 3 rolled back {rolled:.0f}s after deploy (clipped MAE canary "
        f"{mae['regression']['clipped_mae']['canary']} vs production {mae['regression']['clipped_mae']['production']}); "
        f"version 2 promoted {promoted:.0f}s after deploy ({better['regression']['clipped_mae']})"
    )
