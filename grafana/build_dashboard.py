"""Builds grafana/dashboards/canary.json, the provisioned "Canary: production vs canary" dashboard.

    python grafana/build_dashboard.py          # rewrite the JSON after editing this file

A unit test checks the committed JSON is what this prints, so edit here, not in the JSON.
Queries read the recording rules in prometheus/rules/canary.rules.yml (series labelled by `model`
= production | canary) and the controller's own metrics. Nothing names the model: it works for any
registered model; classification models fill the accuracy panel, regression models the
mean-absolute-error and within-tolerance panels (the other stays empty).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
from canary_common.regression import FINITE_BOUNDS  # noqa: E402

OUT = Path(__file__).resolve().parent / "dashboards" / "canary.json"
DS = {"type": "prometheus", "uid": "prometheus"}
ACCURACY_THRESHOLD = 0.85  # controller's ACCURACY_THRESHOLD=85 (%)
LATENCY_THRESHOLD_S = 0.1  # LATENCY_THRESHOLD=100 (ms)
ERROR_THRESHOLD = 0.05  # ERROR_THRESHOLD=5 (%)
# The tolerance of "share within tolerance" is a bound of the router's abs-error histogram, picked
# on the dashboard (the label's unit differs per model); 1 until someone picks another.
TOLERANCE_VAR = "tolerance"
TOLERANCE_DEFAULT = "1"

# The two arms keep their colours on every panel.
ARM_COLOURS = [
    {
        "matcher": {"id": "byRegexp", "options": "^production.*"},
        "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": "blue"}}],
    },
    {
        "matcher": {"id": "byRegexp", "options": "^canary.*"},
        "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": "orange"}}],
    },
]


class Layout:
    def __init__(self):
        self.next_id = 1
        self.y = 0
        self.x = 0
        self.row_h = 0

    def pos(self, w: int, h: int) -> dict:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def new_line(self) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0

    def take_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def target(expr: str, legend: str, ref: str, *, instant: bool = False, fmt: str = "time_series") -> dict:
    t = {
        "datasource": DS,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
        "format": fmt,
        "editorMode": "code",
    }
    return t


def timeseries(
    layout: Layout,
    title: str,
    description: str,
    targets: list[dict],
    *,
    unit: str,
    w: int = 12,
    h: int = 8,
    thresholds: list[tuple[float, str]] | None = None,
    min_: float | None = None,
    max_: float | None = None,
    draw_style: str = "line",
    overrides: list[dict] | None = None,
) -> dict:
    steps = [{"color": "transparent", "value": None}]
    for value, colour in thresholds or []:
        steps.append({"color": colour, "value": value})
    defaults = {
        "unit": unit,
        "color": {"mode": "palette-classic"},
        "custom": {
            "drawStyle": draw_style,
            "lineWidth": 2,
            "fillOpacity": 0,
            "showPoints": "never",
            "spanNulls": False,
            "lineInterpolation": "stepAfter" if draw_style == "line" else "linear",
            "thresholdsStyle": {"mode": "line" if thresholds else "off"},
        },
        "thresholds": {"mode": "absolute", "steps": steps},
    }
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    return {
        "id": layout.take_id(),
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": layout.pos(w, h),
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": (overrides if overrides is not None else ARM_COLOURS)},
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "mean"]},
            "tooltip": {"mode": "multi", "sort": "none"},
        },
    }


def stat(
    layout: Layout,
    title: str,
    description: str,
    targets: list[dict],
    *,
    unit: str = "none",
    w: int = 6,
    h: int = 4,
    mappings: list | None = None,
    steps: list | None = None,
    text_mode: str = "value",
) -> dict:
    return {
        "id": layout.take_id(),
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": layout.pos(w, h),
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "mappings": mappings or [],
                "thresholds": {"mode": "absolute", "steps": steps or [{"color": "green", "value": None}]},
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": text_mode,
            "justifyMode": "auto",
            "orientation": "auto",
        },
    }


def table(
    layout: Layout,
    title: str,
    description: str,
    targets: list[dict],
    *,
    w: int = 12,
    h: int = 8,
    exclude: tuple[str, ...] = (),
) -> dict:
    return {
        "id": layout.take_id(),
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": layout.pos(w, h),
        "targets": targets,
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"showHeader": True, "cellHeight": "sm"},
        "transformations": [{"id": "organize", "options": {"excludeByName": {name: True for name in exclude}}}],
    }


def row(layout: Layout, title: str) -> dict:
    layout.new_line()
    panel = {
        "id": layout.take_id(),
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": layout.y},
        "panels": [],
    }
    layout.y += 1
    return panel


def within_tolerance_expr() -> str:
    """Bucket rate at le = tolerance over the arm's labelled values. The regex accepts both
    spellings of a bound ("1.0" from prometheus_client, "1" where Prometheus 3 normalises le)."""
    return (
        f'model:canary_router_prediction_abs_error_bucket:rate1m{{le=~"${{{TOLERANCE_VAR}}}(\\\\.0)?"}}'
        " / ignoring (le) (model:canary_router_labelled_values:rate1m > 0)"
    )


def tolerance_variable() -> dict:
    options = [{"text": f"{b:g}", "value": f"{b:g}", "selected": f"{b:g}" == TOLERANCE_DEFAULT} for b in FINITE_BOUNDS]
    return {
        "type": "custom",
        "name": TOLERANCE_VAR,
        "label": "tolerance (regression)",
        "description": "For regression models: the absolute error that still counts as a good prediction "
        "(a bound of the router's abs-error histogram).",
        "query": ",".join(o["value"] for o in options),
        "options": options,
        "current": {"text": TOLERANCE_DEFAULT, "value": TOLERANCE_DEFAULT, "selected": True},
        "multi": False,
        "includeAll": False,
        "hide": 0,
    }


def with_defaults(expr: str) -> str:
    """The expression with this dashboard's own variables at their defaults, as Grafana sends it
    before anyone picks another value (tests run the queries this way)."""
    return re.sub(r"\$\{?" + TOLERANCE_VAR + r"\}?", TOLERANCE_DEFAULT, expr)


def build() -> dict:
    # Long on purpose: the dashboard, panel by panel, top to bottom, as it reads on the screen.
    L = Layout()
    panels: list[dict] = []

    panels.append(row(L, "Rollout"))
    panels.append(
        stat(
            L,
            "Controller phase",
            "The rollout phase the controller reports (canary_controller_phase == 1).",
            [target("max by (phase) (canary_controller_phase) == 1", "{{phase}}", "A", instant=True)],
            text_mode="name",
            steps=[{"color": "blue", "value": None}],
        )
    )
    panels.append(
        stat(
            L,
            "Canary weight",
            "Share of traffic the routers send to the canary (highest over replicas).",
            [target("max(canary_router_canary_weight_ratio)", "canary weight", "A", instant=True)],
            unit="percentunit",
            steps=[{"color": "orange", "value": None}],
        )
    )
    panels.append(
        stat(
            L,
            "Routers failed closed",
            "Router replicas that lost the rollout state and send everything to "
            "production (canary_router_fail_closed).",
            [target("sum(max by (instance) (canary_router_fail_closed))", "replicas failed closed", "A", instant=True)],
            steps=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
        )
    )
    panels.append(
        stat(
            L,
            "Targets down",
            "Scrape targets that are down, by job.",
            [target("count by (job) (up == 0) or on () vector(0)", "{{job}}", "A", instant=True)],
            steps=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
        )
    )

    panels.append(
        timeseries(
            L,
            "Canary weight over time",
            "Configured share per arm (canary = weight, production = 1 - weight) and the controller's target weight.",
            [
                target("model:canary_router_weight:ratio", "{{model}}", "A"),
                target("max(canary_controller_weight_ratio)", "controller target", "B"),
            ],
            unit="percentunit",
            min_=0,
            max_=1,
            overrides=ARM_COLOURS
            + [
                {
                    "matcher": {"id": "byName", "options": "controller target"},
                    "properties": [
                        {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": "gray"}},
                    ],
                }
            ],
        )
    )
    panels.append(
        timeseries(
            L,
            "Requests per second by model",
            "Backend attempts per second per arm, summed over router replicas.",
            [target("model:canary_router_requests:rate1m", "{{model}}", "A")],
            unit="reqps",
            min_=0,
        )
    )

    panels.append(row(L, "Quality"))
    panels.append(
        timeseries(
            L,
            "Accuracy by model",
            f"Classification models: correct / labelled predictions over 1m per arm; the "
            f"line is the controller's accuracy threshold ({ACCURACY_THRESHOLD:.0%}). Empty for regression models.",
            [target("model:canary_router_accuracy:ratio_rate1m", "{{model}}", "A")],
            unit="percentunit",
            max_=1,
            thresholds=[(ACCURACY_THRESHOLD, "red")],
            w=8,
        )
    )
    panels.append(
        timeseries(
            L,
            "Mean absolute error by model",
            "Regression models: mean |prediction - actual value| of the "
            "labelled predictions over 1m per arm, in the label's unit (lower is better). Empty for "
            "classification models.",
            [target("model:canary_router_prediction_abs_error:mean_rate1m", "{{model}}", "A")],
            unit="short",
            min_=0,
            w=8,
        )
    )
    panels.append(
        timeseries(
            L,
            f"Share within tolerance (${{{TOLERANCE_VAR}}}) by model",
            "Regression models: share of labelled "
            "predictions whose absolute error is at most the tolerance picked above (a bound of the router's "
            "histogram), over 1m per arm. Empty for classification models.",
            [target(within_tolerance_expr(), "{{model}}", "A")],
            unit="percentunit",
            min_=0,
            max_=1,
            w=8,
        )
    )
    panels.append(
        timeseries(
            L,
            "Latency p50 / p95 / p99 by model",
            "Successful backend calls, from the router's histogram, "
            f"over 1m; the line is the latency threshold ({LATENCY_THRESHOLD_S * 1000:.0f} ms).",
            [
                target("model:canary_router_request_duration_seconds:p50_rate1m", "{{model}} p50", "A"),
                target("model:canary_router_request_duration_seconds:p95_rate1m", "{{model}} p95", "B"),
                target("model:canary_router_request_duration_seconds:p99_rate1m", "{{model}} p99", "C"),
            ],
            unit="s",
            min_=0,
            thresholds=[(LATENCY_THRESHOLD_S, "red")],
        )
    )
    panels.append(
        timeseries(
            L,
            "Error ratio by model",
            f"Failed / all backend calls over 1m per arm; the line is the error threshold ({ERROR_THRESHOLD:.0%}).",
            [target("model:canary_router_request_errors:ratio_rate1m", "{{model}}", "A")],
            unit="percentunit",
            min_=0,
            thresholds=[(ERROR_THRESHOLD, "red")],
        )
    )
    panels.append(
        timeseries(
            L,
            "Fallbacks to production",
            "Canary failures that production answered instead, per second, "
            "and as a share of canary calls; and canary requests that production answered because a router "
            "had ejected the canary after failures in a row (outlier ejection: the canary was not tried).",
            [
                target("sum(job:canary_router_fallbacks:rate1m)", "fallbacks/s", "A"),
                target(
                    'sum(job:canary_router_fallbacks:rate1m) / on () model:canary_router_requests:rate1m{model="canary"}',
                    "share of canary calls",
                    "B",
                ),
                target('model:canary_router_ejected_requests:rate1m{model="canary"}', "canary ejected/s", "C"),
            ],
            unit="short",
            min_=0,
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "share of canary calls"},
                    "properties": [
                        {"id": "unit", "value": "percentunit"},
                        {"id": "custom.axisPlacement", "value": "right"},
                    ],
                }
            ],
        )
    )
    panels.append(
        timeseries(
            L,
            "Observed traffic share by model",
            "Share of backend attempts that went to each arm over 1m (compare with the configured weight).",
            [target("model:canary_router_requests:share_rate1m", "{{model}}", "A")],
            unit="percentunit",
            min_=0,
            max_=1,
        )
    )
    panels.append(
        timeseries(
            L,
            "Responses to clients by code",
            "HTTP answers of the routers per second, after fallback.",
            [target("code:canary_router_responses:rate1m", "{{code}}", "A")],
            unit="reqps",
            min_=0,
            overrides=[],
        )
    )

    panels.append(row(L, "Rollout analysis"))
    panels.append(
        timeseries(
            L,
            "Evidence against the canary (log e-value)",
            "The controller's sequential tests: log of the "
            "e-value per metric and test, against the log(1/alpha) line it is held to (dashed). Crossing it "
            "is decisive.",
            [
                target("canary_controller_evidence_log_e_value", "{{metric}} / {{test}}", "A"),
                target("canary_controller_evidence_log_threshold", "threshold {{metric}} / {{test}}", "B"),
            ],
            unit="short",
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": "^threshold .*"},
                    "properties": [
                        {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
                    ],
                }
            ],
        )
    )
    panels.append(
        timeseries(
            L,
            "Estimated difference ĝ by metric",
            "The controller's estimate of canary minus production "
            "per metric (on the scale where higher is better), with its confidence bounds (dashed).",
            [
                target("canary_controller_evidence_estimate", "{{metric}}", "A"),
                target("canary_controller_evidence_bound", "{{metric}} {{side}} bound", "B"),
            ],
            unit="short",
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": ".* bound$"},
                    "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [4, 6]}}],
                }
            ],
        )
    )
    panels.append(
        timeseries(
            L,
            "Analysed metric value by model",
            "The value of each analysed metric per arm, as the controller sees it.",
            [
                target(
                    'label_replace(canary_controller_evidence_value, "model", "$1", "arm", "(.*)")',
                    "{{model}} {{metric}}",
                    "A",
                )
            ],
            unit="short",
        )
    )
    panels.append(
        timeseries(
            L,
            "Samples per arm in the analysis",
            "Observations the controller's analysis has per metric and arm.",
            [
                target(
                    'label_replace(canary_controller_evidence_n, "model", "$1", "arm", "(.*)")',
                    "{{model}} {{metric}}",
                    "A",
                )
            ],
            unit="short",
            min_=0,
        )
    )
    panels.append(
        table(
            L,
            "Last decision",
            "The controller's latest decision and its labels (canary_controller_decision_info).",
            [target("canary_controller_decision_info", "", "A", instant=True, fmt="table")],
            exclude=("Time", "__name__", "job", "instance", "Value"),
        )
    )
    panels.append(
        timeseries(
            L,
            "Controller decisions",
            "Decisions the controller took, per kind, in each 1m window.",
            [target("sum by (decision) (increase(canary_controller_decisions_total[1m]))", "{{decision}}", "A")],
            unit="short",
            min_=0,
            draw_style="bars",
            overrides=[],
        )
    )
    panels.append(
        table(
            L,
            "Decisions in the time range",
            "How many decisions of each kind the controller took in the dashboard's time range.",
            [
                target(
                    "sum by (decision) (round(increase(canary_controller_decisions_total[$__range])))",
                    "",
                    "A",
                    instant=True,
                    fmt="table",
                )
            ],
            exclude=("Time",),
        )
    )

    annotations = [
        {
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        },
        {
            "name": "Controller decisions",
            "datasource": DS,
            "enable": True,
            "iconColor": "purple",
            # Windows as long as the step tile the time axis: each decision is marked once.
            "expr": "sum by (decision) (changes(canary_controller_decisions_total[30s])) > 0",
            "step": "30s",
            "titleFormat": "{{decision}}",
            "textFormat": "controller decision: {{decision}}",
            "tagKeys": "decision",
            "useValueForTime": False,
        },
        {
            "name": "Firing alerts",
            "datasource": DS,
            "enable": True,
            "iconColor": "red",
            "expr": 'ALERTS{alertstate="firing"}',
            "step": "30s",
            "titleFormat": "{{alertname}}",
            "textFormat": "{{alertname}} firing",
            "tagKeys": "alertname,severity",
            "useValueForTime": False,
        },
    ]

    return {
        "uid": "canary-overview",
        "title": "Canary: production vs canary",
        "description": "Production and canary side by side, for any model: traffic split, accuracy "
        "(classification) or mean absolute error (regression), latency, errors, and the "
        "controller's evidence and decisions.",
        "tags": ["canary", "mlops"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "5s",
        "time": {"from": "now-30m", "to": "now"},
        "timepicker": {"refresh_intervals": ["5s", "10s", "30s", "1m", "5m"]},
        "schemaVersion": 39,
        "version": 1,
        "links": [],
        "templating": {"list": [tolerance_variable()]},
        "annotations": {"list": annotations},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    print(f"wrote {OUT}")
