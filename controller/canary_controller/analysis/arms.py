"""Counter increments as arrays: the engines work on a batch of B independent rollouts at once
(B = 1 behind the controller, thousands in the benchmark), so one implementation serves both."""
from __future__ import annotations

import numpy as np

from .base import ArmIncrement

# Column order of the (B, 6) increment arrays.
FIELDS = ("requests", "errors", "labelled", "correct", "latency_count", "latency_fast")
COL = {name: i for i, name in enumerate(FIELDS)}

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
}


def kind_matrices(kinds) -> tuple[np.ndarray, np.ndarray]:
    """(6, K) matrices turning increments into good and total counts per metric."""
    good = np.zeros((len(FIELDS), len(kinds)))
    total = np.zeros((len(FIELDS), len(kinds)))
    for k, kind in enumerate(kinds):
        for name, coef in _GOOD[kind].items():
            good[COL[name], k] = coef
        for name, coef in _TOTAL[kind].items():
            total[COL[name], k] = coef
    return good, total


def to_row(arm: ArmIncrement) -> np.ndarray:
    """One arm's scalar increments as a (1, 6) array (negative values from bad scrapes -> 0)."""
    return np.maximum(np.array([[float(getattr(arm, f)) for f in FIELDS]]), 0.0)
