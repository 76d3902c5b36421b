"""The controller's settings: the environment, and the analysis file with env overrides.

The analysis file (ANALYSIS_CONFIG) is the reference; the seed lab's variables
(ACCURACY_THRESHOLD, LATENCY_THRESHOLD, ...) override its fields so the lab's exercises work by
setting one variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from .analysis.config import AnalysisConfig, ConfigError, load_config

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "analysis.yaml"

# env var -> (path in the analysis file, parser)
_OVERRIDES = {
    "ANALYSIS_MODE": (("mode",), str),
    "WEIGHT_STEPS": (("steps",), lambda v: [float(x) for x in v.split(",") if x.strip()]),
    "STEP_INTERVAL_S": (("min_dwell_s",), float),
    "MAX_STAGE_S": (("max_stage_s",), float),
    "OUTAGE_FALLBACK_S": (("outage_fallback_s",), float),
    "ACCURACY_THRESHOLD": (("threshold", "accuracy_threshold"), float),
    "LATENCY_THRESHOLD": (("threshold", "latency_threshold_ms"), float),
    "ERROR_THRESHOLD": (("threshold", "error_threshold_pct"), float),
    "MIN_SAMPLES": (("threshold", "min_samples"), int),
    "WINDOW_S": (("threshold", "window_s"), float),
}


@dataclass(frozen=True)
class Settings:
    prometheus_url: str
    mlflow_url: str
    model_name: str
    production_url: str | None
    poll_interval_s: float
    scrape_job: str  # the router job, whose fresh scrape a manual check waits for
    scrape_wait_s: float
    admin_token: str
    analysis: AnalysisConfig
    analysis_file: str
    # Decisions reach people (notify.py): each decision but "hold" is POSTed here; empty: off.
    decision_webhook_url: str = ""
    decision_webhook_token: str = ""
    decision_webhook_max_attempts: int = 5
    decision_webhook_timeout_s: float = 5.0


def _apply_overrides(raw: dict, env: dict) -> dict:
    for var, (path, parse) in _OVERRIDES.items():
        value = env.get(var, "").strip()
        if not value:
            continue
        try:
            parsed = parse(value)
        except ValueError:
            raise ConfigError(f"{var}: not a valid value: {value!r}") from None
        node = raw
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = parsed
    return raw


def load_settings(env: dict | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    path = env.get("ANALYSIS_CONFIG") or str(DEFAULT_CONFIG)
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"ANALYSIS_CONFIG: cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"ANALYSIS_CONFIG: {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"ANALYSIS_CONFIG: {path} must hold a mapping at the top level")
    analysis = load_config(_apply_overrides(raw, env))
    try:
        poll = float(env.get("POLL_INTERVAL_S", "15"))
        wait = float(env.get("SCRAPE_WAIT_S", "12"))
    except ValueError:
        raise ConfigError("POLL_INTERVAL_S / SCRAPE_WAIT_S: must be numbers") from None
    if poll <= 0:
        raise ConfigError("POLL_INTERVAL_S: must be > 0")
    return Settings(
        prometheus_url=env.get("PROMETHEUS_URL", "http://prometheus:9090"),
        mlflow_url=env.get("MLFLOW_TRACKING_URI", "http://mlflow:5000"),
        model_name=env.get("MODEL_NAME", "sentiment"),
        production_url=env.get("PRODUCTION_URL") or None,
        poll_interval_s=poll,
        scrape_job=env.get("ROUTER_SCRAPE_JOB", "router"),
        scrape_wait_s=wait,
        admin_token=env.get("ADMIN_TOKEN", ""),
        analysis=analysis,
        analysis_file=path,
        **_webhook_settings(env),
    )


def _webhook_settings(env: dict) -> dict:
    url = env.get("DECISION_WEBHOOK_URL", "").strip()
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(f"DECISION_WEBHOOK_URL: must start with http:// or https://, got {url!r}")
    try:
        attempts = int(env.get("DECISION_WEBHOOK_MAX_ATTEMPTS") or "5")
        timeout = float(env.get("DECISION_WEBHOOK_TIMEOUT_S") or "5")
    except ValueError:
        raise ConfigError("DECISION_WEBHOOK_MAX_ATTEMPTS / DECISION_WEBHOOK_TIMEOUT_S: must be numbers") from None
    if attempts < 1 or timeout <= 0:
        raise ConfigError("DECISION_WEBHOOK_MAX_ATTEMPTS: must be >= 1; DECISION_WEBHOOK_TIMEOUT_S: must be > 0")
    return {
        "decision_webhook_url": url,
        "decision_webhook_token": env.get("DECISION_WEBHOOK_TOKEN", "").strip(),
        "decision_webhook_max_attempts": attempts,
        "decision_webhook_timeout_s": timeout,
    }
