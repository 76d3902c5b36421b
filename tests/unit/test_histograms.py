"""One definition of a histogram's quantile: the scalar one (canary_common.histograms, the router's)
and the analysis's numpy form agree, on hand-made and on random histograms."""

import math
import random

import numpy as np
import pytest

from canary_common.histograms import quantile
from canary_controller.analysis.stats import histogram_quantile

BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, math.inf]


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_the_two_forms_agree_on_random_histograms(q):
    rng = random.Random(7)
    rows = []
    for _ in range(300):
        counts, total = [], 0
        for _ in BOUNDS:
            total += rng.choice([0, 0, 1, 3, 10, 50])
            counts.append(total)
        rows.append(counts)
    vectorised = histogram_quantile(q, BOUNDS, np.array(rows, float))
    for counts, fast in zip(rows, vectorised, strict=True):
        scalar = quantile(q, dict(zip(BOUNDS, counts, strict=True)))
        assert (scalar is None and math.isnan(fast)) or scalar == pytest.approx(fast), counts


def test_prometheus_semantics():
    assert quantile(0.5, {0.1: 50, 0.2: 100, math.inf: 100}) == pytest.approx(0.1)
    assert quantile(0.75, {0.1: 50, 0.2: 100, math.inf: 100}) == pytest.approx(0.15)
    assert quantile(0.99, {0.1: 0, 0.2: 0, math.inf: 10}) == 0.2  # in +Inf: the highest finite bound
    assert quantile(0.5, {0.1: 0, math.inf: 0}) is None
