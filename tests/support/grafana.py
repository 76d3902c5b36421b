"""Read the queries out of a Grafana dashboard JSON, for tests that check them against Prometheus.
The committed JSON (grafana/dashboards/canary.json) is the dashboard's source: edit it, or change
the dashboard in Grafana and export it over the file."""

from __future__ import annotations

import json
import re
from pathlib import Path

# Grafana's own interval variables, replaced by plain durations so the expression is PromQL.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "${__rate_interval}": "1m",
    "${__interval}": "15s",
    "${__range}": "1h",
}


def _load(dashboard_path) -> dict:
    return json.loads(Path(dashboard_path).read_text())


def iter_panels(dashboard: dict):
    """Every panel, rows' nested (collapsed) panels included, rows themselves included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", []) or []


def panel_targets(dashboard_path) -> list[tuple[dict, dict]]:
    """(panel, target) for every target of every panel."""
    return [(panel, t) for panel in iter_panels(_load(dashboard_path)) for t in panel.get("targets", []) or []]


def panel_queries(dashboard_path) -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel, including rows' nested panels."""
    return [(panel.get("title", ""), t["expr"]) for panel, t in panel_targets(dashboard_path) if t.get("expr")]


def annotation_queries(dashboard_path) -> list[tuple[str, str]]:
    """(annotation name, expr) for every Prometheus annotation query."""
    out = []
    for ann in _load(dashboard_path).get("annotations", {}).get("list", []):
        expr = ann.get("expr") or (ann.get("target") or {}).get("expr")
        if expr:
            out.append((ann.get("name", ""), expr))
    return out


def as_promql(expr: str) -> str:
    """The expression with Grafana's interval variables replaced, so Prometheus can parse it."""
    for var in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(var, GRAFANA_VARIABLES[var])
    leftover = re.findall(r"\$\{?\w+", expr.replace("$1", ""))
    if leftover:
        raise ValueError(f"unknown dashboard variables {leftover} in {expr!r}")
    return expr


def with_defaults(dashboard_path, expr: str) -> str:
    """The expression with the dashboard's own variables at their current (default) values, as
    Grafana sends it before anyone picks another value."""
    for var in _load(dashboard_path).get("templating", {}).get("list", []):
        value = var.get("current", {}).get("value")
        expr = re.sub(r"\$\{?" + re.escape(var["name"]) + r"\}?", str(value), expr)
    return expr


def panel_expr(dashboard_path, title: str) -> str:
    """The first query of the panel with this title."""
    return next(expr for panel_title, expr in panel_queries(dashboard_path) if panel_title == title)
