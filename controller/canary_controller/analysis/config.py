"""The analysis configuration: a YAML file (or dict) validated into dataclasses at start.

Every problem raises ConfigError naming the field path, e.g.
"metrics[1].margin: must be > 0, got -0.1". Unknown keys are errors too, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from canary_common import contracts as c
from canary_common.regression import (
    ABS_ERROR_BUCKET_SERIES,
    ABS_ERROR_COUNTER,
    ABS_ERROR_METRIC,
    FINITE_BOUNDS,
    REGRESSION_KINDS,
    allowed_bounds_text,
    bound_index,
)

from .base import ArmIncrement


class ConfigError(ValueError):
    """A wrong analysis configuration; the message starts with the field path."""


MODES = ("sequential", "threshold")
KINDS = ("accuracy", "availability", "latency") + REGRESSION_KINDS
AUTO = "auto"

# Defaults per metric kind (margin m, tau for rollback / promotion / the change detector). From
# the design note, except the margins decided in issue 7 part 5: availability "auto" is
# m = max(0.002, e) for production's error rate e (the canary may not double it), latency 0.02.
KIND_DEFAULTS = {
    "accuracy": {"margin": 0.02, "tau_rollback": 0.05, "tau_promote": 0.02, "tau_change": 0.1},
    "availability": {"margin": AUTO, "tau_rollback": AUTO, "tau_promote": AUTO, "tau_change": AUTO},
    "latency": {"margin": 0.02, "tau_rollback": 0.03, "tau_promote": 0.02, "tau_change": 0.06},
    # Regression kinds (regression.py), issue 8 part 2: within_tolerance is a rate like accuracy
    # (margin in points of the share); mae's margin is a fraction of clip (0.02: the canary's
    # clipped MAE may exceed production's by 2 % of clip). The taus are accuracy's.
    "within_tolerance": {"margin": 0.02, "tau_rollback": 0.05, "tau_promote": 0.02, "tau_change": 0.1},
    "mae": {"margin": 0.02, "tau_rollback": 0.05, "tau_promote": 0.02, "tau_change": 0.1},
}
# The kind-specific field each regression kind requires (a bound of regression.ABS_ERROR_BUCKETS).
KIND_FIELD = {"within_tolerance": "tolerance", "mae": "clip"}

# One PromQL selector per ArmIncrement field; every series carries model=production|canary.
DEFAULT_COUNTERS = {
    "requests": c.ROUTER_REQUESTS,
    "errors": f'{c.ROUTER_REQUESTS}{{{c.STATUS_LABEL}="{c.STATUS_ERROR}"}}',
    "labelled": c.ROUTER_LABELLED,
    "correct": f'{c.ROUTER_LABELLED}{{{c.OUTCOME_LABEL}="{c.OUTCOME_CORRECT}"}}',
    "latency_count": c.ROUTER_DURATION + "_count",
    "latency_fast": f'{c.ROUTER_DURATION}_bucket{{le="0.1"}}',
    "latency_buckets": c.ROUTER_DURATION + "_bucket",
}
# Read only when a regression kind is configured (or the entry is given): then load_config adds
# it to `counters` with this default, and the controller's CounterReader reads the histogram.
OPTIONAL_COUNTERS = {ABS_ERROR_COUNTER: ABS_ERROR_BUCKET_SERIES}
COUNTER_FIELDS = tuple(ArmIncrement.__dataclass_fields__)


@dataclass(frozen=True)
class MetricConfig:
    name: str
    kind: str
    margin: float | str  # float, or "auto" (availability: max(0.002, baseline error rate))
    tau_rollback: float | str
    tau_promote: float | str
    tau_change: float | str = 0.1  # prior scale of the change detector's e-processes
    delta_rollback: float = 0.0
    weight: float = 0.0  # Bonferroni share of alpha_rollback; filled in by load_config
    promotion_gate: bool = True  # False: a rollback monitor only, never blocks a step-up
    # Regression kinds only (regression.py), each a bound of ABS_ERROR_BUCKETS:
    tolerance: float | None = None  # within_tolerance: |error| <= tolerance counts as good
    clip: float | None = None  # mae: errors are clipped here; margins are fractions of it


@dataclass(frozen=True)
class BayesGuardConfig:
    enabled: bool = True
    k: float = 100.0  # prior concentration of the Lindon-Malek Dirichlet mixture
    alpha: float = 0.01


@dataclass(frozen=True)
class RestartGuardConfig:
    enabled: bool = True
    max: int = 0  # restarts tolerated during a rollout


@dataclass(frozen=True)
class GuardsConfig:
    error_burst: BayesGuardConfig = field(default_factory=BayesGuardConfig)
    sample_ratio: BayesGuardConfig = field(default_factory=BayesGuardConfig)
    restarts: RestartGuardConfig = field(default_factory=RestartGuardConfig)
    # The error-burst and sample-ratio guards count a poll only if its interval began at least
    # settle_s after the stage started: the routers take a moment to follow a new weight, and
    # Prometheus's last scrape before the change still holds the old weight's traffic.
    settle_s: float = 10.0


@dataclass(frozen=True)
class ChangeDetectionConfig:
    """Start-indexed e-processes beside the from-start rollback test (see sequential.py)."""

    enabled: bool = True
    alpha_share: float = 0.5  # of alpha_rollback; the from-start test keeps the rest
    start_interval_s: float = 15.0  # a new start at most this often (one per poll at 15 s polls)
    max_starts: int = 64  # starts kept per rollout; older ones thinned, spacing kept ~ to their age


@dataclass(frozen=True)
class ThresholdConfig:
    """The seed lab's rule; a threshold set to None disables that check."""

    accuracy_threshold: float | None = 85.0  # percent
    latency_threshold_ms: float | None = 100.0  # p95
    error_threshold_pct: float | None = 5.0
    min_samples: int = 5
    window_s: float | None = None  # None: the whole stage, cumulative


