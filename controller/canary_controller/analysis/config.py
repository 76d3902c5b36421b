"""The analysis configuration: a YAML file (or dict) validated at start with pydantic models
(strict types, no unknown keys, frozen).

Every problem raises ConfigError naming the field path, e.g.
"metrics[1].margin: must be > 0, got -0.1". Unknown keys are errors too, so a typo never
silently falls back to a default. pydantic checks types, bounds and keys; the rules that span
fields (kind-dependent defaults, weights, strictly increasing steps) are validators here, and
`_describe` turns pydantic's errors into these messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

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
# the design note, except these margins: availability "auto" is
# m = max(0.002, e) for production's error rate e (the canary may not double it), latency 0.02.
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "accuracy": {"margin": 0.02, "tau_rollback": 0.05, "tau_promote": 0.02, "tau_change": 0.1},
    "availability": {"margin": AUTO, "tau_rollback": AUTO, "tau_promote": AUTO, "tau_change": AUTO},
    "latency": {"margin": 0.02, "tau_rollback": 0.03, "tau_promote": 0.02, "tau_change": 0.06},
    # Regression kinds (regression.py): within_tolerance is a rate like accuracy
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


class _Strict(BaseModel):
    """No unknown keys, no type coercion (a bool is no number, "5" no number), finite numbers."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def _custom(field: str, message: str) -> PydanticCustomError:
    """An error about `field` of the model being validated (a rule across fields)."""
    return PydanticCustomError("canary", "{message}", {"field": field, "message": message})


Probability = Annotated[float, Field(gt=0, lt=1)]


class MetricConfig(_Strict):
    name: str
    kind: Literal["accuracy", "availability", "latency", "within_tolerance", "mae"]
    margin: float | str  # float, or "auto" (availability: max(0.002, baseline error rate))
    tau_rollback: float | str
    tau_promote: float | str
    tau_change: float | str = 0.1  # prior scale of the change detector's e-processes
    delta_rollback: float = Field(0.0, ge=0, lt=1)
    weight: float = Field(0.0, ge=0, le=1)  # Bonferroni share of alpha_rollback; filled in later
    promotion_gate: bool = True  # False: a rollback monitor only, never blocks a step-up
    # Regression kinds only (regression.py), each a bound of ABS_ERROR_BUCKETS:
    tolerance: float | None = None  # within_tolerance: |error| <= tolerance counts as good
    clip: float | None = None  # mae: errors are clipped here; margins are fractions of it

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or raw.get("kind") not in KINDS:
            return raw  # the field checks say what is wrong
        kind, out = raw["kind"], dict(raw)
        out.setdefault("name", kind)
        if not isinstance(out["name"], str) or not out["name"].strip():
            raise _custom("name", f"must be a non-empty string, got {out['name']!r}")
        out["name"] = out["name"].strip()
        for key, default in KIND_DEFAULTS[kind].items():
            out[key] = _tau_or_margin(out.get(key, default), key, kind, default)
        if out.get("weight") is not None and out["weight"] == 0:
            raise _custom("weight", "must be > 0, got 0")
        out["weight"] = out.get("weight") or 0.0
        for key in ("tolerance", "clip"):
            out[key] = _bucket_bound(out, kind, key)
        return out


def _tau_or_margin(value: Any, key: str, kind: str, default) -> float | str:
    if value == AUTO:
        if kind != "availability":  # only availability has baseline-dependent defaults
            raise _custom(key, f'"auto" is only for availability; omit it for the {kind} default ({default:g})')
        return AUTO
    hint = ' or "auto"' if kind == "availability" else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
        raise _custom(key, f"must be a number{hint}, got {value!r}")
    if not 0 < value < 1:
        raise _custom(key, f"must be {'> 0' if value <= 0 else '< 1'}, got {value:g}")
    return float(value)


_BOUND_WORDS = {
    "tolerance": "the absolute error at or under which a prediction counts as within tolerance",
    "clip": "the absolute error at which errors are clipped; margins are fractions of it",
}


