"""Every Grafana panel's query against the live Prometheus of the process-mode stack (there is
no Grafana binary to be had here: its files are checked in tests/unit/test_grafana_files.py).
Runs after the rollout tests, so the controller's evidence metrics exist."""
import time

import requests

from support.grafana import as_promql, panel_targets
from support.procs import ROOT
from support.stack import Traffic

DASHBOARD = ROOT / "grafana/dashboards/canary.json"


def run(stack, expr):
    resp = requests.get(f"{stack.prometheus_url}/api/v1/query", params={"query": as_promql(expr)}, timeout=10)
    assert resp.status_code == 200, (expr, resp.text)
    return resp.json()["data"]["result"]


def test_every_panel_returns_series_for_both_models(stack):
    # The "Rollout analysis" row shows the sequential analysis' evidence.
    stack.restart_controller(ANALYSIS_CONFIG=str(ROOT / "tests/integration/analysis-fast.yaml"), STEP_INTERVAL_S="")
    stack.deploy("2", production="1")
    requests.post(f"{stack.admin_url}/set_canary/30", headers=stack.auth, timeout=5).raise_for_status()
    targets = [(panel["title"], t["expr"], "{{model}}" in t.get("legendFormat", ""))
               for panel, t in panel_targets(DASHBOARD)]
    assert len(targets) >= 8
    with Traffic(stack.public_url, rate=40):
        deadline = time.monotonic() + 90
        while True:
            results = {expr: run(stack, expr) for _, expr, _ in targets}
            missing = [(title, expr) for title, expr, by_model in targets
                       if not results[expr]
                       or (by_model and {r["metric"].get("model") for r in results[expr]} != {"production", "canary"})]
            if not missing:
                break
            assert time.monotonic() < deadline, f"panels without series for both models: {missing}"
            time.sleep(2)
