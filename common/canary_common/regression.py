"""Metric kinds for regression models, and the router's contract for them.

Contract. Labels of a regression model are numbers (`actual_value`). For every labelled
prediction the router observes the absolute error |prediction - actual_value| in the histogram
ABS_ERROR_METRIC (`canary_router_prediction_abs_error`, labels `model`="production"|"canary" and
`version`; in shadow its twin SHADOW_ABS_ERROR_METRIC with `version` only), with exactly the
upper bounds ABS_ERROR_BUCKETS (+Inf last). The controller reads the cumulative `_bucket` series
(the analysis file's `counters.abs_error_buckets`, default ABS_ERROR_BUCKET_SERIES); the +Inf
bucket is `_count`, taken from the same query so the counts of one poll are consistent. This
module imports nothing outside the standard library, so the router can load or copy it.

Two kinds, each on the analysis' "good" scale (higher is better, g = p_canary - p_production):

within_tolerance: good = predictions with |error| <= tolerance (the cumulative bucket count at
  le = tolerance, exact because the tolerance must be a bucket bound), total = labelled
  predictions (the +Inf bucket). A rate like accuracy, so every e-process of sequential.py (the
  from-start rollback test, the change detector, non-inferiority) applies as it is; the margin
  is in points of that share.

mae: the mean absolute error, errors clipped at `clip` (a bucket bound). Each labelled
  prediction is mapped to u = min(ub, clip) / clip in [0, 1], where ub is the upper bound of its
  histogram bucket, and good = total - sum(u): the mean good per prediction is
  1 - (clipped MAE) / clip. The bucket's upper bound is conservative (never below the true
  clipped error) and, applied alike to both arms, turns equal error distributions into equal
  means; the decisions are about this bucketed clipped MAE, which lies between the true clipped
  MAE and 2.5 times it plus 0.001 (the bounds grow by at most 2.5 from one to the next; errors
  under 0.001 count as 0.001).
  sum(u) is linear in the cumulative bucket counts C_i: with u_i = min(b_i, clip) / clip,
  good = sum_i C_i (u_{i+1} - u_i) over the finite bounds b_i < clip (mae_coefficients), so the
  engine computes it like any other kind, by one matrix product per poll.

Why the existing test stays valid for mae. In every stratum (poll) the engine estimates the
difference of the arms' mean good, d = mean(y_c) - mean(y_p), with y = 1 - u in [0, 1], and
combines strata with Mantel-Haenszel weights; the normal-mixture e-process then needs the
variance of that estimate, or an upper bound of it (a larger variance only makes the e-value
smaller for the same estimate: the test gets more conservative, never less). The engine uses the
binomial variance p (1 - p) per observation (from add-one smoothed means, and at least its value
at the null boundary). For any variable y in [0, 1] with mean p, y^2 <= y, so
Var(y) = E[y^2] - p^2 <= E[y] - p^2 = p (1 - p): the binomial variance is the largest a [0, 1]
variable with that mean can have (reached only by a 0/1 variable). So the variance the engine
uses bounds the true one stratum by stratum, whatever the shape of the error distribution, and
the argument of the rate kinds (a sum of bounded, independent per-prediction terms, normal in
the limit, its variance bounded) carries over unchanged: Ville's inequality gives the same
anytime error bounds, over any number of looks, weight changes and starts. The e-process rests
on the normal approximation of the stratum estimates, as for the rate kinds; bounded terms have
every moment, so it holds as the counts grow (the burn-in applies as usual), and with the
variance overstated its errors are on the safe side. The price is power: for a clip far in the tail
(most u small) the bound is loose, and decisions come later than an empirical variance would
allow; choose a clip near production's 90th-99th percentile of the absolute error. Margins and
delta_rollback are on the good scale, that is fractions of `clip`: margin 0.02 means the
canary's clipped MAE may exceed production's by at most 2 % of clip (0.1 for clip 5). The
unit tests (tests/unit/test_analysis_regression.py) show the error rates empirically for skewed
bounded, exponential, lognormal and mixed errors, under equal distributions and at the margin.
"""

