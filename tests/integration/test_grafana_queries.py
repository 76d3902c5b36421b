"""Every dashboard query returns data from a real Prometheus (Debian's 2.42) that scrapes
exporters shaped like the router replicas and the controller, with the recording rules loaded and
the process-mode config (prometheus/process.yml, targets by file_sd). Comparison panels must return one
series per arm, labelled model=production and model=canary.

The exporters are STAND-INS (stdlib http.server in threads) serving Prometheus text whose
counters grow with time; metric names follow docs/contracts.md, and the controller's evidence
metrics follow the names this dashboard assumes.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml
from werkzeug import Response

from canary_common.regression import ABS_ERROR_BUCKETS, ABS_ERROR_METRIC
from support import promconfig, standin
from support.binaries import require
from support.grafana import annotation_queries, as_promql, panel_expr, panel_queries, panel_targets, with_defaults
from support.procs import free_port

ROOT = Path(__file__).resolve().parents[2]

DASHBOARD = ROOT / "grafana" / "dashboards" / "canary.json"
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5)
# Regression labels per arm: (labelled values per second, MAE). Errors are uniform on [0, 2 MAE],
# so the share within the dashboard's default tolerance (1) is 1 for production, 1/2.4 for canary.
ABS_ERRORS = {"production": (3.0, 0.5), "canary": (0.8, 1.2)}


def _le(bound: float) -> str:
    """A bound as prometheus_client writes it ("1.0", "+Inf")."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _abs_error_lines(t: float) -> list[str]:
    """The router's abs-error histogram (the contract's metric and bounds), growing with t."""
    lines = []
    versions = {"production": "1", "canary": "2"}
    for model, (rate, mae) in ABS_ERRORS.items():
        lab = f'model="{model}",version="{versions[model]}"'
        for le in ABS_ERROR_BUCKETS:
            share = min(1.0, le / (2 * mae))
            lines.append(f'{ABS_ERROR_METRIC}_bucket{{{lab},le="{_le(le)}"}} {rate * share * t}')
        lines.append(f"{ABS_ERROR_METRIC}_count{{{lab}}} {rate * t}")
        lines.append(f"{ABS_ERROR_METRIC}_sum{{{lab}}} {rate * mae * t}")
    return lines


def _router_metrics(t: float, fail_closed: int) -> str:
    lines = []
    arms = {"production": ("1", 4.0, 0.0, 0.9, 0.004), "canary": ("2", 1.0, 0.1, 0.8, 0.03)}
    for model, (version, ok_rate, err_rate, acc, latency) in arms.items():
        lab = f'model="{model}",version="{version}"'
        lines.append(f'canary_router_requests_total{{{lab},status="ok"}} {ok_rate * t}')
        if err_rate:
            lines.append(f'canary_router_requests_total{{{lab},status="error"}} {err_rate * t}')
        lines.append(f'canary_router_labelled_predictions_total{{{lab},outcome="correct"}} {ok_rate * acc * t}')
        lines.append(f'canary_router_labelled_predictions_total{{{lab},outcome="incorrect"}} {ok_rate * (1 - acc) * t}')
        for le in BUCKETS:
            share = 0.0 if le < latency / 2 else (0.6 if le < latency * 2 else 1.0)
            lines.append(f'canary_router_request_duration_seconds_bucket{{{lab},le="{le}"}} {ok_rate * share * t}')
        lines.append(f'canary_router_request_duration_seconds_bucket{{{lab},le="+Inf"}} {ok_rate * t}')
        lines.append(f"canary_router_request_duration_seconds_count{{{lab}}} {ok_rate * t}")
        lines.append(f"canary_router_request_duration_seconds_sum{{{lab}}} {ok_rate * latency * t}")
    lines += _abs_error_lines(t)
    lines += [
        f"canary_router_fallbacks_total {0.1 * t}",
        f'canary_router_ejected_requests_total{{model="canary",version="2"}} {0.05 * t}',
        f'canary_router_responses_total{{code="200"}} {5 * t}',
        "canary_router_canary_weight_ratio 0.2",
        f"canary_router_fail_closed {fail_closed}",
    ]
    return "\n".join(lines) + "\n"


