"""Prometheus for the process-mode tests: a copy of prometheus/ (process.yml, the rule files) in a
scratch folder, with the targets written as file_sd files (the committed config is the source)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from support.procs import ROOT

JOBS = ("prometheus", "router", "controller", "mlflow", "alertmanager")
MODEL_SERVER_ARMS = {"model-server-production": "production", "model-server-canary": "canary"}
ROUTER_METRICS_PATH = "/metrics/prometheus"  # the routers keep GET /metrics for the lab's JSON


def prepare(folder: Path, targets: dict[str, list[str]]) -> Path:
    """Copy the config and rules into `folder`, write the targets; return the config file's path.

    `targets` is keyed by compose service name: "router" (all replicas), "model-server-production",
    "model-server-canary", "controller", "mlflow", "prometheus", "alertmanager"; values are host:port.
    """
    unknown = set(targets) - set(JOBS) - set(MODEL_SERVER_ARMS)
    if unknown:
        raise ValueError(f"unknown target keys: {sorted(unknown)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "prometheus" / "process.yml", folder / "prometheus.yml")
    shutil.copytree(ROOT / "prometheus" / "rules", folder / "rules", dirs_exist_ok=True)
    (folder / "targets").mkdir(exist_ok=True)
    for job in JOBS:
        if targets.get(job):
            _write(folder / "targets" / f"{job}.json", [{"targets": list(targets[job])}])
    groups = [
        {"targets": list(targets[svc]), "labels": {"arm": arm}}
        for svc, arm in MODEL_SERVER_ARMS.items()
        if targets.get(svc)
    ]
    if groups:
        _write(folder / "targets" / "model-server.json", groups)
    return folder / "prometheus.yml"


def _write(path: Path, groups: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")  # file_sd may read at any moment: replace the file whole
    tmp.write_text(json.dumps(groups))
    tmp.replace(path)
