"""Counter increments as arrays: the engines work on a batch of B independent rollouts at once
(B = 1 behind the controller, thousands in the benchmark), so one implementation serves both.

Columns. The first six are FIELDS, always, in this order. When a regression kind (regression.py)
is configured, the cumulative bucket counts of the absolute-error histogram follow, one column
per bound of ABS_ERROR_BUCKETS (ABS_ERROR_FIELDS, +Inf last): the engine's arrays are then
(B, 6 + 23). `columns_for(metrics)` says which layout a configuration uses, and
`metric_matrices` is the one place where every kind's (good, total) is defined, as linear
combinations of the columns.
"""

from __future__ import annotations

import numpy as np

from canary_common.regression import (
    ABS_ERROR_BUCKETS,
    REGRESSION_KINDS,
    dense_counts,
    mae_coefficients,
    within_coefficients,
)

from .base import ArmIncrement

# Column order of the (B, 6) increment arrays.
FIELDS = ("requests", "errors", "labelled", "correct", "latency_count", "latency_fast")
COL = {name: i for i, name in enumerate(FIELDS)}
# The absolute-error histogram's cumulative bucket counts, after FIELDS (regression kinds only).
ABS_ERROR_FIELDS = tuple(f"abs_error_le_{b:g}" for b in ABS_ERROR_BUCKETS)

# Per metric kind: (good, total) as linear combinations of the columns; higher good is better.
_GOOD = {
    "accuracy": {"correct": 1.0},
    "availability": {"requests": 1.0, "errors": -1.0},
    "latency": {"latency_fast": 1.0},
}
_TOTAL = {
    "accuracy": {"labelled": 1.0},
    "availability": {"requests": 1.0},
    "latency": {"latency_count": 1.0},
}
# Words for "one unit of the metric's denominator" in explanations.
UNIT = {
    "accuracy": "labelled canary requests",
    "availability": "canary requests",
    "latency": "successful canary requests",
    "within_tolerance": "labelled canary predictions",
    "mae": "labelled canary predictions",
}


def columns_for(metrics) -> tuple[str, ...]:
    """The increment columns a configuration's metrics need: FIELDS, plus ABS_ERROR_FIELDS when
    any metric is of a regression kind."""
    if any(m.kind in REGRESSION_KINDS for m in metrics):
        return FIELDS + ABS_ERROR_FIELDS
    return FIELDS


def kind_matrices(kinds) -> tuple[np.ndarray, np.ndarray]:
    """(6, K) matrices turning increments into good and total counts per metric (rate kinds)."""
    good = np.zeros((len(FIELDS), len(kinds)))
    total = np.zeros((len(FIELDS), len(kinds)))
    for k, kind in enumerate(kinds):
        for name, coef in _GOOD[kind].items():
            good[COL[name], k] = coef
        for name, coef in _TOTAL[kind].items():
            total[COL[name], k] = coef
    return good, total


def metric_matrices(metrics, columns: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(F, K) matrices turning the F increment columns into good and total counts per metric:
    the rate kinds from FIELDS, within_tolerance and mae from the abs-error bucket columns
    (regression.within_coefficients / mae_coefficients)."""
    columns = columns_for(metrics) if columns is None else columns
    good = np.zeros((len(columns), len(metrics)))
    total = np.zeros((len(columns), len(metrics)))
    hist = slice(len(FIELDS), len(FIELDS) + len(ABS_ERROR_FIELDS))
    for k, m in enumerate(metrics):
        if m.kind in _GOOD:
            for name, coef in _GOOD[m.kind].items():
                good[COL[name], k] = coef
            for name, coef in _TOTAL[m.kind].items():
                total[COL[name], k] = coef
            continue
        if tuple(columns[hist]) != ABS_ERROR_FIELDS:
            raise ValueError(f"metric {m.name!r} ({m.kind}) needs the abs-error bucket columns")
        g, t = within_coefficients(m.tolerance) if m.kind == "within_tolerance" else mae_coefficients(m.clip)
        good[hist, k], total[hist, k] = g, t
    return good, total


def to_row(arm: ArmIncrement, columns: tuple[str, ...] = FIELDS) -> np.ndarray:
    """One arm's increments as a (1, F) array (negative values from bad scrapes -> 0); with the
    regression layout the abs-error buckets become one cumulative count per contract bound."""
    row = [max(float(getattr(arm, f)), 0.0) for f in FIELDS]
    if len(columns) > len(FIELDS):
        row += dense_counts(arm.abs_error_buckets)
    return np.array([row])
