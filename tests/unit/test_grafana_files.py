"""Grafana provisioning files and the canary dashboard: they load and are consistent (that every
query is valid PromQL, and returns data, is checked with the real promtool and Prometheus in
tests/integration/test_grafana_queries.py)."""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path

import yaml

from canary_common.regression import ABS_ERROR_METRIC, FINITE_BOUNDS
from support.grafana import annotation_queries, iter_panels, panel_expr, panel_queries, panel_targets, with_defaults

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "canary.json"

WITHIN_TOLERANCE = "Share within tolerance (${tolerance}) by model"
# Panels that put production and canary side by side: at least one query of each must be
# labelled by `model` (checked against real Prometheus in test_grafana_queries.py).
COMPARISON_PANELS = {
    "Canary weight over time",
    "Requests per second by model",
    "Accuracy by model",
    "Mean absolute error by model",
    WITHIN_TOLERANCE,
    "Latency p50 / p95 / p99 by model",
    "Error ratio by model",
    "Observed traffic share by model",
    "Samples per arm in the analysis",
    "Analysed metric value by model",
}


def test_datasource_provisioning():
    doc = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert doc["apiVersion"] == 1
    (ds,) = doc["datasources"]
    assert ds["uid"] == "prometheus" and ds["type"] == "prometheus"
    assert ds["url"] == "http://prometheus:9090"
    assert ds["isDefault"] is True and ds["access"] == "proxy"


def test_dashboard_provisioning_points_at_the_mounted_folder():
    doc = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "canary.yml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_grafana_ini_anonymous_viewer_and_admin_password_from_env():
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string((GRAFANA / "grafana.ini").read_text())
    assert ini.getboolean("auth.anonymous", "enabled")
    assert ini.get("auth.anonymous", "org_role") == "Viewer"
    assert ini.get("security", "admin_password") == "$__env{GRAFANA_ADMIN_PASSWORD}"
    assert not ini.getboolean("users", "allow_sign_up")


def test_dashboard_identity():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "canary-overview"
    assert dash["title"] == "Canary: production vs canary"
    assert "id" not in dash or dash["id"] is None  # provisioning assigns it


def test_panel_ids_unique_and_layout_sane():
    dash = json.loads(DASHBOARD.read_text())
    panels = list(iter_panels(dash))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), ids
    for p in panels:
        pos = p["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, p["title"]
    titles = {p["title"] for p in panels}
    assert COMPARISON_PANELS <= titles
    assert {
        "Rollout analysis",
        "Fallbacks to production",
        "Last decision",
        "Evidence against the canary (log e-value)",
        "Estimated difference ĝ by metric",
    } <= titles


def test_rollout_analysis_row_uses_the_controller_evidence_metrics():
    dash = json.loads(DASHBOARD.read_text())
    panels = list(iter_panels(dash))
    start = next(i for i, p in enumerate(panels) if p["type"] == "row" and p["title"] == "Rollout analysis")
    after = [p for p in panels[start + 1 :]]
    exprs = " ".join(t["expr"] for p in after for t in p.get("targets", []))
    for metric in (
        "canary_controller_evidence_log_e_value",
        "canary_controller_evidence_log_threshold",
        "canary_controller_evidence_estimate",
        "canary_controller_evidence_bound",
        "canary_controller_evidence_n",
        "canary_controller_evidence_value",
        "canary_controller_decision_info",
    ):
        assert metric in exprs


def test_every_target_and_panel_uses_the_datasource_uid():
    pairs = panel_targets(DASHBOARD)
    assert len(pairs) >= 15
    for panel, t in pairs:
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        assert t["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        assert t["expr"].strip(), panel["title"]
    dash = json.loads(DASHBOARD.read_text())
    for ann in dash["annotations"]["list"]:
        if "expr" in ann:
            assert ann["datasource"]["uid"] == "prometheus"


def test_comparison_panels_split_by_model():
    by_title: dict[str, list[dict]] = {}
    for panel, t in panel_targets(DASHBOARD):
        by_title.setdefault(panel["title"], []).append(t)
    for title in COMPARISON_PANELS:
        assert any("{{model}}" in t["legendFormat"] for t in by_title[title]), title


def test_controller_decisions_are_annotations():
    names = dict(annotation_queries(DASHBOARD))
    assert "canary_controller_decisions_total" in names["Controller decisions"]


def test_recorded_series_used_by_the_dashboard_exist_in_the_rules():
    recorded = {
        r["record"]
        for f in (ROOT / "prometheus" / "rules").glob("*.yml")
        for g in yaml.safe_load(f.read_text())["groups"]
        for r in g["rules"]
        if "record" in r
    }
    used = {
        name for _, expr in panel_queries(DASHBOARD) for name in re.findall(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b", expr)
    }
    assert used and used <= recorded, used - recorded


def test_nothing_names_the_model():
    # Any registered model: the arms are `model` = production | canary, the model's name is nowhere.
    assert "sentiment" not in DASHBOARD.read_text().lower()


def test_regression_panels_read_the_abs_error_histogram_next_to_accuracy():
    dash = json.loads(DASHBOARD.read_text())
    panels = list(iter_panels(dash))
    titles = [p["title"] for p in panels]
    accuracy = titles.index("Accuracy by model")
    assert titles[accuracy + 1 : accuracy + 3] == ["Mean absolute error by model", WITHIN_TOLERANCE]
    rules = {
        r["record"]: r["expr"]
        for f in (ROOT / "prometheus" / "rules").glob("*.yml")
        for g in yaml.safe_load(f.read_text())["groups"]
        for r in g["rules"]
        if "record" in r
    }
    for panel in panels[accuracy + 1 : accuracy + 3]:
        for t in panel["targets"]:
            recorded = re.findall(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b", t["expr"])
            assert recorded and all(ABS_ERROR_METRIC + "_" in rules[name] for name in recorded), t["expr"]


def test_tolerance_variable_offers_the_histogram_bounds():
    (var,) = json.loads(DASHBOARD.read_text())["templating"]["list"]
    assert var["name"] == "tolerance" and var["type"] == "custom" and not var["multi"]
    values = [o["value"] for o in var["options"]]
    assert [float(v) for v in values] == list(FINITE_BOUNDS)
    assert var["current"]["value"] in values and var["query"] == ",".join(values)
    # Both spellings of a bound: prometheus_client's "1.0" and Prometheus 3's normalised "1".
    expr = with_defaults(DASHBOARD, panel_expr(DASHBOARD, WITHIN_TOLERANCE))
    assert 'le=~"1(\\\\.0)?"' in expr and "$" not in expr
