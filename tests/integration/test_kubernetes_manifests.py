"""The Kubernetes manifests (deploy/kubernetes): every overlay renders with the real `kubectl
kustomize`, every rendered object validates against the schemas of a current Kubernetes release
offline (kubernetes-validate, strict: an unknown field fails), and the rollout's shape holds.

No cluster runs here: what these checks cannot see (scheduling, probes answering, DNS, network
policies enforced by a CNI, the Operator's CRDs) is listed in deploy/kubernetes/README.md.
"""

from __future__ import annotations

import subprocess

import kubernetes_validate
import pytest
import yaml

from canary_common import contracts
from support.binaries import require
from support.procs import ROOT

KUBE = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p.name for p in (KUBE / "overlays").iterdir() if (p / "kustomization.yaml").exists())
KUBERNETES_VERSION = "1.37.0"  # the newest schemas kubernetes-validate 1.37.0 carries
# Custom resources have no schema in kubernetes-validate: checked by hand below.
CUSTOM_KINDS = {"ServiceMonitor"}
JOBS = {"router", "model-server", "controller", "mlflow"}  # the job names the rules and dashboards use


def render(overlay: str) -> list[dict]:
    kubectl = require("kubectl", "kubectl")
    out = subprocess.run(
        [kubectl, "kustomize", str(KUBE / "overlays" / overlay)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request):
    return request.param, render(request.param)


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def workloads(docs: list[dict]) -> dict[str, dict]:
    return {**by_kind(docs, "Deployment"), **by_kind(docs, "StatefulSet")}


def test_there_are_demo_and_production_overlays():
    assert {"demo", "production", "operator"} <= set(OVERLAYS)


def test_every_object_validates_against_the_kubernetes_schemas(rendered):
    _, docs = rendered
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")


def test_every_container_has_readiness_and_liveness_probes_on_its_endpoints(rendered):
    _, docs = rendered
    for name, workload in workloads(docs).items():
        if name == "loadgen":  # a client: nothing to probe
            continue
        for container in workload["spec"]["template"]["spec"]["containers"]:
            assert container.get("readinessProbe") and container.get("livenessProbe"), name
    routers = workloads(docs)["router"]["spec"]["template"]["spec"]["containers"][0]
    assert routers["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert routers["livenessProbe"]["httpGet"]["path"] == "/health"


def test_the_controller_is_one_replica_of_a_statefulset(rendered):
    _, docs = rendered
    (controller,) = by_kind(docs, "StatefulSet").values()
    assert controller["metadata"]["name"] == "controller" and controller["spec"]["replicas"] == 1
    assert "controller" not in by_kind(docs, "Deployment")


def test_routers_have_a_budget_an_autoscaler_and_a_headless_peer_service(rendered):
    overlay, docs = rendered
    pdb, hpa = by_kind(docs, "PodDisruptionBudget")["router"], by_kind(docs, "HorizontalPodAutoscaler")["router"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "router" and hpa["spec"]["minReplicas"] >= 2
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "router"
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # a node can always be drained
    assert by_kind(docs, "Service")["router-peers"]["spec"]["clusterIP"] == "None"
    env = {e["name"]: e for e in workloads(docs)["router"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ROUTER_PEERS"]["value"] == "dns:router-peers:8000"
    edge_env = {e["name"]: e for e in workloads(docs)["edge"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert edge_env["ROUTER_UPSTREAM"]["value"] == "router-peers:8000"


def test_secrets_are_read_from_the_canary_secret(rendered):
    overlay, docs = rendered
    refs = {}
    for workload in workloads(docs).values():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            for e in container.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.setdefault(e["name"], set()).add(ref["name"])
    assert set(refs) == {"ADMIN_TOKEN", "FEEDBACK_SECRET"}
    names = set().union(*refs.values())
    assert len(names) == 1 and next(iter(names)).startswith("canary-secrets")
    secrets = by_kind(docs, "Secret")
    if overlay == "demo":  # generated with demo values
        assert set(secrets) == names
    else:  # made by the operator beforehand, never rendered from the repository
        assert not secrets


def test_prometheus_finds_every_scraped_pod_under_its_contract_job(rendered):
    overlay, docs = rendered
    jobs = {}
    for name, workload in workloads(docs).items():
        annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") == "true":
            jobs[name] = annotations["canary.io/job"]
            port = int(annotations["prometheus.io/port"])
            ports = [p["containerPort"] for c in workload["spec"]["template"]["spec"]["containers"] for p in c["ports"]]
            assert port in ports, name
    expected = JOBS - ({"mlflow"} if overlay != "demo" else set())
    assert set(jobs.values()) == expected, jobs
    router = workloads(docs)["router"]["spec"]["template"]["metadata"]["annotations"]
    assert router["prometheus.io/path"] == "/metrics/prometheus"
    for arm in contracts.ARMS:
        labels = workloads(docs)[f"model-server-{arm}"]["spec"]["template"]["metadata"]["labels"]
        assert labels["canary.io/arm"] == arm


def test_the_operator_overlay_uses_servicemonitors_and_no_bundled_prometheus():
    docs = render("operator")
    monitors = by_kind(docs, "ServiceMonitor")
    assert monitors and "prometheus" not in by_kind(docs, "Deployment")
    for monitor in monitors.values():
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name" and monitor["spec"]["endpoints"]
    services = by_kind(docs, "Service")
    for name in ("router", "model-server-production", "model-server-canary", "controller"):
        assert services[name]["metadata"]["labels"]["app.kubernetes.io/name"] in JOBS, name
    controller = workloads(docs)["controller"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in controller["env"]}
    assert "prometheus-operated" in env["PROMETHEUS_URL"]


def test_the_admin_api_stays_inside_the_namespace(rendered):
    _, docs = rendered
    policies = by_kind(docs, "NetworkPolicy")
    assert {"controller", "router", "model-server"} <= set(policies)
    for name, policy in policies.items():
        for rule in policy["spec"]["ingress"]:
            for peer in rule["from"]:
                # Only pods of this namespace: no namespaceSelector, no ipBlock.
                assert set(peer) == {"podSelector"}, (name, peer)
    assert "edge" not in policies  # the one way in, and it asks for the admin token


def test_production_takes_an_external_registry_and_images_from_a_registry():
    docs = render("production")
    assert "mlflow" not in workloads(docs)
    config = by_kind(docs, "ConfigMap")["canary-config"]["data"]
    assert config["MLFLOW_TRACKING_URI"].startswith("https://")
    for name, workload in workloads(docs).items():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            assert not container["image"].endswith(":local"), (name, container["image"])


def test_the_cluster_prometheus_config_passes_promtool(tmp_path):
    """Debian's promtool is built without Kubernetes service discovery, so the pod discovery is
    swapped for a static target here; everything else (relabelling, rules, globals) is checked."""
    promtool = require("promtool", "prometheus")
    cfg = yaml.safe_load((ROOT / "prometheus" / "kubernetes.yml").read_text())
    cfg["rule_files"] = [str(ROOT / "prometheus" / "rules" / "*.yml")]
    (pods,) = [job for job in cfg["scrape_configs"] if "kubernetes_sd_configs" in job]
    assert pods["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"own_namespace": True}}]
    pods["static_configs"] = [{"targets": ["127.0.0.1:1"]}]
    del pods["kubernetes_sd_configs"]
    (tmp_path / "kubernetes.yml").write_text(yaml.safe_dump(cfg))
    out = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "kubernetes.yml")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    targets = {r.get("target_label") for r in pods["relabel_configs"]}
    assert {"__address__", "__metrics_path__", "job", "arm", "instance"} <= targets
