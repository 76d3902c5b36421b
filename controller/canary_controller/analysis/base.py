"""What every analysis consumes and produces.

The controller reads raw counters from Prometheus, takes the increments itself and hands the
analysis one `Poll` per poll interval. The analysis knows statistics, not Prometheus, HTTP or
MLflow: it never does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ArmIncrement:
    """Counter increments of one arm (production or canary) during one poll interval."""

    requests: float = 0.0  # backend attempts, ok + error
    errors: float = 0.0
    labelled: float = 0.0  # predictions whose ground-truth label arrived
    correct: float = 0.0
    latency_count: float = 0.0  # successful requests seen by the latency histogram
    latency_fast: float = 0.0  # of those, at or under the latency SLO bucket boundary
    # Cumulative histogram bucket increments ((upper bound in seconds, count), ...), sorted,
    # +Inf last: what threshold mode needs for a p95 over its window.
    latency_buckets: tuple[tuple[float, float], ...] = ()
    # The same for the absolute-error histogram of labelled predictions (regression models:
    # regression.ABS_ERROR_METRIC, bounds ABS_ERROR_BUCKETS); empty unless a regression metric
    # is configured. Upper bounds in the label's unit.
    abs_error_buckets: tuple[tuple[float, float], ...] = ()

    def __add__(self, other: ArmIncrement) -> ArmIncrement:
        def merge(a, b):
            merged: dict[float, float] = {}
            for le, n in a + b:
                merged[le] = merged.get(le, 0.0) + n
            return tuple(sorted(merged.items()))

        return ArmIncrement(
            requests=self.requests + other.requests,
            errors=self.errors + other.errors,
            labelled=self.labelled + other.labelled,
            correct=self.correct + other.correct,
            latency_count=self.latency_count + other.latency_count,
            latency_fast=self.latency_fast + other.latency_fast,
            latency_buckets=merge(self.latency_buckets, other.latency_buckets),
            abs_error_buckets=merge(self.abs_error_buckets, other.abs_error_buckets),
        )


@dataclass(frozen=True)
class Poll:
    """One poll interval: the stratum of the sequential tests."""

    at: float  # end of the interval, seconds (monotonic or epoch: only differences matter)
    canary: ArmIncrement
    production: ArmIncrement
    weight: float  # the canary's configured share during the interval, 0..1
    canary_restarts: int = 0  # canary server restarts seen during the interval


class Decision(str, enum.Enum):
    ROLLBACK = "rollback"
    STEP_UP = "step_up"
    PROMOTE = "promote"
    CONTINUE = "continue"
    INCONCLUSIVE = "inconclusive"


@dataclass
class Verdict:
    decision: Decision
    summary: str  # one sentence in words: why it rolls back, steps, or holds
    metrics: list[dict] = field(default_factory=list)  # evidence per metric
    guards: list[dict] = field(default_factory=list)  # evidence of the immediate guards
    # On a rollback, what fired first in the summary's order: a guard's name ("error_burst",
    # "sample_ratio", "restarts"), or a metric's detector ("from_start", "change"); else None.
    detector: str | None = None

    def as_dict(self) -> dict:
        return {
            "decision": self.decision.value,
            "summary": self.summary,
            "metrics": self.metrics,
            "guards": self.guards,
            "detector": self.detector,
        }


class Analysis(Protocol):
    """The controller's view of an analysis (threshold or sequential)."""

    def start_stage(self, weight: float, at: float, final: bool) -> None:
        """A new weight took effect at `at`; `final` when the next success promotes."""

    def observe(self, poll: Poll) -> None:
        """Add one poll's increments."""

    def verdict(self, at: float) -> Verdict:
        """The decision now: ROLLBACK, STEP_UP (PROMOTE on the final stage), CONTINUE or
        INCONCLUSIVE (stage ran past its maximum time)."""
