"""A canary that gets traffic is always watched, in process mode (real MLflow, model servers,
routers, Prometheus, the controller in the lab's threshold mode, nginx): after a rollback, after
a promotion, with a hand-set weight and with shadow copies. And /check_rollback answers in the
lab's shape in every phase."""

import time

import requests

from support.stack import Traffic


def check_rollback(stack) -> dict:
    r = requests.post(f"{stack.public_url}/check_rollback", headers=stack.auth, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] in ("rollback", "waiting", "healthy"), body
    return body


def rolled_back(registry):
    return lambda: registry.read_state().phase == "rolled_back" and registry.read_state().weight == 0


def test_after_a_rollback_a_hand_set_weight_is_judged_again(stack):
    took, _ = stack.roll_out_a_bad_canary(wrong_rate=0.4, timeout=60)
    registry = stack.registry()
    body = check_rollback(stack)  # right after the rollback: it says so, with its figures
    assert body["status"] == "rollback" and body["reason"], body
    assert isinstance(body["canary_accuracy"], float) and isinstance(body["threshold"], (int, float)), body
    assert "analysis" in body and body["canary_percentage"] == 0

    stack.set_faults(wrong_rate=0.4)  # the fault is still on when someone sets a weight again
    try:
        r = requests.post(f"{stack.public_url}/set_canary/20", headers=stack.auth, timeout=5)
        assert r.status_code == 200 and "manual rollout" in r.json()["note"], r.text
        state = registry.read_state()
        assert (state.phase, state.mode, state.weight) == ("progressing", "manual", 20.0)
        with Traffic(stack.public_url, rate=50):
            stack.wait_for(rolled_back(registry), timeout=60, what="the hand-set canary rolled back again")
    finally:
        stack.set_faults()
    assert check_rollback(stack)["status"] == "rollback"


def test_after_a_promotion_a_hand_set_weight_is_judged(stack):
    stack.deploy("2", production="1")
    registry = stack.registry()
    registry.write_state(weight=0, phase="promoted", reason="test: as after a promotion")
    stack.set_faults(wrong_rate=0.4)
    try:
        requests.post(f"{stack.public_url}/set_canary/20", headers=stack.auth, timeout=5).raise_for_status()
        assert registry.read_state().phase == "progressing"
        with Traffic(stack.public_url, rate=50):
            stack.wait_for(rolled_back(registry), timeout=60, what="rollback after a promotion")
    finally:
        stack.set_faults()


def test_a_weight_written_outside_a_rollout_is_taken_in_hand(stack):
    """An old writer sets a weight but leaves the phase at rolled_back: the controller makes the
    phase tell the truth (a manual rollout) and judges it."""
    stack.deploy("2", production="1")
    registry = stack.registry()
    # Weight 0 first (the weight tag is written last), so the controller never reads the phase
    # rolled_back beside the deploy's 5 % and adopts that before the other writer's weight.
    registry.write_state(weight=0, reason="test: stopped")
    registry.write_state(weight=0, phase="rolled_back", reason="test: rolled back")
    registry.write_state(weight=20, reason="test: a weight from another writer")
    stack.wait_for(
        lambda: registry.read_state().phase == "progressing", timeout=20, what="the controller to adopt the canary"
    )
    state = registry.read_state()
    assert state.mode == "manual" and "judged as a manual rollout" in state.reason
    history = requests.get(f"{stack.controller_url}/status", timeout=5).json()["history"]
    assert any(h["decision"] == "watch" for h in history)


def test_healthy_canary_check_rollback_says_healthy_or_waiting(stack):
    stack.deploy("2", production="1")
    requests.post(f"{stack.public_url}/set_canary/20", headers=stack.auth, timeout=5).raise_for_status()
    with Traffic(stack.public_url, rate=50):
        body = stack.wait_for(
            lambda: (b := check_rollback(stack))["status"] == "healthy" and b,
            timeout=60,
            what="a healthy verdict",
            interval=2,
        )
    assert isinstance(body["canary_accuracy"], float) and body["canary_accuracy"] > 75, body
    waiting = requests.post(f"{stack.public_url}/reset", headers=stack.auth, timeout=10)
    assert waiting.json()["status"] == "reset"
    assert check_rollback(stack)["status"] == "waiting"  # fresh rollout, no data yet


def test_shadow_copies_of_a_bad_canary_are_rolled_back(stack):
    stack.deploy("2", production="1")
    registry = stack.registry()
    requests.post(f"{stack.public_url}/set_canary/0", headers=stack.auth, timeout=5).raise_for_status()
    time.sleep(2.5)  # every router worker follows the registry within 2 s: no live canary traffic
    stack.set_faults(wrong_rate=0.5)
    try:
        on = requests.post(f"{stack.public_url}/shadow/100", headers=stack.auth, timeout=5)
        assert on.status_code == 200 and on.json()["shadow_active"], on.text
        with Traffic(stack.public_url, rate=50) as t:
            stack.wait_for(
                lambda: registry.read_state().phase == "rolled_back", timeout=60, what="the shadowed canary rolled back"
            )
        assert set(t.by_model) == {"production"}  # users only ever saw production
    finally:
        stack.set_faults()
        requests.post(f"{stack.public_url}/shadow/0", headers=stack.auth, timeout=5)
    assert "accuracy" in registry.read_state().reason
