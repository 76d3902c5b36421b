"""The sequential analysis in process mode: the controller's sequential analysis on real components (MLflow,
model servers, routers under gunicorn, Prometheus, nginx)."""

import json
import time

import pytest
import requests

from support.procs import ROOT
from support.stack import Traffic

FAST = str(ROOT / "tests/integration/analysis-fast.yaml")


@pytest.fixture(scope="module", autouse=True)
def sequential_controller(stack):
    stack.restart_controller(ANALYSIS_CONFIG=FAST, STEP_INTERVAL_S="")
    yield
    stack.restart_controller(ANALYSIS_CONFIG=str(ROOT / "controller/analysis-threshold.yaml"), STEP_INTERVAL_S="4")


def version_tags(stack, version):
    return {t["key"]: t["value"] for t in stack.registry().get_version(version).get("tags", [])}


def status(stack):
    return requests.get(f"{stack.controller_url}/status", timeout=5).json()


def test_forty_percent_wrong_is_rolled_back_within_45s(stack):
    took, t = stack.roll_out_a_bad_canary(wrong_rate=0.4, timeout=45)
    print(f"sequential: 40 % wrong rolled back {took:.1f}s after traffic started")
    assert t.non_ok == 0, t.failures[:5]
    tags = version_tags(stack, "2")
    assert "accuracy" in tags["canary.rollback_reason"]
    decision = json.loads(tags["canary.decision"])
    assert decision["decision"] == "rollback"
    accuracy = next(m for m in decision["metrics"] if m["name"] == "accuracy")
    assert accuracy["rollback"] is True


def test_a_canary_that_turns_bad_late_is_rolled_back(stack):
    """Healthy at 20 % (set by hand: judged, not stepped) for a minute, then 40 % of its answers
    flipped: rolled back, and the evidence says which detector fired and since when."""
    stack.deploy("2", production="1")
    requests.post(f"{stack.public_url}/set_canary/20", headers=stack.auth, timeout=5).raise_for_status()
    registry = stack.registry()
    with Traffic(stack.public_url, rate=50) as t:
        time.sleep(60)
        assert registry.read_state().phase == "progressing", stack.controller_summary()
        stack.set_faults(wrong_rate=0.4)
        try:
            started = time.monotonic()
            stack.wait_for(
                lambda: registry.read_state().phase == "rolled_back", timeout=90, what="the late fault rolled back"
            )
            took = time.monotonic() - started
        finally:
            stack.set_faults()
    assert t.non_ok == 0, t.failures[:5]
    decision = json.loads(version_tags(stack, "2")["canary.decision"])
    accuracy = next(m for m in decision["metrics"] if m["name"] == "accuracy")
    print(
        f"sequential: a fault after 60 s healthy rolled back in {took:.1f}s by the {accuracy['detector']} "
        f"detector: {decision['summary']}"
    )
    assert accuracy["rollback"] and accuracy["detector"] in ("change", "from_start")
    if accuracy["detector"] == "change":
        assert accuracy["change_since"] >= time.time() - took - 30  # a start near the fault


def test_worse_version_3_is_rolled_back_with_no_fault(stack):
    stack.deploy("3", production="1")
    registry = stack.registry()
    with Traffic(stack.public_url, rate=50) as t:
        started = time.monotonic()
        stack.wait_for(lambda: registry.read_state().phase == "rolled_back", timeout=120, what="version 3 rolled back")
        print(f"sequential: version 3 rolled back {time.monotonic() - started:.1f}s after deploy")
    assert t.non_ok == 0, t.failures[:5]
    assert "accuracy" in version_tags(stack, "3")["canary.rollback_reason"]
    s = status(stack)
    assert s["phase"] == "rolled_back" and s["history"][0]["decision"] == "rollback"