def _controller_metrics(t: float) -> str:
    return (
        "\n".join(
            [
                "canary_controller_weight_ratio 0.2",
                f'canary_controller_decisions_total{{decision="step"}} {int(t // 2)}',
                f'canary_controller_decisions_total{{decision="hold"}} {int(t // 3)}',
                "canary_controller_prometheus_up 1",
                'canary_controller_phase{phase="progressing"} 1',
                'canary_controller_phase{phase="idle"} 0',
                f'canary_controller_evidence_log_e_value{{metric="accuracy",test="msprt"}} {min(t / 10, 4)}',
                f'canary_controller_evidence_log_e_value{{metric="latency",test="msprt"}} {-t / 20}',
                'canary_controller_evidence_log_threshold{metric="accuracy",test="msprt"} 2.9957',
                'canary_controller_evidence_log_threshold{metric="latency",test="msprt"} 2.9957',
                'canary_controller_evidence_estimate{metric="accuracy"} -0.1',
                'canary_controller_evidence_bound{metric="accuracy",side="lower"} -0.15',
                'canary_controller_evidence_bound{metric="accuracy",side="upper"} -0.05',
                'canary_controller_evidence_value{metric="accuracy",arm="production"} 0.9',
                'canary_controller_evidence_value{metric="accuracy",arm="canary"} 0.8',
                'canary_controller_evidence_estimate{metric="latency"} 0.026',
                f'canary_controller_evidence_n{{metric="accuracy",arm="production"}} {int(4 * t)}',
                f'canary_controller_evidence_n{{metric="accuracy",arm="canary"}} {int(t)}',
                'canary_controller_decision_info{decision="step"} 1',
            ]
        )
        + "\n"
    )


class Exporter:
    """Stand-in for a service's metrics endpoint (any path): counters that grow with time."""

    def __init__(self, body):
        start = time.monotonic()
        self.server = standin.start()
        self.address = standin.address(self.server)
        self.server.expect_request(standin.ANY_PATH).respond_with_handler(
            lambda request: Response(body(time.monotonic() - start + 1), content_type="text/plain; version=0.0.4")
        )

    def stop(self):
        standin.stop(self.server)


def _prometheus() -> str:
    return require("prometheus", "prometheus")


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    binary = _prometheus()
    tmp = tmp_path_factory.mktemp("prom")
    exporters = {
        "r1": Exporter(lambda t: _router_metrics(t, 0)),
        "r2": Exporter(lambda t: _router_metrics(t, 1)),
        "controller": Exporter(_controller_metrics),
    }
    port = free_port()
    config = promconfig.prepare(
        tmp / "config",
        {
            "router": [exporters["r1"].address, exporters["r2"].address],
            "controller": [exporters["controller"].address],
            "prometheus": [f"127.0.0.1:{port}"],
        },
    )
    log = open(tmp / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp / "prometheus.log").read_text()
            try:
                if requests.get(url + "/-/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, (tmp / "prometheus.log").read_text()
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        for e in exporters.values():
            e.stop()


def _query(url: str, expr: str) -> list[dict]:
    query = as_promql(with_defaults(DASHBOARD, expr))
    resp = requests.get(url + "/api/v1/query", params={"query": query}, timeout=5)
    assert resp.status_code == 200, (expr, resp.text)
    return resp.json()["data"]["result"]


def _wait_for_all(url: str, queries: list[tuple[str, str]], timeout: float = 45) -> dict[str, list]:
    deadline = time.monotonic() + timeout
    while True:
        results = {expr: _query(url, expr) for _, expr in queries}
        empty = [(title, expr) for title, expr in queries if not results[expr]]
        if not empty:
            return results
        if time.monotonic() > deadline:
            pytest.fail(f"queries still empty after {timeout}s: {empty}")
        time.sleep(1)


def test_targets_are_scraped_under_the_contract_job_names(prom):
    deadline = time.monotonic() + 20
    while True:
        up = {(r["metric"]["job"], r["value"][1]) for r in _query(prom, "up")}
        if {j for j, _ in up} >= {"router", "controller", "prometheus"}:
            break
        assert time.monotonic() < deadline, up
        time.sleep(0.5)
    assert all(v == "1" for _, v in up), up


def test_every_panel_query_returns_data(prom):
    queries = [(panel["title"], t["expr"]) for panel, t in panel_targets(DASHBOARD)]
    _wait_for_all(prom, queries)


def test_comparison_queries_return_production_and_canary_by_model(prom):
    queries = [(panel["title"], t["expr"]) for panel, t in panel_targets(DASHBOARD) if "{{model}}" in t["legendFormat"]]
    assert len(queries) >= 8
    results = _wait_for_all(prom, queries)
    for title, expr in queries:
        models = {r["metric"].get("model") for r in results[expr]}
        assert models == {"production", "canary"}, (title, expr, models)


def test_recorded_values_are_what_the_exporters_imply(prom):
    _wait_for_all(
        prom,
        [
            ("acc", "model:canary_router_accuracy:ratio_rate1m"),
            ("err", 'model:canary_router_request_errors:ratio_rate1m{model="canary"}'),
        ],
    )

    def values(expr):
        return {r["metric"].get("model"): float(r["value"][1]) for r in _query(prom, expr)}

    acc = values("model:canary_router_accuracy:ratio_rate1m")
    assert acc["production"] == pytest.approx(0.9, abs=0.01) and acc["canary"] == pytest.approx(0.8, abs=0.01)
    err = values("model:canary_router_request_errors:ratio_rate1m")
    assert err["production"] == 0 and err["canary"] == pytest.approx(0.1 / 1.1, abs=0.01)
    # Rates are extrapolated over windows only seconds old here, so compare their ratio.
    rps = values("model:canary_router_requests:rate1m")
    assert rps["production"] / rps["canary"] == pytest.approx(4 / 1.1, rel=0.05)
    share = values("model:canary_router_requests:share_rate1m")
    assert share["canary"] == pytest.approx(1.1 / 5.1, rel=0.05)
    assert values("model:canary_router_weight:ratio") == {"canary": 0.2, "production": 0.8}


def test_regression_panels_show_mae_and_share_within_tolerance(prom):
    mae_expr = "model:canary_router_prediction_abs_error:mean_rate1m"
    within_expr = panel_expr(DASHBOARD, "Share within tolerance (${tolerance}) by model")
    _wait_for_all(
        prom,
        [
            ("mae", mae_expr),
            ("within", within_expr),
            ("by version", "model_version:canary_router_prediction_abs_error:mean_rate1m"),
        ],
    )

    def values(expr):
        return {r["metric"].get("model"): float(r["value"][1]) for r in _query(prom, expr)}

    assert values(mae_expr) == {"production": pytest.approx(0.5, rel=0.01), "canary": pytest.approx(1.2, rel=0.01)}
    assert values(within_expr) == {
        "production": pytest.approx(1.0, abs=0.01),
        "canary": pytest.approx(1 / 2.4, abs=0.01),
    }
    by_version = {
        (r["metric"]["model"], r["metric"]["version"])
        for r in _query(prom, "model_version:canary_router_prediction_abs_error:mean_rate1m")
    }
    assert by_version == {("production", "1"), ("canary", "2")}
    labelled = values("model:canary_router_labelled_values:rate1m")
    assert labelled["production"] / labelled["canary"] == pytest.approx(3.0 / 0.8, rel=0.05)


def test_annotation_queries_return_data(prom):
    # Decisions are counted up every few seconds; replica r2 reports fail-closed, so an alert fires.
    _wait_for_all(prom, annotation_queries(DASHBOARD))
    alerts = {r["metric"]["alertname"] for r in _query(prom, 'ALERTS{alertstate="firing"}')}
    assert "RouterFailClosed" in alerts
    decided = dict(annotation_queries(DASHBOARD))["Controller decisions"]
    decisions = {r["metric"]["decision"] for r in _query(prom, decided)}
    assert decisions <= {"step", "hold"} and decisions


def test_rule_files_loaded_without_errors(prom):
    groups = requests.get(prom + "/api/v1/rules", timeout=5).json()["data"]["groups"]
    files = {g["file"] for g in groups}
    assert {Path(f).name for f in files} == {p.name for p in (ROOT / "prometheus" / "rules").glob("*.yml")}
    for g in groups:
        for r in g["rules"]:
            assert r.get("health") in ("ok", "unknown"), (r["name"], r.get("lastError"))


def test_every_query_is_valid_promql(tmp_path):
    queries = panel_queries(DASHBOARD) + annotation_queries(DASHBOARD)
    rules = [
        {"record": f"dashboard:query_{i}", "expr": as_promql(with_defaults(DASHBOARD, expr))}
        for i, (_, expr) in enumerate(queries)
    ]
    rule_file = tmp_path / "dashboard_queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run(
        [require("promtool", "prometheus"), "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout
