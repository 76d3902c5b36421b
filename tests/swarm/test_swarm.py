"""The two-node Swarm test (`make swarm-test`): deploy/swarm/stack.yml on a swarm of this machine's
engine (manager) and a second engine in a network namespace (worker), the images pushed through a
local registry (support/swarm.py sets it all up and tears it all down, even on failure).

It checks, in order:
  1. every replicated service is spread over both nodes, Prometheus scrapes every router task, and
     predictions at the edge go through routers on both nodes;
  2. a canary giving 40 % wrong predictions (every canary replica) is rolled back;
  3. draining the worker (`docker node update --availability drain`) under open-loop traffic costs
     clients no errors, and the rollout state (in MLflow, on the manager) survives: same phase,
     same versions, and the controller goes on deciding wherever it now runs;
  4. a rolling update of the routers (start-first, `docker service update --force`) under the same
     traffic costs clients no errors.
The figures go to stdout and test-logs/swarm/swarm.json. Grafana (no image here) and loadgen (the
test is the traffic) are not deployed.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter

import pytest
import requests

from loadgen import payloads
from support.openloop import Client, OpenLoop, summary
from support.procs import ROOT
from support.swarm import TwoNodeSwarm, free_port, sh, wait_until

STACK_FILE = ROOT / "deploy" / "swarm" / "stack.yml"
LOG_DIR = ROOT / "test-logs" / "swarm"
RATE = 20.0
TOKEN = "swarm-test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEYS = ("requests", "client_errors", "errors_by_kind", "errors_from_action_s", "retried", "p50_ms", "p99_ms", "max_ms")
SPREAD = ("router", "model-server-production", "model-server-canary")
PINNED = ("mlflow", "prometheus", "alertmanager", "nginx")

pytestmark = pytest.mark.skipif(
    shutil.which("docker") is None or shutil.which("docker-registry") is None,
    reason="needs the docker CLI and engine, and Debian's docker-registry",
)


class Lab:
    def __init__(self, swarm: TwoNodeSwarm, port: int):
        self.swarm = swarm
        self.edge = f"http://127.0.0.1:{port}"
        self.figures: dict = {}

    def status(self) -> dict:
        resp = requests.get(f"{self.edge}/controller/status", headers=AUTH, timeout=5)
        resp.raise_for_status()
        return resp.json()

    def admin(self, path: str) -> requests.Response:
        return requests.post(f"{self.edge}{path}", headers=AUTH, timeout=15)

    def arm(self) -> dict:
        """A fresh rollout at 20 % (the lab's /reset), as the fault suite arms one."""
        wait_until(lambda: self.admin("/reset").status_code == 200, 120, "/reset")
        state = wait_until(
            lambda: (s := self.status())["canary_percentage"] == 20 and s["phase"] == "progressing" and s,
            60,
            "the rollout at 20 %",
        )
        time.sleep(3)  # every router worker follows the state within STATE_POLL_S
        return state

    def prom(self, query: str) -> list[dict]:
        (task,) = self.swarm.tasks("prometheus")
        url = f"http://127.0.0.1:9090/api/v1/query?query={requests.utils.quote(query)}"
        out = self.swarm.exec_in(task, "wget", "-qO-", url, timeout=30)
        return json.loads(out.stdout)["data"]["result"]

    def canary_faults(self, wrong_rate: float) -> int:
        """Set wrong_rate on every canary replica, wherever it runs (the lab's /simulate_failure
        reaches only the one replica behind the service's VIP)."""
        code = (
            "import json, urllib.request; urllib.request.urlopen(urllib.request.Request("
            f"'http://127.0.0.1:8000/faults', data=json.dumps({{'wrong_rate': {wrong_rate}}}).encode(), "
            "headers={'Content-Type': 'application/json'}), timeout=5)"
        )
        tasks = self.swarm.tasks("model-server-canary")
        for task in tasks:
            self.swarm.exec_in(task, "python", "-c", code)
        return len(tasks)

    def placement(self) -> dict:
        names = self.swarm.nodes()
        per_node: dict[str, Counter] = {}
        for task in self.swarm.tasks():
            per_node.setdefault(names.get(task["node"], task["node"]), Counter())[task["service"]] += 1
        return {node: dict(sorted(c.items())) for node, c in sorted(per_node.items())}


def _brief(state: dict) -> dict:
    keys = ("phase", "canary_percentage", "mode", "canary_version", "production_version", "generation")
    return {k: state.get(k) for k in keys}


@pytest.fixture(scope="module")
def lab():
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    swarm = TwoNodeSwarm(LOG_DIR)
    figures: dict = {}
    try:
        swarm.start()
        figures["swarm_up_s"] = round(time.monotonic() - started, 1)
        figures["push_s"] = swarm.push_images()
        port = free_port()
        env = {
            "ADMIN_TOKEN": TOKEN,
            "CANARY_HTTP_PORT": str(port),
            "LOADGEN_REPLICAS": "0",
            # Two nodes share this machine's two cores: one worker per model-server replica
            # (each of the two replicas per arm loads the model once, not twice).
            "MODEL_SERVER_WORKERS": "1",
            "MODEL_NAME": "sentiment",
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        }
        deploy_at = time.monotonic()
        swarm.deploy(STACK_FILE, f"canarysw{swarm.tag}", env)
        lab = Lab(swarm, port)
        wait_until(swarm.converged, 600, "every service at its replica count", interval=3)
        wait_until(
            lambda: requests.get(f"{lab.edge}/ready", timeout=5).status_code == 200, 300, "the edge ready", interval=2
        )
        wait_until(lab.status, 180, "the controller's /status through the edge", interval=2)
        figures["deploy_to_ready_s"] = round(time.monotonic() - deploy_at, 1)
        lab.figures = figures
        yield lab
    finally:
        problems = swarm.close()
        figures["teardown_problems"] = problems
        figures["total_s"] = round(time.monotonic() - started, 1)
        (LOG_DIR / "swarm.json").write_text(json.dumps(figures, indent=2))
        print("swarm test figures:\n" + json.dumps(figures, indent=2), flush=True)
        assert not problems, problems


def test_spread_and_predictions_through_routers_on_both_nodes(lab):
    swarm = lab.swarm
    nodes = swarm.nodes()
    lab.figures["nodes"] = sorted(nodes.values())
    placement = lab.placement()
    lab.figures["tasks_per_node"] = placement
    print(json.dumps({"tasks_per_node": placement}), flush=True)
    assert len(nodes) == 2
    for svc in SPREAD:
        assert {t["node"] for t in swarm.tasks(svc)} == set(nodes), (svc, placement)
    manager = swarm.manager_id()
    for svc in PINNED:
        assert {t["node"] for t in swarm.tasks(svc)} == {manager}, (svc, placement)
    assert len(swarm.tasks("controller")) == 1

    lab.arm()
    loop = OpenLoop(Client(lab.edge), payloads.load(payloads.SENTIMENT), RATE).start()
    time.sleep(15)
    results = loop.stop()
    figures = summary(results)
    assert figures["client_errors"] == 0, figures

    routers = swarm.tasks("router")
    ip_node = {a: nodes[t["node"]] for t in routers for a in t["addresses"]}
    # Prometheus found every router task (tasks.router), and each answered predictions.
    time.sleep(6)  # one more scrape
    up = {r["metric"]["instance"].split(":")[0]: r["value"][1] for r in lab.prom('up{job="router"}')}
    assert set(up) == set(ip_node) and set(up.values()) == {"1"}, (up, ip_node)
    served = lab.prom("sum by (instance) (increase(canary_router_requests_total[1m]))")
    by_node: Counter = Counter()
    for row in served:
        by_node[ip_node[row["metric"]["instance"].split(":")[0]]] += round(float(row["value"][1]))
    lab.figures["predictions"] = {"requests": figures["requests"], "p99_ms": figures["p99_ms"]}
    lab.figures["router_requests_by_node_last_min"] = dict(by_node)
    print(json.dumps({"router_requests_by_node": dict(by_node), **figures}), flush=True)
    assert set(by_node) == set(nodes.values()) and all(n > 0 for n in by_node.values()), by_node


def test_a_canary_with_40_percent_wrong_predictions_is_rolled_back(lab):
    lab.arm()
    before = lab.status()
    loop = OpenLoop(Client(lab.edge), payloads.load(payloads.SENTIMENT), RATE).start()
    try:
        time.sleep(3)
        replicas = lab.canary_faults(0.4)
        bad_at = time.monotonic()
        state = wait_until(lambda: (s := lab.status())["phase"] == "rolled_back" and s, 240, "the rollback", interval=1)
        took = time.monotonic() - bad_at
    finally:
        results = loop.stop()
        lab.canary_faults(0.0)
    figures = summary(results)
    lab.figures["rollback"] = {
        "canary_replicas_made_wrong": replicas,
        "rollback_s": round(took, 1),
        "reason": state.get("reason"),
        "before": _brief(before),
        "after": _brief(state),
        "client_errors": figures["client_errors"],
        "requests": figures["requests"],
    }
    print(json.dumps({"rollback": lab.figures["rollback"]}), flush=True)
    assert figures["client_errors"] == 0, figures


def _under_load(lab, action, settle) -> tuple[dict, dict, dict, float]:
    """Open-loop traffic from 5 s before `action` until 10 s after `settle` returns."""
    wait_until(lab.swarm.converged, 300, "every service at its replica count", interval=2)
    before = wait_until(lab.status, 120, "the controller's /status")
    loop = OpenLoop(Client(lab.edge), payloads.load(payloads.SENTIMENT), RATE).start()
    try:
        time.sleep(5)
        started = time.monotonic()
        action()
        settle()
        took = time.monotonic() - started
        time.sleep(10)  # traffic after the move, too
    finally:
        results = loop.stop()
    after = wait_until(lab.status, 180, "the controller's /status (wherever it runs now)")
    figures = summary(results)
    # When the errors were, from the action (s): first, last.
    errors = [round(r.scheduled - started, 1) for r in results if r.error]
    figures["errors_from_action_s"] = [errors[0], errors[-1]] if errors else []
    return figures, before, after, took


def test_draining_a_node_under_load_costs_clients_nothing_and_keeps_the_rollout(lab):
    swarm = lab.swarm
    lab.arm()
    manager = swarm.manager_id()
    (worker,) = [n for n in swarm.nodes() if n != manager]
    controller_was_on = swarm.nodes()[swarm.tasks("controller")[0]["node"]]

    try:
        figures, before, after, took = _under_load(
            lab,
            lambda: sh("docker", "node", "update", "--availability", "drain", worker),
            lambda: wait_until(
                lambda: swarm.all_running_on(manager), 240, "every task off the drained node", interval=1
            ),
        )
    finally:
        sh("docker", "node", "update", "--availability", "active", worker, check=False)
    lab.figures["drain"] = {
        "rate_rps": RATE,
        "drain_to_converged_s": round(took, 1),
        "controller_was_on": controller_was_on,
        "tasks_per_node_after": lab.placement(),
        **{k: figures[k] for k in KEYS},
        "state_before": _brief(before),
        "state_after": _brief(after),
        "decided_meanwhile": after.get("reason") if after["generation"] != before["generation"] else None,
    }
    print(json.dumps({"drain": lab.figures["drain"]}), flush=True)
    assert figures["client_errors"] == 0, figures
    # The state is the registry's: the drain loses nothing (same versions, the generation goes
    # on). One decision may be taken meanwhile, by design: the drained canary task's last scrape
    # fails (`up` 1 -> 0) before Prometheus's DNS discovery drops it, which the analysis's
    # restart guard (analysis-demo.yaml: guards.restarts.max 0) counts as a canary restart.
    assert before["phase"] == "progressing", before
    if after["phase"] != "progressing":
        assert after["phase"] == "rolled_back" and "guard: restarts" in after["reason"], after
        assert after["generation"] == before["generation"] + 1, (before, after)
    assert after["canary_version"] == before["canary_version"], (before, after)
    assert after["production_version"] == before["production_version"], (before, after)
    assert after["generation"] >= before["generation"], (before, after)


def test_a_rolling_update_of_the_routers_costs_clients_nothing(lab):
    swarm = lab.swarm
    # Both nodes again: the update moves routers while the worker takes its share back.
    routers = swarm.service("router")

    def update():
        out = sh("docker", "service", "update", "--force", "--detach=false", routers, timeout=300, check=False)
        assert out.returncode == 0, out.stdout + out.stderr

    figures, before, after, took = _under_load(lab, update, lambda: None)
    state = json.loads(sh("docker", "service", "inspect", routers).stdout)[0].get("UpdateStatus", {})
    lab.figures["router_update"] = {
        "update_s": round(took, 1),
        "update_state": state.get("State"),
        **{k: figures[k] for k in KEYS},
    }
    print(json.dumps({"router_update": lab.figures["router_update"]}), flush=True)
    assert figures["client_errors"] == 0, figures
    assert state.get("State") == "completed", state


def test_the_state_survives_in_the_registry(lab):
    """The rollout state is the registry's (MLflow, pinned with its volume): read it there."""
    (task,) = lab.swarm.tasks("mlflow")
    url = "http://127.0.0.1:5000/api/2.0/mlflow/registered-models/get?name=sentiment"
    code = f"import urllib.request; print(urllib.request.urlopen('{url}', timeout=5).read().decode())"
    model = json.loads(lab.swarm.exec_in(task, "python", "-c", code).stdout)["registered_model"]
    tags = {t["key"]: t["value"] for t in model.get("tags", [])}
    state = json.loads(tags["canary.state"])
    assert state["generation"] == lab.status()["generation"], (state, lab.status())
