"""The quantile of a Prometheus histogram from its cumulative bucket counts, as Prometheus's own
histogram_quantile computes it: linear inside the bucket, 0 as the first bucket's lower edge, and
the highest finite bound when the rank falls in +Inf.

This is the definition. The controller's analysis needs the same over thousands of simulated runs
at once, so canary_controller.analysis.stats.histogram_quantile is its numpy form (the router's
image has no numpy); tests/unit/test_histograms.py holds the two equal.
"""

from __future__ import annotations

import math


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile from cumulative counts {upper bound: count}; None when there are none."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound in bounds:
        count = max(buckets[bound], prev_count)  # counts scraped apart may be a hair out of order
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound
