"""Prometheus configuration, recording rules and alerts, checked with the real promtool.

`promtool check config` also loads the rule files, so the compose file (whose rule_files point at
/etc/prometheus/rules, where compose mounts them) is checked as a temporary copy whose only change
is that path, pointed at this repository's prometheus/rules.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support.binaries import require

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "prometheus"
sys.path.insert(0, str(PROM))

import render_config  # noqa: E402

from canary_common.regression import ABS_ERROR_METRIC  # noqa: E402


def _promtool() -> str:
    return require("promtool", "prometheus")


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([_promtool(), *args], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert proc.returncode == 0, f"promtool {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _rule_files() -> list[Path]:
    files = sorted((PROM / "rules").glob("*.yml"))
    assert files, "no rule files"
    return files


def test_compose_config_is_what_render_compose_produces():
    committed = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert committed == yaml.safe_load(render_config.render_compose()), (
        "prometheus/prometheus.yml is stale: run `python prometheus/render_config.py > prometheus/prometheus.yml`"
    )


def test_compose_config_has_the_contract_jobs():
    cfg = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert cfg["global"]["scrape_interval"] == "5s"
    assert cfg["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert set(jobs) == {"prometheus", "router", "model-server", "controller", "mlflow"}
    assert jobs["router"]["dns_sd_configs"] == [
        {"names": ["router"], "type": "A", "port": 8000, "refresh_interval": "5s"}
    ]
    arms = {g["targets"][0]: g["labels"]["arm"] for g in jobs["model-server"]["static_configs"]}
    assert arms == {"model-server-production:8000": "production", "model-server-canary:8000": "canary"}
    assert jobs["controller"]["static_configs"] == [{"targets": ["controller:8000"]}]
    assert jobs["mlflow"]["static_configs"] == [{"targets": ["mlflow:5000"]}]
    assert jobs["mlflow"]["metrics_path"] == "/metrics"


def test_promtool_check_config_on_compose_file(tmp_path):
    text = (PROM / "prometheus.yml").read_text()
    assert "/etc/prometheus/rules/*.yml" in text
    (tmp_path / "prometheus.yml").write_text(text.replace("/etc/prometheus/rules/*.yml", str(PROM / "rules" / "*.yml")))
    out = _run("check", "config", str(tmp_path / "prometheus.yml"))
    # The rule files really were loaded and checked along with the config.
    for rule_file in _rule_files():
        assert rule_file.name in out.stdout + out.stderr


def test_promtool_check_rules():
    _run("check", "rules", *map(str, _rule_files()))


def test_promtool_unit_tests():
    tests = sorted((PROM / "tests").glob("*.yml"))
    assert len(tests) >= 2
    out = _run("test", "rules", *map(str, tests), cwd=PROM / "tests")
    assert "FAILED" not in out.stdout + out.stderr


def test_every_alert_has_firing_and_quiet_unit_tests():
    alerts = {
        rule["alert"]
        for group in yaml.safe_load((PROM / "rules" / "canary.alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    assert alerts == {
        "CanaryAccuracyBelowProduction",
        "CanaryMaeAboveProduction",
        "CanaryErrorRatioHigh",
        "CanaryLatencyHigh",
        "TargetDown",
        "RouterFailClosed",
        "CanaryEjected",
        "ProductionEjected",
        "ControllerMetricsOutage",
    }
    firing, quiet = set(), set()
    for case in yaml.safe_load((PROM / "tests" / "alerts_test.yml").read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert firing == alerts and quiet == alerts


def test_every_alert_has_severity_and_annotations():
    for group in yaml.safe_load((PROM / "rules" / "canary.alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
            assert rule["annotations"].get("summary") and rule["annotations"].get("description"), rule["alert"]


def test_rendered_process_mode_config_passes_check_config(tmp_path):
    text = render_config.render(
        {
            "router": ["127.0.0.1:34567", "127.0.0.1:34568"],
            "model-server-production": ["127.0.0.1:34569"],
            "model-server-canary": ["127.0.0.1:34570"],
            "controller": ["127.0.0.1:34571"],
            "mlflow": ["127.0.0.1:34572"],
            "prometheus": ["127.0.0.1:34573"],
        },
        rules_dir=str(PROM / "rules"),
    )
    (tmp_path / "prometheus.yml").write_text(text)
    out = _run("check", "config", str(tmp_path / "prometheus.yml"))
    for rule_file in _rule_files():
        assert rule_file.name in out.stdout + out.stderr

    cfg = yaml.safe_load(text)
    assert cfg["global"]["scrape_interval"] == "1s"
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    compose = {j["job_name"]: j for j in yaml.safe_load(render_config.render_compose())["scrape_configs"]}
    assert set(jobs) == set(compose)
    for name, job in jobs.items():
        # Same job names, paths and relabelling; only the way targets are found differs.
        assert job.get("metrics_path") == compose[name].get("metrics_path")
        assert job.get("relabel_configs") == compose[name].get("relabel_configs")
    assert jobs["router"]["static_configs"] == [{"targets": ["127.0.0.1:34567", "127.0.0.1:34568"]}]
    arms = {g["labels"]["arm"]: g["targets"] for g in jobs["model-server"]["static_configs"]}
    assert arms == {"production": ["127.0.0.1:34569"], "canary": ["127.0.0.1:34570"]}


def test_render_leaves_out_services_not_given():
    cfg = yaml.safe_load(render_config.render({"router": ["127.0.0.1:1"]}, rules_dir=str(PROM / "rules")))
    assert [j["job_name"] for j in cfg["scrape_configs"]] == ["router"]
    with pytest.raises(ValueError):
        render_config.render({"routers": ["127.0.0.1:1"]}, rules_dir=str(PROM / "rules"))
    assert "alerting" not in cfg  # no Alertmanager given: none configured


def test_alerts_go_to_alertmanager_in_compose_and_where_process_mode_says(tmp_path):
    compose = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert compose["alerting"] == {
        "alertmanagers": [{"scheme": "http", "static_configs": [{"targets": ["alertmanager:9093"]}]}]
    }
    text = render_config.render(
        {"router": ["127.0.0.1:1"]}, rules_dir=str(PROM / "rules"), alertmanager_url="https://127.0.0.1:19093/am/"
    )
    assert yaml.safe_load(text)["alerting"] == {
        "alertmanagers": [
            {"scheme": "https", "path_prefix": "/am/", "static_configs": [{"targets": ["127.0.0.1:19093"]}]}
        ]
    }
    (tmp_path / "prometheus.yml").write_text(text)
    _run("check", "config", str(tmp_path / "prometheus.yml"))
    with pytest.raises(ValueError):
        render_config.render({}, rules_dir=str(PROM / "rules"), alertmanager_url="alertmanager:9093")


def _rules() -> list[dict]:
    return [rule for f in _rule_files() for group in yaml.safe_load(f.read_text())["groups"] for rule in group["rules"]]


def test_rules_name_no_model_and_read_the_contracts_abs_error_histogram():
    # Any registered model: series are labelled by arm (`model`), never by the model's name.
    for f in _rule_files():
        assert "sentiment" not in f.read_text().lower(), f.name
    by_name = {rule.get("record") or rule.get("alert"): rule["expr"] for rule in _rules()}
    for name in (
        "model:canary_router_labelled_values:rate1m",
        "model:canary_router_labelled_values:increase1m",
        "model:canary_router_prediction_abs_error:mean_rate1m",
        "model_version:canary_router_prediction_abs_error:mean_rate1m",
        "model:canary_router_prediction_abs_error_bucket:rate1m",
    ):
        assert ABS_ERROR_METRIC + "_" in by_name[name], name
    assert "prediction_abs_error:mean_rate1m" in by_name["CanaryMaeAboveProduction"]