def _bucket_bound(raw: dict, kind: str, key: str) -> float | None:
    """tolerance (within_tolerance) or clip (mae): required for its kind, refused for the others,
    and one of the finite bounds of the abs-error histogram, so the bucket counts are exact."""
    owner = next(k for k, f in KIND_FIELD.items() if f == key)
    if kind != owner:
        if raw.get(key) is not None:
            raise _custom(key, f"only for kind {owner}, not {kind}")
        return None
    allowed = allowed_bounds_text()
    value = raw.get(key)
    if value is None:
        raise _custom(
            key,
            f"required for kind {kind} ({_BOUND_WORDS[key]}): one of the bucket bounds of {ABS_ERROR_METRIC}: {allowed}",
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
        raise _custom(key, f"must be a number, got {value!r}")
    i = bound_index(value)
    if value <= 0 or i is None or i >= len(FINITE_BOUNDS):
        first = "must be > 0 and" if value <= 0 else "must be"
        raise _custom(
            key,
            f"{first} one of the bucket bounds of {ABS_ERROR_METRIC} (so the count is exact): {allowed}; got {value:g}",
        )
    return FINITE_BOUNDS[i]


class BayesGuardConfig(_Strict):
    enabled: bool = True
    k: float = Field(100.0, gt=0)  # prior concentration of the Lindon-Malek Dirichlet mixture
    alpha: Probability = 0.01


class RestartGuardConfig(_Strict):
    enabled: bool = True
    max: int = Field(0, ge=0)  # restarts tolerated during a rollout


class GuardsConfig(_Strict):
    error_burst: BayesGuardConfig = BayesGuardConfig()
    sample_ratio: BayesGuardConfig = BayesGuardConfig()
    restarts: RestartGuardConfig = RestartGuardConfig()
    # The error-burst and sample-ratio guards count a poll only if its interval began at least
    # settle_s after the stage started: the routers take a moment to follow a new weight, and
    # Prometheus's last scrape before the change still holds the old weight's traffic.
    settle_s: float = Field(10.0, ge=0)


class ChangeDetectionConfig(_Strict):
    """Start-indexed e-processes beside the from-start rollback test (see sequential.py)."""

    enabled: bool = True
    alpha_share: Probability = 0.5  # of alpha_rollback; the from-start test keeps the rest
    start_interval_s: float = Field(15.0, gt=0)  # a new start at most this often
    max_starts: int = Field(64, ge=2, le=1000)  # starts kept per rollout; older ones thinned


class ThresholdConfig(_Strict):
    """The seed lab's rule; a threshold set to None disables that check."""

    accuracy_threshold: float | None = Field(85.0, ge=0, le=100)  # percent
    latency_threshold_ms: float | None = Field(100.0, gt=0)  # p95
    error_threshold_pct: float | None = Field(5.0, ge=0, le=100)
    min_samples: int = Field(5, ge=1)
    window_s: float | None = Field(None, gt=0)  # None: the whole stage, cumulative


DEFAULT_METRICS = (
    {"name": "accuracy", "kind": "accuracy"},
    {"name": "availability", "kind": "availability"},
    {"name": "latency", "kind": "latency"},
)


class AnalysisConfig(_Strict):
    mode: Literal["sequential", "threshold"] = "sequential"
    steps: tuple[Annotated[float, Field(gt=0, le=100)], ...] = Field((5.0, 10.0, 20.0, 50.0), min_length=1)
    min_dwell_s: float = Field(60.0, ge=0)
    max_stage_s: float | None = Field(1800.0, gt=0)  # None: no limit
    on_inconclusive: Literal["rollback", "hold"] = "rollback"
    # exposure: an intermediate step to share w' needs non-inferiority at margin m / w' (at most
    # step_margin_cap * m), so the traffic-weighted loss it risks stays at m, what the final
    # promotion risks; fixed: every step needs margin m.
    step_margin: Literal["exposure", "fixed"] = "exposure"
    step_margin_cap: float = Field(10.0, ge=1)
    alpha_rollback: Probability = 0.05
    alpha_step: Probability = 0.05
    alpha_promote: Probability = 0.01
    burn_in: int = Field(30, ge=0)
    outage_fallback_s: float = Field(600.0, gt=0)
    counters: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_COUNTERS))
    metrics: tuple[MetricConfig, ...] = Field(DEFAULT_METRICS, min_length=1, validate_default=True)
    guards: GuardsConfig = GuardsConfig()
    change_detection: ChangeDetectionConfig = ChangeDetectionConfig()
    threshold: ThresholdConfig = ThresholdConfig()

    @field_validator("steps", mode="before")
    @classmethod
    def _listed_steps(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    @field_validator("metrics", mode="before")
    @classmethod
    def _listed_metrics(cls, value: Any) -> Any:
        if value is None:
            return tuple(DEFAULT_METRICS)
        return tuple(value) if isinstance(value, list) else value

    @field_validator("counters", mode="before")
    @classmethod
    def _counters(cls, value: Any) -> Any:
        if value is None:
            return dict(DEFAULT_COUNTERS)
        if not isinstance(value, dict):
            return value  # "must be a mapping"
        for key, selector in value.items():
            if key not in COUNTER_FIELDS:
                raise _custom(key, f"unknown key (allowed: {', '.join(sorted(COUNTER_FIELDS))})")
            if not isinstance(selector, str) or not selector.strip():
                raise _custom(key, f"must be a non-empty PromQL selector, got {selector!r}")
        return {**DEFAULT_COUNTERS, **{k: v.strip() for k, v in value.items()}}

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: tuple[float, ...]) -> tuple[float, ...]:
        for i in range(1, len(steps)):
            if steps[i] <= steps[i - 1]:
                raise _custom(str(i), f"must be strictly increasing, got {steps[i]:g} after {steps[i - 1]:g}")
        return steps

    @field_validator("metrics")
    @classmethod
    def _named_once_and_weighted(cls, metrics: tuple[MetricConfig, ...]) -> tuple[MetricConfig, ...]:
        names = [m.name for m in metrics]
        for i, n in enumerate(names):
            if n in names[:i]:
                raise _custom(f"{i}.name", f"duplicate metric name {n!r}")
        # Unset weights share what the set ones leave, equally.
        given = sum(m.weight for m in metrics)
        unset = [i for i, m in enumerate(metrics) if m.weight == 0.0]
        if unset:
            rest = 1.0 - given
            if rest <= 1e-9:
                raise _custom(f"{unset[0]}.weight", f"nothing left to share: the given weights sum to {given:g}")
            metrics = tuple(
                m.model_copy(update={"weight": rest / len(unset)}) if i in unset else m for i, m in enumerate(metrics)
            )
        total = sum(m.weight for m in metrics)
        if abs(total - 1.0) > 1e-6:
            raise _custom("", f"weights must sum to 1 (Bonferroni split of alpha_rollback), got {total:g}")
        return metrics

    @model_validator(mode="after")
    def _regression_needs_sequential(self) -> AnalysisConfig:
        regression = [i for i, m in enumerate(self.metrics) if m.kind in REGRESSION_KINDS]
        if not regression:
            return self
        i = regression[0]
        if self.mode == "threshold":
            raise _custom(
                f"metrics.{i}.kind",
                f"{self.metrics[i].kind} is a regression metric of the sequential "
                "analysis; mode: threshold (the seed lab's fixed thresholds on "
                "accuracy, p95 latency and errors) ignores the metrics list and has no "
                "regression check: use mode: sequential",
            )
        # The abs-error histogram is read only when a regression metric needs it.
        missing = {k: v for k, v in OPTIONAL_COUNTERS.items() if k not in self.counters}
        if missing:
            object.__setattr__(self, "counters", {**self.counters, **missing})
        return self


