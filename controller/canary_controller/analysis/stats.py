"""The statistics shared by the analyses; all functions take numpy arrays or scalars.

- log_e_value: the one-sided normal-mixture e-value of the design note (half-normal prior of
  scale tau on the effect in the direction of evidence).
- evidence_radius: the signed distance at which that e-value reaches a threshold; inverting the
  test gives anytime-valid one-sided confidence bounds.
- lindon_malek_log_bf: the Dirichlet-multinomial Bayes factor for a two-way split against a
  fixed share (Lindon & Malek 2022), exact and valid at every look.
- histogram_quantile: linear interpolation inside cumulative buckets, as Prometheus does.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, log_ndtr

LOG2 = float(np.log(2.0))


def log_e_value(s, var, tau):
    """log E for signed distance s from the null boundary, estimate variance var, prior scale tau.

    log E = log 2 + log Phi(s*sqrt(tau^2/(V(V+tau^2)))) + 1/2 log(V/(V+tau^2))
            + s^2 tau^2 / (2 V (V+tau^2))
    Where var is not finite or not positive (no data), log E is 0 (no evidence).
    """
    s, var, tau = np.broadcast_arrays(np.asarray(s, float), np.asarray(var, float), np.asarray(tau, float))
    ok = np.isfinite(var) & (var > 0) & np.isfinite(s)
    v = np.where(ok, var, 1.0)
    t2 = tau * tau
    vt = v + t2
    out = (
        LOG2
        + log_ndtr(np.where(ok, s, 0.0) * np.sqrt(t2 / (v * vt)))
        + 0.5 * np.log(v / vt)
        + np.where(ok, s, 0.0) ** 2 * t2 / (2.0 * v * vt)
    )
    out = np.where(ok, out, 0.0)
    return out if out.ndim else float(out)


def evidence_radius(var, tau, log_threshold, iters: int = 60):
    """The distance s* > 0 at which log_e_value(s*, var, tau) == log_threshold (> 0).

    log E rises with s; at s = 0 it is below 0, and at s_hi below (where the exponential term
    alone reaches the threshold plus the variance penalty) it is above, so bisection brackets it.
    """
    var, tau, c = np.broadcast_arrays(np.asarray(var, float), np.asarray(tau, float), np.asarray(log_threshold, float))
    ok = np.isfinite(var) & (var > 0)
    v = np.where(ok, var, 1.0)
    t2 = tau * tau
    hi = np.sqrt(2.0 * v * (v + t2) / t2 * (c + LOG2 + 0.5 * np.log((v + t2) / v)))
    lo = np.zeros_like(hi)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        above = log_e_value(mid, v, tau) >= c
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    out = np.where(ok, hi, np.inf)
    return out if out.ndim else float(out)


def lindon_malek_log_bf(x_c, x_p, rho, k):
    """log Bayes factor that events split between canary (x_c) and production (x_p) other than
    rho : 1-rho, with a Beta(k rho, k (1-rho)) mixture over the split."""
    x_c, x_p, rho = (np.asarray(a, float) for a in (x_c, x_p, rho))
    ok = (rho > 0) & (rho < 1)
    r = np.where(ok, rho, 0.5)
    a, b = k * r, k * (1.0 - r)
    out = betaln(a + x_c, b + x_p) - betaln(a, b) - x_c * np.log(r) - x_p * np.log1p(-r)
    out = np.where(ok, out, 0.0)
    return out if out.ndim else float(out)


def histogram_quantile(q: float, bounds, counts):
    """Quantile q from cumulative bucket counts (..., n_buckets) with upper bounds `bounds`
    (sorted, +Inf last); NaN where the histogram is empty. Like Prometheus: linear inside the
    bucket, lower edge 0 for the first bucket, the last finite bound if the rank is in +Inf."""
    bounds = np.asarray(bounds, float)
    counts = np.maximum.accumulate(np.asarray(counts, float), axis=-1)  # repair tiny inversions
    total = counts[..., -1]
    rank = q * total
    idx = np.argmax(counts >= rank[..., None], axis=-1)
    finite = bounds[np.isfinite(bounds)]
    upper = bounds[idx]
    lower = np.where(idx > 0, bounds[np.maximum(idx - 1, 0)], 0.0)
    c_hi = np.take_along_axis(counts, idx[..., None], axis=-1)[..., 0]
    c_lo = np.where(idx > 0, np.take_along_axis(counts, np.maximum(idx - 1, 0)[..., None], axis=-1)[..., 0], 0.0)
    frac = np.where(c_hi > c_lo, (rank - c_lo) / np.where(c_hi > c_lo, c_hi - c_lo, 1.0), 1.0)
    value = lower + (np.where(np.isfinite(upper), upper, lower) - lower) * frac
    last_finite = finite[-1] if finite.size else np.nan
    value = np.where(np.isfinite(upper), value, last_finite)
    value = np.where(total > 0, value, np.nan)
    return value if value.ndim else float(value)
