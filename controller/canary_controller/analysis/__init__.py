"""Rollout analysis: decides from counter increments whether a canary rolls back, steps up,
is promoted, or holds. See base.py for the interface and sequential.py for the method."""

from __future__ import annotations

from .base import Analysis, ArmIncrement, Decision, Poll, Verdict
from .config import AnalysisConfig, ConfigError, MetricConfig, load_config
from .sequential import SequentialAnalysis, SequentialEngine
from .threshold import ThresholdAnalysis, ThresholdEngine

__all__ = [
    "Analysis",
    "AnalysisConfig",
    "ArmIncrement",
    "ConfigError",
    "Decision",
    "MetricConfig",
    "Poll",
    "SequentialAnalysis",
    "SequentialEngine",
    "ThresholdAnalysis",
    "ThresholdEngine",
    "Verdict",
    "build_analysis",
    "load_config",
]


def build_analysis(config: AnalysisConfig | dict | str | None = None) -> Analysis:
    """A fresh analysis for one rollout, of the configured mode."""
    if not isinstance(config, AnalysisConfig):
        config = load_config(config)
    if config.mode == "threshold":
        return ThresholdAnalysis(config)
    return SequentialAnalysis(config)
