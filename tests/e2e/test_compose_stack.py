"""The compose stack, built and started under its own project name and host ports (so a stack
someone left running is not touched), then the rollback walkthrough through nginx and the admin
port, read back from Prometheus and MLflow. `docker compose down -v` at the end, even on failure.

Grafana is left out: no image for it can be had on the CI machine (its files are checked in the
unit tests and its queries against the live Prometheus of the integration tests).
"""
import json
import os
import shutil
import subprocess
import time
import uuid

import pytest
import requests

from support.procs import ROOT, free_port

SERVICES = ["mlflow", "model-setup", "model-server-production", "model-server-canary", "router",
            "nginx", "prometheus", "controller", "loadgen"]

pytestmark = pytest.mark.skipif(shutil.which("docker") is None, reason="docker CLI not installed")


class Compose:
    def __init__(self):
        self.project = f"canary-e2e-{uuid.uuid4().hex[:8]}"
        self.ports = {name: free_port() for name in
                      ("CANARY_HTTP_PORT", "CANARY_ADMIN_PORT", "MLFLOW_PORT", "PROMETHEUS_PORT",
                       "CONTROLLER_PORT", "GRAFANA_PORT")}
        self.env = dict(os.environ, COMPOSE_PROJECT_NAME=self.project, ADMIN_TOKEN="e2e-token",
                        LOADGEN_RATE="20", **{k: str(v) for k, v in self.ports.items()})

    def run(self, *args, check=True, timeout=900, capture=True):
        cmd = ["docker", "compose", "-p", self.project, "-f", str(ROOT / "docker-compose.yml"), *args]
        return subprocess.run(cmd, env=self.env, cwd=ROOT, check=check, timeout=timeout,
                              capture_output=capture, text=True)

    def url(self, key):
        return f"http://127.0.0.1:{self.ports[key]}"

    def canaryctl(self, *args):
        out = self.run("run", "--rm", "-T", "canaryctl", *args, check=False)
        return out.returncode, out.stdout + out.stderr


@pytest.fixture(scope="module")
def compose():
    c = Compose()
    started = time.monotonic()
    c.run("build", *[s for s in SERVICES if s != "model-setup"], capture=False)
    print(f"images built in {time.monotonic() - started:.0f}s")
    try:
        c.up_at = time.monotonic()
        c.run("up", "-d", "--wait", "--wait-timeout", "400", *[s for s in SERVICES if s != "model-setup"],
              capture=False)
        yield c
    finally:
        logs = c.run("logs", "--no-color", "--tail", "60", check=False)
        print(logs.stdout[-20000:])
        c.run("down", "-v", "--remove-orphans", check=False, capture=False)


def wait_for(predicate, timeout, what, interval=1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except requests.RequestException as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} ({last})")


def registry_state(c):
    model = requests.get(f"{c.url('MLFLOW_PORT')}/api/2.0/mlflow/registered-models/get",
                         params={"name": "sentiment"}, timeout=5).json()["registered_model"]
    tags = {t["key"]: t["value"] for t in model.get("tags", [])}
    aliases = {a["alias"]: a["version"] for a in model.get("aliases", [])}
    return tags, aliases


def test_stack_serves_and_reports(compose):
    c = compose
    public = c.url("CANARY_HTTP_PORT")

    def canary_answer():
        r = requests.post(f"{public}/predict", json={"text": "I love it", "actual_label": 1}, timeout=5)
        return r.status_code == 200 and r.json()["model_version"] == "canary" and r.json()
    body = wait_for(canary_answer, 120, "a canary prediction", interval=0.2)
    print(f"first canary prediction {time.monotonic() - c.up_at:.1f}s after `up` started (images built)")
    assert set(body) >= {"prediction", "model_version", "version", "latency_ms", "request_id"}

    tags, aliases = registry_state(c)
    assert aliases.get("production") and aliases.get("canary")
    # Admin paths are not on the public port; the admin port wants the token.
    assert requests.post(f"{public}/set_canary/50", timeout=5).status_code == 404
    assert requests.post(f"{c.url('CANARY_ADMIN_PORT')}/set_canary/50", timeout=5).status_code == 401
    # Every Prometheus target is up.
    def all_up():
        rows = requests.get(f"{c.url('PROMETHEUS_PORT')}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        jobs = {t["labels"]["job"] for t in rows if t["health"] == "up"}
        return {"router", "model-server", "controller", "mlflow"} <= jobs and all(t["health"] == "up" for t in rows)
    wait_for(all_up, 90, "every Prometheus target up")
    code, out = c.canaryctl("metrics")
    assert code == 0, out
    assert "canary" in out.lower() and "production" in out.lower()


def test_walkthrough_bad_canary_rolled_back(compose):
    c = compose
    code, out = c.canaryctl("deploy", "2", "--production", "1")
    assert code == 0, out
    code, out = c.canaryctl("canary", "20")
    assert code == 0, out
    time.sleep(3)
    code, out = c.canaryctl("fail")
    assert code == 0, out
    started = time.monotonic()
    wait_for(lambda: float(registry_state(c)[0].get("canary.weight", 1)) == 0, 120, "rollback after `fail`")
    print(f"`canaryctl fail` to weight 0: {time.monotonic() - started:.1f}s")
    tags, _ = registry_state(c)
    assert tags["canary.phase"] == "rolled_back"
    c.canaryctl("nofail")


def test_walkthrough_worse_version_rolled_back_with_no_fault(compose):
    c = compose
    code, out = c.canaryctl("deploy", "3", "--production", "1")
    assert code == 0, out
    started = time.monotonic()
    wait_for(lambda: registry_state(c)[0].get("canary.phase") == "rolled_back", 300, "version 3 rolled back")
    print(f"version 3 rolled back {time.monotonic() - started:.1f}s after deploy")
    version = requests.get(f"{c.url('MLFLOW_PORT')}/api/2.0/mlflow/model-versions/get",
                           params={"name": "sentiment", "version": "3"}, timeout=5).json()["model_version"]
    reason = {t["key"]: t["value"] for t in version.get("tags", [])}.get("canary.rollback_reason", "")
    assert reason, version
    rows = requests.get(f"{c.url('PROMETHEUS_PORT')}/api/v1/query",
                        params={"query": 'sum by (model, version) (canary_router_labelled_predictions_total)'},
                        timeout=5).json()["data"]["result"]
    assert {("canary", "3"), ("production", "1")} <= {(r["metric"]["model"], r["metric"]["version"]) for r in rows}
    code, out = c.canaryctl("status")
    print(f"canaryctl status after the rollback of version 3:\n{out}")
    assert code == 0 and "rolled_back" in out, out
