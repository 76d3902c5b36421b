"""Prometheus configuration for both ways the stack runs.

`render_compose()` is what `prometheus/prometheus.yml` holds (a unit test keeps the two equal);
`render(targets, rules_dir)` is the same configuration with loopback targets for the process-mode
tests. Both come from `_config`, so job names, the `arm` label and the rule files are identical and
the recording rules, alerts and dashboards work on either. Firing alerts go to Alertmanager: the
`alertmanager` service in compose, the `alertmanager_url` given to `render` in process mode.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

# Service name -> value of the `arm` label on the model-server job. The router's own metrics carry
# the arm in `model`; the servers' carry `alias`, so `arm` is added by the scrape config.
MODEL_SERVER_ARMS = {"model-server-production": "production", "model-server-canary": "canary"}

COMPOSE_RULES_DIR = "/etc/prometheus/rules"
COMPOSE_ALERTMANAGER_URL = "http://alertmanager:9093"

_JOB_ORDER = ("prometheus", "router", "model-server", "controller", "mlflow")
# The routers keep GET /metrics for the lab's JSON summary; their exposition format is here.
ROUTER_METRICS_PATH = "/metrics/prometheus"


def _job(
    name: str,
    static: list[str] | None = None,
    *,
    dns_name: str | None = None,
    port: int = 8000,
    metrics_path: str = "/metrics",
) -> dict:
    job: dict = {"job_name": name, "metrics_path": metrics_path}
    if dns_name:
        # Every replica behind the compose service name is its own target; refreshed every 5 s
        # so `docker compose up --scale router=N` is picked up without a reload.
        job["dns_sd_configs"] = [{"names": [dns_name], "type": "A", "port": port, "refresh_interval": "5s"}]
    else:
        job["static_configs"] = [{"targets": list(static or [])}]
    return job


def _config(scrape_interval: str, rules_dir: str, jobs: list[dict], alertmanager_url: str | None = None) -> dict:
    cfg: dict = {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": scrape_interval,
            "scrape_timeout": scrape_interval if _seconds(scrape_interval) < 10 else "10s",
        },
    }
    if alertmanager_url:
        cfg["alerting"] = _alerting(alertmanager_url)
    cfg["rule_files"] = [f"{rules_dir.rstrip('/')}/*.yml"]
    cfg["scrape_configs"] = jobs
    return cfg


def _alerting(url: str) -> dict:
    """Prometheus's `alerting:` block for one Alertmanager at `url` (http[s]://host:port[/prefix])."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.port:
        raise ValueError(f"alertmanager_url must look like http://host:port, got {url!r}")
    manager: dict = {"scheme": parts.scheme}
    if parts.path.strip("/"):
        manager["path_prefix"] = parts.path
    manager["static_configs"] = [{"targets": [parts.netloc]}]
    return {"alertmanagers": [manager]}


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for suffix in ("ms", "s", "m", "h"):
        if duration.endswith(suffix):
            return float(duration[: -len(suffix)]) * units[suffix]
    raise ValueError(f"unsupported duration {duration!r}")


def _model_server_job(targets: dict[str, list[str]]) -> dict | None:
    groups = [
        {"targets": list(targets[svc]), "labels": {"arm": arm}}
        for svc, arm in MODEL_SERVER_ARMS.items()
        if targets.get(svc)
    ]
    if not groups:
        return None
    return {"job_name": "model-server", "metrics_path": "/metrics", "static_configs": groups}


def render_compose() -> str:
    """The docker-compose configuration (service DNS names, 5 s scrapes)."""
    jobs = [
        _job("prometheus", ["localhost:9090"]),
        _job("router", dns_name="router", port=8000, metrics_path=ROUTER_METRICS_PATH),
        _model_server_job({svc: [f"{svc}:8000"] for svc in MODEL_SERVER_ARMS}),
        _job("controller", ["controller:8000"]),
        _job("mlflow", ["mlflow:5000"]),  # mlflow server --expose-prometheus serves /metrics
    ]
    return _dump(_config("5s", COMPOSE_RULES_DIR, jobs, COMPOSE_ALERTMANAGER_URL))


def render(
    targets: dict[str, list[str]], rules_dir: str, scrape_interval: str = "1s", alertmanager_url: str | None = None
) -> str:
    """Process-mode configuration with static loopback targets.

    `targets` is keyed by compose service name: "router" (all replicas), "model-server-production",
    "model-server-canary", "controller", "mlflow" and optionally "prometheus"; values are
    "host:port" strings. A key that is absent or empty leaves its job out, so no TargetDown fires
    for a service the test does not run. `alertmanager_url` (http://host:port): where firing
    alerts go; None leaves alerting out.
    """
    unknown = set(targets) - {"prometheus", "router", "controller", "mlflow", *MODEL_SERVER_ARMS}
    if unknown:
        raise ValueError(f"unknown target keys: {sorted(unknown)}")
    jobs: list[dict] = []
    for name in _JOB_ORDER:
        if name == "model-server":
            job = _model_server_job(targets)
        elif targets.get(name):
            job = _job(name, targets[name], metrics_path=ROUTER_METRICS_PATH if name == "router" else "/metrics")
        else:
            job = None
        if job:
            jobs.append(job)
    return _dump(_config(scrape_interval, str(Path(rules_dir).resolve()), jobs, alertmanager_url))


def _dump(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)


if __name__ == "__main__":
    # `python prometheus/render_config.py > prometheus/prometheus.yml` regenerates the compose file.
    sys.stdout.write("# Generated by prometheus/render_config.py (render_compose); edit that, then regenerate.\n")
    sys.stdout.write(render_compose())