def test_prometheus_outage_holds_then_the_rollout_continues(stack):
    stack.deploy("2", production="1")
    registry = stack.registry()
    with Traffic(stack.public_url, rate=50) as t:
        stack.wait_for(lambda: status(stack).get("last_verdict"), timeout=60, what="a first verdict")
        stack.procs["prometheus"].stop()
        try:
            stack.wait_for(lambda: "metrics unavailable" in status(stack)["note"], timeout=15, what="hold on outage")
            held = registry.read_state().weight
            time.sleep(6)  # several polls without metrics: the weight must not move
            assert registry.read_state().weight == held
            assert status(stack)["metrics_outage_since"] is not None
            metrics = requests.get(f"{stack.controller_url}/metrics", timeout=5).text
            assert "canary_controller_prometheus_up 0.0" in metrics
        finally:
            stack.start_prometheus()  # same port, same data
        stack.wait_for(
            lambda: registry.read_state().phase == "promoted",
            timeout=240,
            interval=0.5,
            what="the rollout to continue to promotion",
        )
    assert t.non_ok == 0, t.failures[:5]


def test_version_2_steps_up_and_is_promoted(stack):
    stack.deploy("2", production="1")
    registry = stack.registry()
    weights = []

    def promoted():
        state = registry.read_state()
        if not weights or weights[-1] != state.weight:
            weights.append(state.weight)
        return state.phase == "promoted"

    with Traffic(stack.public_url, rate=50) as t:
        started = time.monotonic()
        stack.wait_for(promoted, timeout=240, interval=0.3, what="promotion")
        print(f"sequential: version 2 promoted {time.monotonic() - started:.1f}s after deploy; weights {weights}")
    assert t.non_ok == 0, t.failures[:5]
    stepped = [w for w in weights if w > 0]
    assert stepped == sorted(stepped) and len(stepped) >= 2, weights
    assert registry.read_state().production_version == "2"
    decision = json.loads(version_tags(stack, "2")["canary.decision"])
    assert decision["decision"] == "promote"
    assert all(m["non_inferior"] for m in decision["metrics"] if m["promotion_gate"])


def test_status_explains_a_hold_in_words_and_check_rollback_works(stack):
    stack.deploy("2", production="1")
    deployed_at = time.time()  # the state is written: a poll from now on judges this rollout

    def fresh_verdict():
        # One read: the previous rollout's verdict stays in /status until the loop's next poll.
        verdict = status(stack).get("last_verdict")
        return verdict if verdict and verdict["at"] >= deployed_at else None

    with Traffic(stack.public_url, rate=20):
        verdict = stack.wait_for(fresh_verdict, timeout=60, what="a verdict on this rollout")
        assert verdict["summary"] and isinstance(verdict["metrics"], list)
        for m in verdict["metrics"]:
            assert {"name", "n", "g_hat", "bounds", "log_e_rollback", "log_e_promote", "explanation"} <= set(m), m
        r = requests.post(f"{stack.admin_url}/check_rollback", headers=stack.auth, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        assert "decision" in body and "canary_percentage" in body


def test_a_long_outage_falls_back_to_production(stack):
    stack.restart_controller(OUTAGE_FALLBACK_S="4")
    try:
        stack.deploy("2", production="1")
        requests.post(f"{stack.admin_url}/set_canary/20", headers=stack.auth, timeout=5).raise_for_status()
        registry = stack.registry()
        with Traffic(stack.public_url, rate=20) as t:
            stack.wait_for(lambda: status(stack).get("last_verdict"), timeout=60, what="a first verdict")
            stack.procs["prometheus"].stop()
            try:
                stack.wait_for(lambda: registry.read_state().weight == 0, timeout=20, what="fallback to production")
            finally:
                stack.start_prometheus()
        assert t.non_ok == 0, t.failures[:5]
        state = registry.read_state()
        assert state.phase == "rolled_back" and "no metrics" in state.reason
    finally:
        stack.restart_controller(OUTAGE_FALLBACK_S="")
