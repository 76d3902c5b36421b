"""Every Grafana panel's query against the live Prometheus of the process-mode stack (there is
no Grafana binary to be had here: its files are checked in tests/unit/test_grafana_files.py).
Runs after the rollout tests, so the controller's evidence metrics exist.

The dashboard serves any model: its accuracy panel fills for classification models, its
mean-absolute-error and within-tolerance panels for regression models. Every query must be valid
here; a panel of the kind of task the stack's model does not have may stay empty (the regression
panels get their data from the stand-in exporters of tests/unit/test_grafana_queries.py)."""

import time

import requests

from canary_common.regression import ABS_ERROR_METRIC
from support.grafana import as_promql, panel_targets, with_defaults
from support.procs import ROOT
from support.stack import Traffic

DASHBOARD = ROOT / "grafana/dashboards/canary.json"
# The router's labelled-prediction series of each kind of task.
TASK_SERIES = {"classification": "canary_router_labelled_predictions_total", "regression": ABS_ERROR_METRIC + "_count"}


def run(stack, expr):
    query = as_promql(with_defaults(DASHBOARD, expr))
    resp = requests.get(f"{stack.prometheus_url}/api/v1/query", params={"query": query}, timeout=10)
    assert resp.status_code == 200, (expr, resp.text)
    return resp.json()["data"]["result"]


def task_of(expr: str) -> str | None:
    """The kind of task whose labels a query reads, or None when it reads neither."""
    if "prediction_abs_error" in expr or "labelled_values" in expr:
        return "regression"
    if "canary_router_accuracy" in expr or "labelled_predictions" in expr:
        return "classification"
    return None


def served_tasks(stack) -> set[str]:
    return {task for task, series in TASK_SERIES.items() if run(stack, f"count({series})")}


def shows_both(result: list[dict], by_model: bool) -> bool:
    """Data, and for a comparison panel one series per arm."""
    return bool(result) and (not by_model or {r["metric"].get("model") for r in result} == {"production", "canary"})


def test_every_panel_returns_series_for_both_models(stack):
    # The "Rollout analysis" row shows the sequential analysis' evidence.
    stack.restart_controller(ANALYSIS_CONFIG=str(ROOT / "tests/integration/analysis-fast.yaml"), STEP_INTERVAL_S="")
    stack.deploy("2", production="1")
    requests.post(f"{stack.admin_url}/set_canary/30", headers=stack.auth, timeout=5).raise_for_status()
    targets = [
        (panel["title"], t["expr"], "{{model}}" in t.get("legendFormat", "")) for panel, t in panel_targets(DASHBOARD)
    ]
    assert len(targets) >= 8
    assert {task_of(expr) for _, expr, _ in targets} >= set(TASK_SERIES)
    with Traffic(stack.public_url, rate=40):
        deadline = time.monotonic() + 90
        while True:
            results = {expr: run(stack, expr) for _, expr, _ in targets}  # each one valid, even if empty
            tasks = served_tasks(stack)
            missing = [
                (title, expr)
                for title, expr, by_model in targets
                if task_of(expr) in tasks | {None} and not shows_both(results[expr], by_model)
            ]
            if tasks and not missing:
                break
            assert time.monotonic() < deadline, f"panels without series for both models: {missing} (tasks {tasks})"
            time.sleep(2)