from __future__ import annotations

import math

from canary_common import contracts

ABS_ERROR_METRIC = contracts.ROUTER_ABS_ERROR
SHADOW_ABS_ERROR_METRIC = contracts.ROUTER_SHADOW_ABS_ERROR
ABS_ERROR_BUCKET_SERIES = ABS_ERROR_METRIC + "_bucket"
# Upper bounds of the absolute-error histogram, +Inf last (prometheus_client accepts it as is).
ABS_ERROR_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1000.0,
    2500.0,
    5000.0,
    10000.0,
    math.inf,
)
FINITE_BOUNDS = ABS_ERROR_BUCKETS[:-1]

REGRESSION_KINDS = ("within_tolerance", "mae")
# The analysis file's counters entry for the histogram, added when a regression kind is configured.
ABS_ERROR_COUNTER = "abs_error_buckets"


def bound_index(value: float) -> int | None:
    """Index of `value` in ABS_ERROR_BUCKETS (up to float rounding), or None."""
    v = float(value)
    for i, b in enumerate(ABS_ERROR_BUCKETS):
        if v == b or (math.isfinite(b) and math.isclose(v, b, rel_tol=1e-9, abs_tol=0.0)):
            return i
    return None


def allowed_bounds_text() -> str:
    return ", ".join(f"{b:g}" for b in FINITE_BOUNDS)


def within_coefficients(tolerance: float) -> tuple[list[float], list[float]]:
    """(good, total) coefficients on the cumulative bucket counts for within_tolerance."""
    i = bound_index(tolerance)
    if i is None or not math.isfinite(ABS_ERROR_BUCKETS[i]):
        raise ValueError(f"tolerance {tolerance!r} is not a finite bound of ABS_ERROR_BUCKETS")
    good = [0.0] * len(ABS_ERROR_BUCKETS)
    total = [0.0] * len(ABS_ERROR_BUCKETS)
    good[i] = 1.0
    total[-1] = 1.0
    return good, total


def mae_coefficients(clip: float) -> tuple[list[float], list[float]]:
    """(good, total) coefficients on the cumulative bucket counts C_i for mae:
    good = total - sum(u) = sum_i C_i (u_{i+1} - u_i), u_i = min(b_i, clip) / clip (u = 1 in +Inf)."""
    i = bound_index(clip)
    if i is None or not math.isfinite(ABS_ERROR_BUCKETS[i]):
        raise ValueError(f"clip {clip!r} is not a finite bound of ABS_ERROR_BUCKETS")
    c = ABS_ERROR_BUCKETS[i]
    u = [min(b, c) / c for b in ABS_ERROR_BUCKETS]  # +Inf -> 1
    good = [u[j + 1] - u[j] for j in range(len(u) - 1)] + [0.0]
    total = [0.0] * len(ABS_ERROR_BUCKETS)
    total[-1] = 1.0
    return good, total


def dense_counts(buckets) -> list[float]:
    """Sparse cumulative bucket increments ((le, count), ...) -> one count per ABS_ERROR_BUCKETS
    bound. A bound missing from the poll had no increment (the controller drops zero increments);
    bounds outside the contract are ignored (CounterReader refuses them); small inversions from
    resets are repaired by taking the running maximum, so the counts are cumulative."""
    out = [0.0] * len(ABS_ERROR_BUCKETS)
    for le, n in buckets:
        i = bound_index(le)
        if i is not None:
            out[i] += max(float(n), 0.0)
    for j in range(1, len(out)):
        out[j] = max(out[j], out[j - 1])
    return out


def describe(kind: str, tolerance: float | None = None, clip: float | None = None) -> str:
    """What the metric measures, in words."""
    if kind == "within_tolerance":
        return f"share within {tolerance:g} of the label"
    if kind == "mae":
        return f"clipped mean absolute error (errors clipped at {clip:g})"
    raise ValueError(kind)