# ---------------------------------------------------------------- errors in words


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int) or (isinstance(part, str) and part.isdigit()):
            out += f"[{part}]"
        elif part:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _model_at(loc: tuple) -> type[BaseModel]:
    """The model whose key `loc` names (for the list of allowed keys)."""
    model: Any = AnalysisConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        model = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else annotation
    return model


def _describe(err: Mapping[str, Any]) -> str:
    loc, kind, ctx, got = tuple(err["loc"]), err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "canary":
        extra = tuple(int(p) if p.isdigit() else p for p in ctx["field"].split(".") if p)
        return f"{_path(loc + extra)}: {ctx['message']}"
    path = _path(loc)
    number = isinstance(got, (int, float)) and not isinstance(got, bool)
    if kind == "extra_forbidden":
        allowed = ", ".join(sorted(_model_at(loc).model_fields))
        return f"{path}: unknown key (allowed: {allowed})"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal") and number:
        op, bound = {
            "greater_than": (">", "gt"),
            "greater_than_equal": (">=", "ge"),
            "less_than": ("<", "lt"),
            "less_than_equal": ("<=", "le"),
        }[kind]
        return f"{path}: must be {op} {ctx[bound]:g}, got {got:g}"
    if kind in ("float_type", "finite_number"):
        return f"{path}: must be a number, got {got!r}"
    if kind in ("int_type", "int_from_float"):
        return f"{path}: must be an integer, got {got!r}"
    if kind == "bool_type":
        return f"{path}: must be true or false, got {got!r}"
    if kind == "literal_error":
        choices = ctx.get("expected", "").replace("'", "").replace(" or ", ", ")
        return f"{path}: must be one of {choices}, got {got!r}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"{path}: must be a mapping, got {type(got).__name__}"
    if kind in ("too_short", "tuple_type", "list_type"):
        return f"{path}: must be a non-empty list, got {got!r}"
    if kind == "string_type":
        return f"{path}: must be a string, got {got!r}"
    if kind == "missing":
        return f"{path}: required"
    return f"{path}: {err['msg']}"


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
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"(top level): must be a mapping, got {type(raw).__name__}")
    try:
        return AnalysisConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(e) for e in exc.errors(include_url=False))) from None
