"""deploy/swarm/stack.yml against docker-compose.yml: the same services, images, commands,
environment and health checks, except where the stack file says why (its SWARM: notes), and the
placement, update and discovery settings issue 11 asks for. YAML only (the anchors resolved);
`docker stack config` as well when the docker CLI is at hand (it needs no engine)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from support.procs import ROOT

SWARM = ROOT / "deploy" / "swarm"
STACK = yaml.safe_load((SWARM / "stack.yml").read_text())
GRAFANA = yaml.safe_load((SWARM / "grafana.yml").read_text())
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = STACK["services"]
# Compose-only: the one-shot preflight (nginx runs its check at every start) and the canaryctl
# tool (a `docker compose run` convenience). Grafana is in grafana.yml.
COMPOSE_ONLY = {"preflight", "canaryctl", "grafana"}
# Environment values the stack sets differently, on purpose (each has a SWARM: note).
ENV_DIFFERS = {
    ("router", "ROUTER_PEERS"): "dns:tasks.router:8000",
    ("router", "ADMIN_TOKEN"): None,
    ("nginx", "ADMIN_TOKEN"): None,
    ("nginx", "CANARY_BIND"): "0.0.0.0",
    ("controller", "ADMIN_TOKEN"): None,
    ("loadgen", "ADMIN_TOKEN"): None,
}


def _image(name: str, image: str) -> str:
    """The stack's image with its registry prefix and tag variables read as compose's defaults."""
    return image.replace("${CANARY_IMAGE_PREFIX:-}", "").replace("${CANARY_TAG:-local}", "local")


def test_the_same_services_as_compose():
    assert set(SERVICES) | set(GRAFANA["services"]) == set(COMPOSE["services"]) - {"preflight", "canaryctl"}
    assert set(COMPOSE["services"]) - set(SERVICES) == COMPOSE_ONLY


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_commands_and_health_checks_are_composes(name):
    ours, theirs = SERVICES[name], COMPOSE["services"][name]
    assert _image(name, ours["image"]) == theirs["image"]
    for key in ("command", "entrypoint"):
        assert ours.get(key) == theirs.get(key), (name, key)
    if "healthcheck" in theirs:
        for key in ("test", "disable"):
            assert ours["healthcheck"].get(key) == theirs["healthcheck"].get(key), (name, key)
    assert "build" not in ours and "depends_on" not in ours and "restart" not in ours, name


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_environment_is_composes_but_where_the_swarm_differs(name):
    ours = SERVICES[name].get("environment") or {}
    theirs = COMPOSE["services"][name].get("environment") or {}
    assert set(theirs) <= set(ours), (name, set(theirs) - set(ours))
    for key, value in theirs.items():
        if (name, key) in ENV_DIFFERS:
            expected = ENV_DIFFERS[(name, key)]
            if expected is None:  # required here: ${ADMIN_TOKEN:?...}
                assert ours[key].startswith("${ADMIN_TOKEN:?"), (name, key, ours[key])
            else:
                assert ours[key] == expected, (name, key)
        else:
            assert ours[key] == value, (name, key, ours[key], value)


def test_placement_replicas_and_updates():
    spread = [{"spread": "node.id"}]
    for name in ("router", "model-server-production", "model-server-canary"):
        assert SERVICES[name]["deploy"]["placement"]["preferences"] == spread, name
    for name in ("mlflow", "prometheus", "alertmanager"):
        deploy = SERVICES[name]["deploy"]
        assert deploy["replicas"] == 1 and deploy["placement"]["constraints"], name
        assert SERVICES[name]["volumes"], name
    assert SERVICES["controller"]["deploy"]["replicas"] == 1
    assert SERVICES["controller"]["deploy"]["update_config"]["order"] == "stop-first"
    assert SERVICES["model-setup"]["deploy"]["mode"] == "replicated-job"
    router = SERVICES["router"]
    update = router["deploy"]["update_config"]
    assert update["order"] == "start-first" and update["failure_action"] == "rollback" and update["monitor"]
    assert router["deploy"]["rollback_config"]["order"] == "start-first"
    assert router["healthcheck"]["test"]
    assert SERVICES["nginx"]["environment"]["ROUTER_UPSTREAM"] == "tasks.router:8000"
    assert {s["deploy"].get("endpoint_mode") for s in SERVICES.values()} == {"dnsrr"}


def test_prometheus_finds_every_task_and_keeps_the_compose_jobs_and_rules():
    swarm = yaml.safe_load((ROOT / "prometheus" / "swarm.yml").read_text())
    compose = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    assert swarm["rule_files"] == compose["rule_files"] and swarm["global"] == compose["global"]
    assert swarm["alerting"] == compose["alerting"]
    jobs = {j["job_name"]: j for j in swarm["scrape_configs"]}
    theirs = {j["job_name"]: j for j in compose["scrape_configs"]}
    assert set(jobs) == set(theirs)
    for name, job in jobs.items():
        assert job.get("metrics_path") == theirs[name].get("metrics_path"), name
    assert jobs["router"]["dns_sd_configs"] == [
        {"names": ["tasks.router"], "type": "A", "port": 8000, "refresh_interval": "5s"}
    ]
    # Every rule file is shipped as a config where rule_files looks.
    targets = {c["target"] for c in SERVICES["prometheus"]["configs"]}
    rules = {f"/etc/prometheus/rules/{p.name}" for p in (ROOT / "prometheus" / "rules").glob("*.yml")}
    assert rules <= targets and "/etc/prometheus/prometheus.yml" in targets


def test_every_config_file_exists():
    for doc in (STACK, GRAFANA):
        for name, config in doc.get("configs", {}).items():
            assert (SWARM / config["file"]).resolve().is_file(), name


@pytest.mark.skipif(shutil.which("docker") is None, reason="docker CLI not installed")
def test_docker_stack_config_accepts_it():
    env = dict(os.environ, ADMIN_TOKEN="t")
    files = ["-c", str(SWARM / "stack.yml"), "-c", str(SWARM / "grafana.yml")]
    out = subprocess.run(["docker", "stack", "config", *files], env=env, capture_output=True, text=True, timeout=60)
    if "unknown command" in out.stderr or "is not a docker command" in out.stderr:
        pytest.skip("this docker CLI has no `stack config`")
    assert out.returncode == 0, out.stderr
    rendered = yaml.safe_load(out.stdout)
    assert rendered["services"]["router"]["deploy"]["replicas"] == 2
    refused = subprocess.run(
        ["docker", "stack", "config", *files], env={**env, "ADMIN_TOKEN": ""}, capture_output=True, text=True
    )
    assert refused.returncode != 0 and "ADMIN_TOKEN" in refused.stderr
