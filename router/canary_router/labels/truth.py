"""Predictions judged against the truth a client sent: labels for a classifier (accuracy), values
for a regressor (absolute errors), counted in the series the analysis reads."""

from __future__ import annotations

import math
from collections import Counter

from canary_router import metrics


def _number(x) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x)


def same_label(prediction, label) -> bool:
    """A class label as the model answered it against the client's: 1 and 1.0 are the same
    class (a model may answer floats), "1" and 1 are not."""
    a, b = _number(prediction), _number(label)
    if a is not None and b is not None:
        return a == b
    return prediction == label


def abs_error(prediction, value: float) -> float:
    """|prediction - value|; +Inf when the model answered no finite number (counted as the worst)."""
    p = _number(prediction)
    if p is None and isinstance(prediction, list) and len(prediction) == 1:  # a one-output regressor
        p = _number(prediction[0])
    if p is None or not math.isfinite(p):
        return math.inf
    error = abs(p - value)
    return error if math.isfinite(error) else math.inf


def outcomes(predictions, labels, classes=None) -> Counter:
    """correct/incorrect counts; a label outside the model's classes is not counted."""
    return Counter(
        "correct" if same_label(p, y) else "incorrect"
        for p, y in zip(predictions, labels)
        if not classes or y in classes
    )


def count_labels(arm: str, version: str, predictions, labels, classes) -> None:
    for outcome, n in outcomes(predictions, labels, classes).items():
        metrics.child(metrics.LABELLED, arm, version, outcome).inc(n)


def count_values(arm: str, version: str, predictions, values) -> None:
    histogram = metrics.child(metrics.ABS_ERROR, arm, version)
    for p, v in zip(predictions, values):
        histogram.observe(abs_error(p, v))
