"""Prometheus configuration, recording rules and alerts, checked with the real promtool.

`promtool check config` also loads the rule files, so the compose file (whose rule_files point at
/etc/prometheus/rules, where compose mounts them) is checked as a temporary copy whose only change
is that path, pointed at this repository's prometheus/rules.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from canary_common.regression import ABS_ERROR_METRIC
from support import promconfig
from support.binaries import require

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "prometheus"


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


def test_process_mode_config_passes_check_config_and_matches_compose(tmp_path):
    config = promconfig.prepare(
        tmp_path / "prom",
        {
            "router": ["127.0.0.1:34567", "127.0.0.1:34568"],
            "model-server-production": ["127.0.0.1:34569"],
            "model-server-canary": ["127.0.0.1:34570"],
            "controller": ["127.0.0.1:34571"],
            "mlflow": ["127.0.0.1:34572"],
            "prometheus": ["127.0.0.1:34573"],
            "alertmanager": ["127.0.0.1:34574"],
        },
    )
    out = _run("check", "config", str(config))
    for rule_file in _rule_files():
        assert rule_file.name in out.stdout + out.stderr

    cfg = yaml.safe_load((PROM / "process.yml").read_text())
    assert cfg["global"]["scrape_interval"] == "1s"
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    compose = {j["job_name"]: j for j in yaml.safe_load((PROM / "prometheus.yml").read_text())["scrape_configs"]}
    assert set(jobs) == set(compose)
    for name, job in jobs.items():
        # Same job names, paths and relabelling; only the way targets are found differs.
        assert job.get("metrics_path") == compose[name].get("metrics_path"), name
        assert job.get("relabel_configs") == compose[name].get("relabel_configs"), name
        assert job["file_sd_configs"] == [{"files": [f"targets/{name}*.json"]}], name
    assert jobs["router"]["metrics_path"] == promconfig.ROUTER_METRICS_PATH
    groups = json.loads((config.parent / "targets" / "model-server.json").read_text())
    assert {g["labels"]["arm"]: g["targets"] for g in groups} == {
        "production": ["127.0.0.1:34569"],
        "canary": ["127.0.0.1:34570"],
    }
    assert [g["labels"]["arm"] for g in compose["model-server"]["static_configs"]] == ["production", "canary"]


def test_a_service_not_run_has_no_targets_and_unknown_keys_are_refused(tmp_path):
    config = promconfig.prepare(tmp_path / "prom", {"router": ["127.0.0.1:1"]})
    assert sorted(p.name for p in (config.parent / "targets").iterdir()) == ["router.json"]
    with pytest.raises(ValueError):
        promconfig.prepare(tmp_path / "other", {"routers": ["127.0.0.1:1"]})


def test_alerts_go_to_alertmanager_in_compose_and_to_the_file_in_process_mode():
    compose = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert compose["alerting"] == {
        "alertmanagers": [{"scheme": "http", "static_configs": [{"targets": ["alertmanager:9093"]}]}]
    }
    process = yaml.safe_load((PROM / "process.yml").read_text())
    assert process["alerting"] == {
        "alertmanagers": [{"scheme": "http", "file_sd_configs": [{"files": ["targets/alertmanager*.json"]}]}]
    }


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


def test_promtool_check_config_on_the_swarm_file(tmp_path):
    """prometheus/swarm.yml (deploy/swarm/stack.yml ships it and the rule files as configs)."""
    text = (PROM / "swarm.yml").read_text()
    assert "/etc/prometheus/rules/*.yml" in text
    (tmp_path / "swarm.yml").write_text(text.replace("/etc/prometheus/rules/*.yml", str(PROM / "rules" / "*.yml")))
    out = _run("check", "config", str(tmp_path / "swarm.yml"))
    for rule_file in _rule_files():
        assert rule_file.name in out.stdout + out.stderr
