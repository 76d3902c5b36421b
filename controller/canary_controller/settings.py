"""The controller's settings: the environment, and the analysis file with env overrides.

The analysis file (ANALYSIS_CONFIG) is the reference; the seed lab's variables
(ACCURACY_THRESHOLD, LATENCY_THRESHOLD, ...) override its fields so the lab's exercises work by
setting one variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import Field, field_validator

from canary_common.settings import EnvSettings, SettingsError

from .analysis.config import AnalysisConfig, ConfigError, load_config

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


class ControllerEnv(EnvSettings):
    """The controller's own variables (canary_common.settings: a field is its variable in capitals
    unless its alias names another)."""

    prometheus_url: str = "http://prometheus:9090"
    mlflow_url: str = Field("http://mlflow:5000", alias="MLFLOW_TRACKING_URI")
    model_name: str = "sentiment"
    production_url: str | None = None
    poll_interval_s: float = Field(15.0, gt=0)
    scrape_job: str = Field("router", alias="ROUTER_SCRAPE_JOB")  # whose fresh scrape a manual check waits for
    scrape_wait_s: float = Field(12.0, ge=0)
    admin_token: str = ""
    # Empty: the built-in defaults, which controller/analysis.yaml spells out with comments.
    analysis_file: str = Field("", alias="ANALYSIS_CONFIG")
    # Decisions reach people (notify.py): each decision but "hold" is POSTed here; empty: off.
    decision_webhook_url: str = ""
    decision_webhook_token: str = ""
    decision_webhook_max_attempts: int = Field(5, ge=1)
    decision_webhook_timeout_s: float = Field(5.0, gt=0)

    @field_validator("decision_webhook_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if url and not url.startswith(("http://", "https://")):
            raise ValueError("a URL starting with http:// or https://")
        return url


class Settings(ControllerEnv):
    """The environment, and the analysis file (with the environment's overrides) it names."""

    analysis: AnalysisConfig


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
    try:
        own = ControllerEnv.from_env(env)
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None
    raw = _read_analysis_file(own.analysis_file) if own.analysis_file else {}
    return Settings(**dict(own), analysis=load_config(_apply_overrides(raw, env)))


def _read_analysis_file(path: str) -> dict:
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"ANALYSIS_CONFIG: cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"ANALYSIS_CONFIG: {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"ANALYSIS_CONFIG: {path} must hold a mapping at the top level")
    return raw
