"""The lab's threshold rule end to end in process mode: real MLflow, model servers, routers under gunicorn,
Prometheus, the controller (seed-lab threshold mode) and nginx, on loopback ports."""

import math
import time

import requests

from support.stack import Traffic


def canary_share(stack, n=1000, threads=8):
    with Traffic(stack.public_url, rate=400, threads=threads) as t:
        while t.total < n:
            time.sleep(0.05)
    return t


def test_split_follows_the_weight(stack):
    stack.deploy("2", production="1")
    r = requests.post(f"{stack.admin_url}/set_canary/20", headers=stack.auth, timeout=5)
    assert r.status_code == 200, r.text
    time.sleep(2.5)  # every worker follows within 2 s
    t = canary_share(stack)
    assert t.non_ok == 0, t.failures[:5]
    n = sum(t.by_model.values())
    share = t.by_model.get("canary", 0) / n
    sigma = math.sqrt(0.2 * 0.8 / n)
    print(f"split over {n} requests at 20 %: {share:.3f} canary")
    assert abs(share - 0.2) < 4 * sigma
    assert {v for (m, v) in t.by_version if m == "canary"} == {"2"}
    assert {v for (m, v) in t.by_version if m == "production"} == {"1"}


def test_bad_canary_is_rolled_back_within_60s(stack):
    took, t = stack.roll_out_a_bad_canary(wrong_rate=0.4, timeout=60)
    print(f"rolled back {took:.1f}s after traffic started")
    assert t.non_ok == 0, t.failures[:5]
    registry = stack.registry()
    state = registry.read_state()
    assert state.phase == "rolled_back"
    tags = registry.get_version("2").get("tags", [])
    reason = {x["key"]: x["value"] for x in tags}.get("canary.rollback_reason", "")
    assert "accuracy" in reason.lower(), reason


def test_killed_canary_costs_the_client_nothing(stack):
    stack.deploy("2", production="1")
    requests.post(f"{stack.admin_url}/set_canary/50", headers=stack.auth, timeout=5).raise_for_status()
    time.sleep(2)
    try:
        with Traffic(stack.public_url, rate=40) as t:
            time.sleep(2)
            stack.procs["canary"].kill()
            time.sleep(6)
        assert t.total > 200
        assert t.non_ok == 0, t.failures[:5]
        assert t.by_model.get("production", 0) > t.by_model.get("canary", 0)
        # The routers counted the canary's failures (what the controller judges), once scraped.
        stack.wait_for(
            lambda: stack.query('sum(canary_router_requests_total{model="canary",status="error"}) > 0'),
            timeout=15,
            what="canary errors in Prometheus",
        )
    finally:
        from support.models import start_model_server

        port = int(stack.canary_url.rsplit(":", 1)[1])
        stack.procs["canary"], _ = start_model_server(stack.mlflow_url, "canary", stack.log_dir, port=port)


def test_healthy_canary_steps_up_and_is_promoted(stack):
    stack.deploy("2", production="1")
    registry = stack.registry()
    weights = []
    with Traffic(stack.public_url, rate=50) as t:

        def promoted():
            state = registry.read_state()
            if not weights or weights[-1] != state.weight:
                weights.append(state.weight)
            return state.phase == "promoted"

        stack.wait_for(promoted, timeout=240, interval=0.3, what="promotion")
        time.sleep(2)
    assert t.non_ok == 0, t.failures[:5]
    state = registry.read_state()
    assert state.production_version == "2" and state.weight == 0
    assert requests.get(f"{stack.production_url}/ready", timeout=5).json()["version"] == "2"
    stepped = [w for w in weights if w > 0]
    assert stepped == sorted(stepped) and len(stepped) >= 2, weights
    r = requests.post(f"{stack.public_url}/predict", json={"text": "I love it", "actual_label": 1}, timeout=5)
    assert r.json()["model_version"] == "production" and r.json()["version"] == "2"