@dataclass(frozen=True)
class AnalysisConfig:
    mode: str = "sequential"
    steps: tuple[float, ...] = (5.0, 10.0, 20.0, 50.0)
    min_dwell_s: float = 60.0
    max_stage_s: float | None = 1800.0  # None: no limit
    on_inconclusive: str = "rollback"
    # exposure: an intermediate step to share w' needs non-inferiority at margin m / w' (at most
    # step_margin_cap * m), so the traffic-weighted loss it risks stays at m, what the final
    # promotion risks; fixed: every step needs margin m.
    step_margin: str = "exposure"
    step_margin_cap: float = 10.0
    alpha_rollback: float = 0.05
    alpha_step: float = 0.05
    alpha_promote: float = 0.01
    burn_in: int = 30
    outage_fallback_s: float = 600.0
    counters: dict = field(default_factory=lambda: dict(DEFAULT_COUNTERS))
    metrics: tuple[MetricConfig, ...] = ()
    guards: GuardsConfig = field(default_factory=GuardsConfig)
    change_detection: ChangeDetectionConfig = field(default_factory=ChangeDetectionConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)


DEFAULT_METRICS = (
    {"name": "accuracy", "kind": "accuracy"},
    {"name": "availability", "kind": "availability"},
    {"name": "latency", "kind": "latency"},
)


# ---------------------------------------------------------------- validation helpers


def _fail(path: str, msg: str) -> ConfigError:
    return ConfigError(f"{path}: {msg}")


def _mapping(value: Any, path: str, allowed: set[str]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(path or "(top level)", f"must be a mapping, got {type(value).__name__}")
    unknown = sorted(set(map(str, value)) - allowed)
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise _fail(where, f"unknown key (allowed: {', '.join(sorted(allowed))})")
    return value


def _number(
    value: Any,
    path: str,
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    allow_none: bool = False,
    allow_auto: bool = False,
) -> float | str | None:
    if value is None and allow_none:
        return None
    if allow_auto and value == AUTO:
        return AUTO
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        hint = ' or "auto"' if allow_auto else ""
        hint += " or null" if allow_none else ""
        raise _fail(path, f"must be a number{hint}, got {value!r}")
    value = float(value)
    if gt is not None and not value > gt:
        raise _fail(path, f"must be > {gt:g}, got {value:g}")
    if ge is not None and not value >= ge:
        raise _fail(path, f"must be >= {ge:g}, got {value:g}")
    if lt is not None and not value < lt:
        raise _fail(path, f"must be < {lt:g}, got {value:g}")
    if le is not None and not value <= le:
        raise _fail(path, f"must be <= {le:g}, got {value:g}")
    return value


def _integer(value: Any, path: str, *, ge: int, le: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value != int(value)
    ):
        raise _fail(path, f"must be an integer, got {value!r}")
    if value < ge:
        raise _fail(path, f"must be >= {ge}, got {int(value)}")
    if le is not None and value > le:
        raise _fail(path, f"must be <= {le}, got {int(value)}")
    return int(value)


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, f"must be true or false, got {value!r}")
    return value


def _choice(value: Any, path: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _fail(path, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _alpha(value: Any, path: str) -> float:
    return _number(value, path, gt=0, lt=1)


# ---------------------------------------------------------------- sections


def _steps(value: Any) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise _fail("steps", f"must be a non-empty list of percentages, got {value!r}")
    steps = [_number(v, f"steps[{i}]", gt=0, le=100) for i, v in enumerate(value)]
    for i in range(1, len(steps)):
        if steps[i] <= steps[i - 1]:
            raise _fail(f"steps[{i}]", f"must be strictly increasing, got {steps[i]:g} after {steps[i - 1]:g}")
    return tuple(steps)


def _counters(value: Any, regression: bool = False) -> dict:
    raw = _mapping(value, "counters", set(COUNTER_FIELDS))
    out = dict(DEFAULT_COUNTERS)
    if regression:
        out.update(OPTIONAL_COUNTERS)
    for key, selector in raw.items():
        if not isinstance(selector, str) or not selector.strip():
            raise _fail(f"counters.{key}", f"must be a non-empty PromQL selector, got {selector!r}")
        out[key] = selector.strip()
    return out


def _metric(value: Any, i: int) -> MetricConfig:
    path = f"metrics[{i}]"
    allowed = {
        "name",
        "kind",
        "margin",
        "tau_rollback",
        "tau_promote",
        "tau_change",
        "delta_rollback",
        "weight",
        "promotion_gate",
        "tolerance",
        "clip",
    }
    raw = _mapping(value, path, allowed)
    kind = _choice(raw.get("kind"), f"{path}.kind", KINDS)
    name = raw.get("name", kind)
    if not isinstance(name, str) or not name.strip():
        raise _fail(f"{path}.name", f"must be a non-empty string, got {name!r}")
    defaults = KIND_DEFAULTS[kind]
    auto_ok = kind == "availability"  # only availability has baseline-dependent defaults
    values = {}
    for key in ("margin", "tau_rollback", "tau_promote", "tau_change"):
        v = raw.get(key, defaults[key])
        if v == AUTO and not auto_ok:
            raise _fail(
                f"{path}.{key}", f'"auto" is only for availability; omit it for the {kind} default ({defaults[key]:g})'
            )
        values[key] = _number(v, f"{path}.{key}", gt=0, lt=1, allow_auto=auto_ok)
    delta = _number(raw.get("delta_rollback", 0.0), f"{path}.delta_rollback", ge=0, lt=1)
    weight = raw.get("weight")
    if weight is not None:
        weight = _number(weight, f"{path}.weight", gt=0, le=1)
    gate = _boolean(raw.get("promotion_gate", True), f"{path}.promotion_gate")
    bounds = {key: _bucket_bound(raw, path, kind, key) for key in ("tolerance", "clip")}
    return MetricConfig(
        name=name.strip(),
        kind=kind,
        delta_rollback=delta,
        weight=weight or 0.0,
        promotion_gate=gate,
        **values,
        **bounds,
    )


_BOUND_WORDS = {
    "tolerance": "the absolute error at or under which a prediction counts as within tolerance",
    "clip": "the absolute error at which errors are clipped; margins are fractions of it",
}


def _bucket_bound(raw: dict, path: str, kind: str, key: str) -> float | None:
    """tolerance (within_tolerance) or clip (mae): required for its kind, refused for the others,
    and one of the finite bounds of the abs-error histogram, so the bucket counts are exact."""
    where = f"{path}.{key}"
    owner = next(k for k, f in KIND_FIELD.items() if f == key)
    if kind != owner:
        if key in raw:
            raise _fail(where, f"only for kind {owner}, not {kind}")
        return None
    allowed = allowed_bounds_text()
    if raw.get(key) is None:
        raise _fail(
            where,
            f"required for kind {kind} ({_BOUND_WORDS[key]}): one of the bucket bounds of "
            f"{ABS_ERROR_METRIC}: {allowed}",
        )
    value = _number(raw[key], where)
    i = bound_index(value)
    if value <= 0 or i is None or i >= len(FINITE_BOUNDS):
        first = "must be > 0 and" if value <= 0 else "must be"
        raise _fail(
            where,
            f"{first} one of the bucket bounds of {ABS_ERROR_METRIC} (so the count is exact): {allowed}; got {value:g}",
        )
    return FINITE_BOUNDS[i]


def _metrics(value: Any) -> tuple[MetricConfig, ...]:
    if value is None:
        value = list(DEFAULT_METRICS)
    if not isinstance(value, (list, tuple)) or not value:
        raise _fail("metrics", f"must be a non-empty list, got {value!r}")
    metrics = [_metric(v, i) for i, v in enumerate(value)]
    names = [m.name for m in metrics]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise _fail(f"metrics[{i}].name", f"duplicate metric name {n!r}")
    # Unset weights share what the set ones leave, equally.
    given = sum(m.weight for m in metrics)
    unset = [i for i, m in enumerate(metrics) if m.weight == 0.0]
    if unset:
        rest = 1.0 - given
        if rest <= 1e-9:
            raise _fail(f"metrics[{unset[0]}].weight", f"nothing left to share: the given weights sum to {given:g}")
        metrics = [
            MetricConfig(**{**m.__dict__, "weight": rest / len(unset)}) if i in unset else m
            for i, m in enumerate(metrics)
        ]
    total = sum(m.weight for m in metrics)
    if abs(total - 1.0) > 1e-6:
        raise _fail("metrics", f"weights must sum to 1 (Bonferroni split of alpha_rollback), got {total:g}")
    return tuple(metrics)


def _bayes_guard(value: Any, path: str) -> BayesGuardConfig:
    raw = _mapping(value, path, {"enabled", "k", "alpha"})
    d = BayesGuardConfig()
    return BayesGuardConfig(
        enabled=_boolean(raw.get("enabled", d.enabled), f"{path}.enabled"),
        k=_number(raw.get("k", d.k), f"{path}.k", gt=0),
        alpha=_alpha(raw.get("alpha", d.alpha), f"{path}.alpha"),
    )


def _guards(value: Any) -> GuardsConfig:
    raw = _mapping(value, "guards", {"error_burst", "sample_ratio", "restarts", "settle_s"})
    restarts = _mapping(raw.get("restarts"), "guards.restarts", {"enabled", "max"})
    d = RestartGuardConfig()
    return GuardsConfig(
        settle_s=_number(raw.get("settle_s", GuardsConfig.settle_s), "guards.settle_s", ge=0),
        error_burst=_bayes_guard(raw.get("error_burst"), "guards.error_burst"),
        sample_ratio=_bayes_guard(raw.get("sample_ratio"), "guards.sample_ratio"),
        restarts=RestartGuardConfig(
            enabled=_boolean(restarts.get("enabled", d.enabled), "guards.restarts.enabled"),
            max=_integer(restarts.get("max", d.max), "guards.restarts.max", ge=0),
        ),
    )


def _change_detection(value: Any) -> ChangeDetectionConfig:
    path = "change_detection"
    raw = _mapping(value, path, {"enabled", "alpha_share", "start_interval_s", "max_starts"})
    d = ChangeDetectionConfig()
    return ChangeDetectionConfig(
        enabled=_boolean(raw.get("enabled", d.enabled), f"{path}.enabled"),
        alpha_share=_number(raw.get("alpha_share", d.alpha_share), f"{path}.alpha_share", gt=0, lt=1),
        start_interval_s=_number(raw.get("start_interval_s", d.start_interval_s), f"{path}.start_interval_s", gt=0),
        max_starts=_integer(raw.get("max_starts", d.max_starts), f"{path}.max_starts", ge=2, le=1000),
    )


def _threshold(value: Any) -> ThresholdConfig:
    keys = {"accuracy_threshold", "latency_threshold_ms", "error_threshold_pct", "min_samples", "window_s"}
    raw = _mapping(value, "threshold", keys)
    d = ThresholdConfig()
    return ThresholdConfig(
        accuracy_threshold=_number(
            raw.get("accuracy_threshold", d.accuracy_threshold),
            "threshold.accuracy_threshold",
            ge=0,
            le=100,
            allow_none=True,
        ),
        latency_threshold_ms=_number(
            raw.get("latency_threshold_ms", d.latency_threshold_ms),
            "threshold.latency_threshold_ms",
            gt=0,
            allow_none=True,
        ),
        error_threshold_pct=_number(
            raw.get("error_threshold_pct", d.error_threshold_pct),
            "threshold.error_threshold_pct",
            ge=0,
            le=100,
            allow_none=True,
        ),
        min_samples=_integer(raw.get("min_samples", d.min_samples), "threshold.min_samples", ge=1),
        window_s=_number(raw.get("window_s", d.window_s), "threshold.window_s", gt=0, allow_none=True),
    )


TOP_KEYS = {
    "mode",
    "steps",
    "min_dwell_s",
    "max_stage_s",
    "on_inconclusive",
    "step_margin",
    "step_margin_cap",
    "alpha_rollback",
    "alpha_step",
    "alpha_promote",
    "burn_in",
    "outage_fallback_s",
    "counters",
    "metrics",
    "guards",
    "change_detection",
    "threshold",
}


def load_config(source: str | Path | dict | None = None) -> AnalysisConfig:
    """Read and validate a configuration from a YAML file path, a dict, or None (defaults)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            raw = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f"(file): cannot read {path}: {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"(file): {path} is not valid YAML: {exc}") from None
    else:
        raw = source
    raw = _mapping(raw, "", TOP_KEYS)
    d = AnalysisConfig()
    config = AnalysisConfig(
        mode=_choice(raw.get("mode", d.mode), "mode", MODES),
        steps=_steps(raw.get("steps", list(d.steps))),
        min_dwell_s=_number(raw.get("min_dwell_s", d.min_dwell_s), "min_dwell_s", ge=0),
        max_stage_s=_number(raw.get("max_stage_s", d.max_stage_s), "max_stage_s", gt=0, allow_none=True),
        on_inconclusive=_choice(raw.get("on_inconclusive", d.on_inconclusive), "on_inconclusive", ("rollback", "hold")),
        step_margin=_choice(raw.get("step_margin", d.step_margin), "step_margin", ("exposure", "fixed")),
        step_margin_cap=_number(raw.get("step_margin_cap", d.step_margin_cap), "step_margin_cap", ge=1),
        alpha_rollback=_alpha(raw.get("alpha_rollback", d.alpha_rollback), "alpha_rollback"),
        alpha_step=_alpha(raw.get("alpha_step", d.alpha_step), "alpha_step"),
        alpha_promote=_alpha(raw.get("alpha_promote", d.alpha_promote), "alpha_promote"),
        burn_in=_integer(raw.get("burn_in", d.burn_in), "burn_in", ge=0),
        outage_fallback_s=_number(raw.get("outage_fallback_s", d.outage_fallback_s), "outage_fallback_s", gt=0),
        counters=_counters(raw.get("counters")),
        metrics=_metrics(raw.get("metrics")),
        guards=_guards(raw.get("guards")),
        change_detection=_change_detection(raw.get("change_detection")),
        threshold=_threshold(raw.get("threshold")),
    )
    regression = [i for i, m in enumerate(config.metrics) if m.kind in REGRESSION_KINDS]
    if not regression:
        return config
    i = regression[0]
    if config.mode == "threshold":
        raise _fail(
            f"metrics[{i}].kind",
            f"{config.metrics[i].kind} is a regression metric of the sequential "
            f"analysis; mode: threshold (the seed lab's fixed thresholds on "
            f"accuracy, p95 latency and errors) ignores the metrics list and has no "
            f"regression check: use mode: sequential",
        )
    # The abs-error histogram is read only when a regression metric needs it.
    return replace(config, counters=_counters(raw.get("counters"), regression=True))
