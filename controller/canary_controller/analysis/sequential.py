"""The sequential analysis of the design note (rollout-analysis.md).

Per metric, on a "good" scale (higher is better) with g = p_canary - p_production:
- rollback evidence: an e-process against H0_R: g >= -delta_R; metric k rolls back when
  log E_R >= log(1 / (w_k alpha_fs)) (weighted Bonferroni, any metric; alpha_fs = alpha_R, or
  (1 - alpha_share) alpha_R with the change detector below), or when its change detector alarms;
- non-inferiority evidence: an e-process against H0_P: g <= -m; a step-up needs every gating
  metric at log E_P >= log(1/alpha_step), the final promotion at log(1/alpha_promote).

Every poll is a stratum; strata combine with Mantel-Haenszel weights w = n_c n_p / (n_c + n_p),
so a weight change or a drift of the base rate does not bias the estimate. Variance is
V = max(Wald, variance at the null boundary) from add-one smoothed pooled proportions.

Stage boundaries. Both e-processes run over the whole rollout: rollback evidence is never reset
when the weight changes, and non-inferiority evidence carries over, so a later step does not
start from zero. This is valid because each stratum compares the arms within the same poll
interval, whatever the weight; and because the final promotion holds the same e-process to the
stricter alpha_promote, its error stays below alpha_promote by Ville's inequality however many
step-ups happened on the way. A step-up is judged on the evidence as it stands at that poll (not
on a past crossing), so data from the new weight that pulls the estimate down delays the next
step. The poll that straddles a weight change is a stratum like any other for these tests; the
guards, which compare against the stage's share, skip it.

Change detection (change-detection.md). The from-start rollback test sees a late harm only once
it outweighs all the healthy history before it. Beside it, per metric, run start-indexed
e-processes: start j opens at a poll (one per start_interval_s of rollout, the first at the first
poll) and is today's test computed from the strata after that poll only, from its own running
sums (same MH weights, same variance rule; its own tau, tau_change, by default twice
tau_rollback). Under H0_R each E_j is an e-process from its start, so P(E_j ever >= c_j) <= 1/c_j.
Metric k alarms when any kept start has log E_j >= log c_jk = log(1/(w_k alpha_cd)) + log(1/w_j)
(past burn-in in its own counts), and the union bound keeps the chance of any false alarm within
alpha_cd. alpha_R is split: the from-start test keeps (1 - alpha_share) alpha_R, the change
detector gets alpha_cd = alpha_share alpha_R; both then split across metrics by the Bonferroni
weights w_k, so every false rollback of either kind stays within alpha_R.

The horizon rule: w_j = ln(A) / ((j + A) ln^2(j + A)) with A = 50 (START_OFFSET). These sum to at
most 1 over all j >= 1 (the sum is below the integral of 1 / (x ln^2 x) from A, which is
1 / ln A), so the bound holds for a rollout of any length: a stage held for a day, on_inconclusive
hold, max_stage_s null. The cost of a start grows only about as ln j: log(1/w_j) is 5.4 nats one
minute into a rollout, 7.8 after an hour, 10.8 after 12 h and 14 after a week (15 s starts). A
uniform budget over a fixed horizon H would cost ln(H / interval) at every start (8.0 for 12 h)
and have no bound past H; w_j ∝ 1/(j (j+1)) would cost 2 ln j (11 after an hour). Restarting a
budget at every stage would cost ln(number of steps) and gain nothing, since a start stays valid
across weight changes (each stratum compares the arms within one poll interval, whatever the
weight), so starts are kept across stages like the from-start evidence.

Bounded memory and time: at most max_starts starts are kept per run. When all are taken and a new
one is due, the start whose removal leaves the smallest gap (to its neighbours) relative to its
age is dropped, never the newest; so the kept starts are dense over the last minutes and spaced
10-15 % of their age apart further back (64 starts over 12 h): whenever a change happened, a
kept start lies close to it compared with how long the change has been going on. Dropping a
start never hurts the bound (it only forgoes a chance to alarm); thresholds use the start's
index j, not its slot. Per poll the work is O(max_starts x metrics).

Which detector fired, and since when, is in each metric's evidence (SequentialAnalysis):
"detector" ("from_start" wins when both fired, else "change", else None), "change_since" and
"since" (the `at` of the fired or strongest start, and the per-arm counts since then).

Guards that act at once (per stage, no burn-in): an error burst on the canary (Lindon-Malek
Bayes factor on error counts against the canary share; fires only when the canary's share of
errors is above its share of traffic), a sample-ratio mismatch (the same Bayes factor on request
counts against the configured weight, two-sided), and canary restarts during the rollout.

The engine works on a batch of B rollouts (numpy arrays) so the benchmark can drive this very
code for thousands of simulated rollouts; SequentialAnalysis is the controller's B = 1 view.

Regression kinds (regression.py: within_tolerance, mae) are metrics like the others: their good
and total come from the abs-error histogram's bucket columns (arms.metric_matrices), every test
above applies unchanged. mae's good is fractional (total minus the summed clipped errors in units
of clip); the binomial variance used here bounds the variance of any [0, 1] variable with the
same mean, so its tests keep their error bounds (the argument is in regression.py).
"""

from __future__ import annotations

import math
import time

import numpy as np

from canary_common.regression import REGRESSION_KINDS, describe

from .arms import FIELDS, UNIT, columns_for, metric_matrices, to_row
from .base import Decision, Poll, Verdict
from .config import AUTO, AnalysisConfig, MetricConfig
from .stats import LOG2, evidence_radius, lindon_malek_log_bf, log_e_value

CONTINUE, STEP_UP, PROMOTE, ROLLBACK, INCONCLUSIVE = 0, 1, 2, 3, 4
CODE_TO_DECISION = {
    CONTINUE: Decision.CONTINUE,
    STEP_UP: Decision.STEP_UP,
    PROMOTE: Decision.PROMOTE,
    ROLLBACK: Decision.ROLLBACK,
    INCONCLUSIVE: Decision.INCONCLUSIVE,
}
_EPS = 1e-9
# The change detector's spending sequence: start j (1, 2, ...) of a rollout gets the share
# w_j = ln(A) / ((j + A) ln^2(j + A)) of the detector's budget; these sum to at most 1 over
# every start there could ever be (the sum is bounded by the integral of 1 / (x ln^2 x) from A).
START_OFFSET = 50.0
_LNLN_A = math.log(math.log(START_OFFSET))
# A start is due when the previous one is at least 90 % of start_interval_s old, so poll jitter
# (a poll a little early) does not skip a start.
_DUE_FRACTION = 0.9
_CHUNK = 1 << 14
_SUMS = ("W", "G", "Ac", "Ap", "xc", "nc", "xp", "np_")


def start_log_weight(j):
    """log(1 / w_j) of start j (1-based) in the change detector's spending sequence."""
    x = np.asarray(j, float) + START_OFFSET
    return np.log(x) + 2.0 * np.log(np.log(x)) - _LNLN_A


def guard_log_threshold(config: AnalysisConfig, alpha: float) -> float:
    """The guards start afresh at every stage, so each stage gets alpha / (number of steps): over
    a whole rollout the chance of a false guard alarm stays within alpha (union bound)."""
    return math.log(max(1, len(config.steps)) / alpha)


def _share(weight) -> np.ndarray:
    """The canary share 0..1; a value above 1 is read as a percentage."""
    w = np.asarray(weight, float)
    return np.where(w > 1.0, w / 100.0, w)


def _variance(W, xc, nc, xp, np_, Ac, Ap, boundary) -> tuple[np.ndarray, np.ndarray]:
    """(Wald-or-null max variance of g_hat, the Wald one) for a null boundary g = boundary, from
    one set of MH sums (the whole rollout's, or a change-detector start's)."""
    pc = (xc + 1.0) / (nc + 2.0)  # add-one smoothing
    pp = (xp + 1.0) / (np_ + 2.0)
    W2 = np.where(W > 0, W * W, np.nan)
    wald = (pc * (1 - pc) * Ac + pp * (1 - pp) * Ap) / W2
    n = nc + np_
    # Proportions at the boundary that keep the pooled count: n_c (p0 + b) + n_p p0 = x.
    p0 = (nc * pc + np_ * pp - nc * boundary) / np.where(n > 0, n, 1.0)
    lo = np.maximum(0.0, -boundary) + 1e-6
    hi = np.minimum(1.0, 1.0 - boundary) - 1e-6
    p0 = np.clip(p0, lo, hi)
    p0c = p0 + boundary
    null = (p0c * (1 - p0c) * Ac + p0 * (1 - p0) * Ap) / W2
    return np.fmax(wald, null), wald


class SequentialEngine:
    """Evidence and decisions for B independent rollouts at once."""

    def __init__(self, config: AnalysisConfig, size: int = 1):
        self.config = config
        self.size = size
        ms = config.metrics
        self.names = [m.name for m in ms]
        self.kinds = [m.kind for m in ms]
        # The increment columns (arms.FIELDS, plus the abs-error buckets for regression kinds)
        # and every metric's (good, total) as linear combinations of them.
        self.columns = columns_for(ms)
        self.good_m, self.total_m = metric_matrices(ms, self.columns)
        col = lambda vals: np.array(vals, float)[:, None]  # noqa: E731  (K, 1) for broadcasting
        self.margin_fixed = col([np.nan if m.margin == AUTO else m.margin for m in ms])
        self.tau_r_fixed = col([np.nan if m.tau_rollback == AUTO else m.tau_rollback for m in ms])
        self.tau_p_fixed = col([np.nan if m.tau_promote == AUTO else m.tau_promote for m in ms])
        self.tau_c_fixed = col([np.nan if m.tau_change == AUTO else m.tau_change for m in ms])
        self.delta = col([m.delta_rollback for m in ms])
        self.weights = np.array([m.weight for m in ms], float)
        self.gate = np.array([m.promotion_gate for m in ms], bool)
        cd = config.change_detection
        self.change_enabled = bool(cd.enabled)
        share = cd.alpha_share if cd.enabled else 0.0
        # alpha_R splits between the from-start test and the change detector, then across metrics.
        self.alpha_from_start = config.alpha_rollback * (1.0 - share)
        self.alpha_change = config.alpha_rollback * share
        # Metric k rolls back at log(1/(w_k alpha_fs)); its start j alarms at
        # log(1/(w_k alpha_cd)) + log(1/w_j).
        self.log_thr_rollback = np.log(1.0 / (self.weights * self.alpha_from_start))
        self.log_thr_change = (
            np.log(1.0 / (self.weights * self.alpha_change)) if self.change_enabled else np.full(len(ms), np.inf)
        )
        self.slots = int(cd.max_starts) if self.change_enabled else 0
        self.start_interval = float(cd.start_interval_s)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self, mask=None) -> None:
        """Start a new rollout (all runs, or those in the boolean mask)."""
        K, B = len(self.names), self.size
        if mask is None or not hasattr(self, "W"):
            z = lambda: np.zeros((K, B))  # noqa: E731
            self.W, self.G, self.Ac, self.Ap = z(), z(), z(), z()
            self.xc, self.nc, self.xp, self.np_ = z(), z(), z(), z()
            self.nc_stage = z()
            zb = lambda: np.zeros(B)  # noqa: E731
            self.err_c, self.err_p, self.req_c, self.req_p = zb(), zb(), zb(), zb()
            self.restarts = zb()
            self.stage_start = np.full(B, np.nan)
            self.stage_weight = np.full(B, np.nan)
            self.final = np.zeros(B, bool)
            self.next_share = np.ones(B)
            self.prev_at = np.full(B, np.nan)
            self.span_start = np.full(B, np.nan)
            self.rollout_start = np.full(B, np.nan)
            # Change detector: per slot the MH sums at its start (8, S, K, B), when it starts
            # counting (its first stratum begins there; NaN: a free slot) and its index j.
            S = self.slots
            self.cs = np.zeros((len(_SUMS), S, K, B))
            self.c_at = np.full((S, B), np.nan)
            self.c_j = np.zeros((S, B))
            self.c_logw = np.zeros((S, B))  # log(1 / w_j) of each slot's start
            self.c_count = zb()
            self.c_last = np.full(B, np.nan)
            return
        m = np.asarray(mask, bool)
        for grid in (self.W, self.G, self.Ac, self.Ap, self.xc, self.nc, self.xp, self.np_, self.nc_stage):
            grid[:, m] = 0.0
        for a in (self.err_c, self.err_p, self.req_c, self.req_p, self.restarts):
            a[m] = 0.0
        for a in (self.stage_start, self.stage_weight, self.prev_at, self.span_start, self.rollout_start, self.c_last):
            a[m] = np.nan
        self.final[m] = False
        self.next_share[m] = 1.0
        self.cs[..., m] = 0.0
        self.c_at[:, m] = np.nan
        self.c_j[:, m] = 0.0
        self.c_logw[:, m] = 0.0
        self.c_count[m] = 0.0

    def start_stage(self, weight, at, final, mask=None) -> None:
        """A new weight took effect: the stage clock and the guards restart; evidence stays."""
        m = np.ones(self.size, bool) if mask is None else np.asarray(mask, bool)
        self.stage_start = np.where(m, at, self.stage_start)
        self.rollout_start = np.where(m & np.isnan(self.rollout_start), at, self.rollout_start)
        self.stage_weight = np.where(m, _share(weight), self.stage_weight)
        self.final = np.where(m, np.asarray(final, bool), self.final)
        # The share the next success moves to: the next step, or all traffic on promotion.
        share = np.broadcast_to(_share(weight), (self.size,))
        steps = np.array(sorted(self.config.steps), float) / 100.0
        after = np.array([next((s for s in steps if s > w + _EPS), 1.0) for w in share])
        self.next_share = np.where(m, np.where(self.final, 1.0, after), self.next_share)
        self.span_start = np.where(m, np.nan, self.span_start)
        for a in (self.err_c, self.err_p, self.req_c, self.req_p):
            a[m] = 0.0
        self.nc_stage[:, m] = 0.0

    def observe(self, at, canary, production, weight, restarts=0.0) -> None:
        """Add one poll for every run: canary/production are (B, F) increment arrays, F the
        columns of self.columns (the six arms.FIELDS; with a regression metric the abs-error
        histogram's cumulative bucket counts follow, one per bound of ABS_ERROR_BUCKETS)."""
        canary = np.maximum(np.asarray(canary, float), 0.0)
        production = np.maximum(np.asarray(production, float), 0.0)
        for a in (canary, production):
            if a.shape[-1] != len(self.columns):
                raise ValueError(
                    f"increments need {len(self.columns)} columns ({', '.join(self.columns[:6])}"
                    f"{', then the abs-error buckets' if len(self.columns) > 6 else ''}), "
                    f"got {a.shape[-1]}"
                )
        weight = np.broadcast_to(_share(weight), (self.size,))
        gc, tc = (canary @ self.good_m).T, (canary @ self.total_m).T  # (K, B)
        gp, tp = (production @ self.good_m).T, (production @ self.total_m).T
        gc, gp = np.clip(gc, 0.0, tc), np.clip(gp, 0.0, tp)
        both = (tc > 0) & (tp > 0)
        tc1, tp1 = np.where(both, tc, 1.0), np.where(both, tp, 1.0)
        w = np.where(both, tc1 * tp1 / (tc1 + tp1), 0.0)
        self.W += w
        self.G += w * (gc / tc1 - gp / tp1)
        self.Ac += np.where(both, w * w / tc1, 0.0)
        self.Ap += np.where(both, w * w / tp1, 0.0)
        self.xc += gc
        self.nc += tc
        self.xp += gp
        self.np_ += tp
        self.nc_stage += tc
        # Guards: only polls wholly inside the stage, once the new weight has settled, at the
        # stage's weight. A first poll (no previous one) may reach back before the stage: skipped.
        started = np.isfinite(self.stage_start)
        settle = self.config.guards.settle_s
        clean = started & ~np.isnan(self.prev_at) & (self.prev_at >= self.stage_start + settle - _EPS)
        clean &= np.abs(weight - self.stage_weight) < 1e-9
        e = FIELDS.index("errors")
        r = FIELDS.index("requests")
        self.err_c += np.where(clean, canary[:, e], 0.0)
        self.err_p += np.where(clean, production[:, e], 0.0)
        self.req_c += np.where(clean, canary[:, r], 0.0)
        self.req_p += np.where(clean, production[:, r], 0.0)
        self.restarts += np.broadcast_to(np.asarray(restarts, float), (self.size,))
        self.span_start = np.where(
            np.isnan(self.span_start), np.where(np.isnan(self.prev_at), self.stage_start, self.prev_at), self.span_start
        )
        self.prev_at = np.full(self.size, float(at)) if np.ndim(at) == 0 else np.asarray(at, float)
        if self.change_enabled:
            self._add_starts(self.prev_at)

    # ------------------------------------------------------------------ change detector
    def _add_starts(self, at: np.ndarray) -> None:
        """Open a start-indexed e-process where one is due: it counts the strata after this poll.
        With every slot taken, the start whose removal leaves the smallest gap relative to its
        age is dropped (never the newest), so the kept starts end up spaced in proportion to
        their age: dense over the last minutes, 10-15 % of the age apart further back."""
        due = np.isnan(self.c_last) | (at - self.c_last >= _DUE_FRACTION * self.start_interval - _EPS)
        due &= np.isfinite(at)
        if not due.any():
            return
        runs = np.nonzero(due)[0]
        t = self.c_at[:, runs]  # (S, R)
        free = np.isnan(t)
        slot = np.argmax(free, axis=0)
        full = ~free.any(axis=0)
        if full.any():
            tf = t[:, full]
            order = np.argsort(tf, axis=0)
            ts = np.take_along_axis(tf, order, axis=0)
            now = at[runs][full]
            origin = np.where(np.isfinite(self.rollout_start[runs][full]), self.rollout_start[runs][full], ts[0])
            prev = np.vstack([np.minimum(origin, ts[0])[None, :], ts[:-1]])
            nxt = np.vstack([ts[1:], now[None, :]])
            cost = (nxt - prev) / np.maximum(now[None, :] - ts, _EPS)
            cost[-1] = np.inf  # keep the newest
            drop = np.argmin(cost, axis=0)
            slot[full] = order[drop, np.arange(order.shape[1])]
        cur = np.stack([getattr(self, name)[:, runs] for name in _SUMS])  # (8, K, R)
        self.cs[:, slot, :, runs] = cur.transpose(2, 0, 1)
        self.c_count[runs] += 1.0
        self.c_at[slot, runs] = at[runs]
        self.c_j[slot, runs] = self.c_count[runs]
        self.c_logw[slot, runs] = start_log_weight(self.c_count[runs])
        self.c_last[runs] = at[runs]

    def tau_change(self, base_err: np.ndarray) -> np.ndarray:
        """The change detector's tau per metric and run; "auto" (availability): max(0.02, 4e)."""
        return np.where(np.isnan(self.tau_c_fixed), np.maximum(0.02, 4.0 * base_err), self.tau_c_fixed)

    def _change_scan(self, tau: np.ndarray) -> dict:
        """Every kept start's e-value against H0_R, from its own sums; which starts alarm.

        Returns per metric and run (K, B): fired (any start at or over its threshold), and the
        best start (the one furthest over its threshold, or nearest under it): its slot (-1: none
        past burn-in), log e, log threshold. Only starts past burn-in count.

        In a batch (B > 1, the benchmark) only starts that pass an exact necessary condition are
        evaluated in full: log E <= log 2 + s^2 / (2 V) and V >= the Wald variance, so a start
        with s^2 < 2 (log c - log 2) V_wald cannot alarm (its log E stays below log c by at least
        1/2 log(1 + tau^2 / V)). The decisions are those of B = 1, where every start past burn-in
        is evaluated so the evidence can show the strongest one."""
        cs, burn_in = self.cs, self.config.burn_in
        S, K, B = cs.shape[1:]
        live = np.isfinite(self.c_at)
        delta = self.delta[None]
        cur = [getattr(self, name)[None] for name in _SUMS]
        batch = self.size > 1
        fired = np.zeros((K, B), bool)
        best = np.full((K, B), -1)
        best_over = np.full((K, B), -np.inf)
        best_e = np.full((K, B), np.nan)
        best_thr = np.full((K, B), np.nan)
        # Slot chunks of about _CHUNK values keep the temporaries small and in cache.
        step = max(1, _CHUNK // max(1, K * B))
        for lo in range(0, S, step):
            hi = min(S, lo + step)
            if not live[lo:hi].any():
                continue
            W, G, Ac, Ap, xc, nc, xp, np_ = (c - cs[i, lo:hi] for i, c in enumerate(cur))
            ok = live[lo:hi, None, :] & (nc >= burn_in) & (np_ >= burn_in) & (W > 0)
            thr = self.log_thr_change[None, :, None] + self.c_logw[lo:hi, None, :]
            if batch:
                sw = -(G + delta * W)  # s W
                pc = (xc + 1.0) / (nc + 2.0)
                pp = (xp + 1.0) / (np_ + 2.0)
                wald_w2 = pc * (1 - pc) * Ac + pp * (1 - pp) * Ap  # V_wald W^2
                ok &= (sw > 0) & (sw * sw >= 2.0 * (thr - LOG2) * wald_w2)
            idx = np.nonzero(ok)
            if not idx[0].size:
                continue
            _, k, r = idx
            Wi, d = W[idx], self.delta[k, 0]
            v, _ = _variance(Wi, xc[idx], nc[idx], xp[idx], np_[idx], Ac[idx], Ap[idx], -d)
            log_e = np.full(ok.shape, -np.inf)
            log_e[idx] = log_e_value(-(G[idx] / Wi + d), v, tau[k, r])
            thr = np.broadcast_to(thr, ok.shape)
            over = log_e - thr
            fired |= (over >= 0).any(axis=0)
            arg = np.argmax(over, axis=0)[None]
            top = np.take_along_axis(over, arg, axis=0)[0]
            better = top > best_over
            if better.any():
                best_over = np.where(better, top, best_over)
                best = np.where(better, lo + arg[0], best)
                best_e = np.where(better, np.take_along_axis(log_e, arg, axis=0)[0], best_e)
                best_thr = np.where(better, np.take_along_axis(thr, arg, axis=0)[0], best_thr)
        return {"fired": fired, "best": best, "log_e": best_e, "log_thr": best_thr}

    def since(self, slot: int, k: int, run: int = 0) -> dict:
        """Per-arm sums of metric k since the start in `slot` (for the evidence)."""
        out = {name: float(getattr(self, name)[k, run] - self.cs[i, slot, k, run]) for i, name in enumerate(_SUMS)}
        out["at"] = float(self.c_at[slot, run])
        out["j"] = float(self.c_j[slot, run])
        return out

    # ------------------------------------------------------------------ evidence
    def _variance(self, boundary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Wald-or-null max variance of g_hat, the Wald one) over the whole rollout."""
        return _variance(self.W, self.xc, self.nc, self.xp, self.np_, self.Ac, self.Ap, boundary)

    def base_error(self) -> np.ndarray:
        """Production's observed (add-one smoothed) error rate on each metric's good scale."""
        return 1.0 - (self.xp + 1.0) / (self.np_ + 2.0)

    def margins(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(m, tau_R, tau_P) per metric and run; "auto" from production's observed error rate."""
        base_err = self.base_error()
        # auto: the canary may not double production's error rate e; floor 0.2 point.
        m_auto = np.maximum(0.002, base_err)
        shape = self.W.shape
        m = np.broadcast_to(np.where(np.isnan(self.margin_fixed), m_auto, self.margin_fixed), shape)
        tau_r = np.broadcast_to(
            np.where(np.isnan(self.tau_r_fixed), np.maximum(0.01, 2.0 * base_err), self.tau_r_fixed), shape
        )
        if self.config.step_margin == "exposure":
            factor = np.minimum(self.config.step_margin_cap, 1.0 / np.maximum(self.next_share, _EPS))
            m = m * np.where(self.final, 1.0, factor)[None, :]
        tau_p = np.broadcast_to(np.where(np.isnan(self.tau_p_fixed), m, self.tau_p_fixed), shape)
        return m, tau_r, tau_p

    def evaluate(self, at) -> dict:
        """Everything the decision rests on, as arrays: (K, B) per metric, (B,) per run."""
        # Long on purpose: the vectorised formulas of the design note, one after the other, each
        # reading the previous; helpers would pass a dozen arrays around.
        cfg = self.config
        g_hat = np.where(self.W > 0, self.G / np.where(self.W > 0, self.W, 1.0), 0.0)
        m, tau_r, tau_p = self.margins()
        var_r, wald = self._variance(-self.delta)
        var_p, _ = self._variance(-m)
        log_e_r = log_e_value(-(g_hat + self.delta), var_r, tau_r)
        log_e_p = log_e_value(g_hat + m, var_p, tau_p)
        burn = (self.nc >= cfg.burn_in) & (self.np_ >= cfg.burn_in) & (self.W > 0)
        thr_r = self.log_thr_rollback[:, None]
        thr_p = np.where(self.final, math.log(1 / cfg.alpha_promote), math.log(1 / cfg.alpha_step))
        from_start = burn & (log_e_r >= thr_r)
        base_err = self.base_error()
        tau_c = self.tau_change(base_err)
        if self.change_enabled:
            ch = self._change_scan(tau_c)
        else:
            none = np.full(self.W.shape, np.nan)
            ch = {
                "fired": np.zeros(self.W.shape, bool),
                "best": np.full(self.W.shape, -1),
                "log_e": none,
                "log_thr": none,
            }
        rollback_metric = from_start | ch["fired"]
        noninf = burn & (log_e_p >= thr_p[None, :])

        g = cfg.guards
        rho = self.stage_weight
        burst_bf = lindon_malek_log_bf(self.err_c, self.err_p, rho, g.error_burst.k)
        tot_err = self.err_c + self.err_p
        burst = (
            g.error_burst.enabled
            & (burst_bf >= guard_log_threshold(cfg, g.error_burst.alpha))
            & (self.err_c > rho * tot_err)
        )
        srm_bf = lindon_malek_log_bf(self.req_c, self.req_p, rho, g.sample_ratio.k)
        srm = g.sample_ratio.enabled & (srm_bf >= guard_log_threshold(cfg, g.sample_ratio.alpha))
        restarts = g.restarts.enabled & (self.restarts > g.restarts.max)

        age = at - self.stage_start
        dwell_ok = age >= cfg.min_dwell_s - _EPS
        over_max = (age > cfg.max_stage_s) if cfg.max_stage_s is not None else np.zeros(self.size, bool)
        rollback = rollback_metric.any(axis=0) | burst | srm | restarts
        gates_ok = (noninf | ~self.gate[:, None]).all(axis=0) & self.gate.any()
        ready = gates_ok & dwell_ok
        decision = np.full(self.size, CONTINUE)
        decision = np.where(over_max, INCONCLUSIVE, decision)
        decision = np.where(ready, np.where(self.final, PROMOTE, STEP_UP), decision)
        decision = np.where(rollback, ROLLBACK, decision)
        return {
            "g_hat": g_hat,
            "margin": m,
            "tau_rollback": tau_r,
            "tau_promote": tau_p,
            "var_rollback": var_r,
            "var_promote": var_p,
            "var_wald": wald,
            "log_e_rollback": log_e_r,
            "log_e_promote": log_e_p,
            "log_thr_rollback": np.broadcast_to(thr_r, self.W.shape),
            "log_thr_promote": thr_p,
            "burn_in_ok": burn,
            "rollback_metric": rollback_metric,
            "non_inferior": noninf,
            "rollback_from_start": from_start,
            "rollback_change": ch["fired"],
            "change_best": ch["best"],
            "log_e_change": ch["log_e"],
            "log_thr_change": ch["log_thr"],
            "tau_change": tau_c,
            "burst_log_bf": burst_bf,
            "burst": burst,
            "srm_log_bf": srm_bf,
            "srm": srm,
            "restarts": restarts,
            "age": age,
            "dwell_ok": dwell_ok,
            "over_max": over_max,
            "gates_ok": gates_ok,
            "rollback": rollback,
            "decision": decision,
        }


# ---------------------------------------------------------------------- the controller's view


def _f(x, digits: int = 6):
    """A JSON-friendly float (None for NaN or infinity)."""
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


_DETECTOR_WORDS = {"from_start": "from-start test", "change": "change detector"}
_GUARD_WORDS = {
    "error_burst": "guard: error burst",
    "sample_ratio": "guard: sample ratio",
    "restarts": "guard: restarts",
}
# How the change detector's words name the counts since a start, per kind: (what the canary's
# proportion is of, the unit).
_SINCE_WORDS = {
    "accuracy": ("", "labels"),
    "availability": (" succeeded", "requests"),
    "latency": (" within the SLO", "successful requests"),
}


def _ago(seconds: float) -> str:
    if seconds < 60:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 5400:
        return f"{max(1, round(seconds / 60)):.0f} min"
    return f"{seconds / 3600:.1f} h"


def _pct(p) -> str:
    return "n/a" if p is None else f"{100 * p:.1f} %"


def _mae(p, clip: float) -> str:
    """The clipped mean absolute error from the mean good p = 1 - MAE / clip."""
    return "n/a" if p is None else f"{clip * (1.0 - p):.4g}"


def _clip(mc: MetricConfig) -> float:
    """An mae metric's clip (the config requires one for mae)."""
    assert mc.clip is not None, mc.name
    return mc.clip


def _regression_values(mc: MetricConfig, pc, pp) -> str:
    """'share within 0.5 of the label: canary 71.2 %, production 80.3 %', or for mae 'clipped
    mean absolute error (errors clipped at 5): canary 0.812, production 0.64'."""
    what = describe(mc.kind, mc.tolerance, mc.clip)
    if mc.kind == "mae":
        return f"{what}: canary {_mae(pc, _clip(mc))}, production {_mae(pp, _clip(mc))}"
    return f"{what}: canary {_pct(pc)}, production {_pct(pp)}"


def _regression_margin(mc: MetricConfig, m: float) -> str:
    """What the margin means for a regression kind, in the label's unit for mae."""
    if mc.kind == "mae":
        return (
            f"margin {m:.4g} of clip: the canary's clipped mean absolute error may exceed production's by "
            f"at most {m * _clip(mc):.4g}"
        )
    return f"margin {100 * m:.4g} points of the share within {mc.tolerance:g} of the label"


def _change_words(name: str, kind: str, since: dict | None, at: float, mc: MetricConfig | None = None) -> str:
    """'accuracy turned worse on the canary about 4 min ago (since 14:02 UTC: canary 80.1 % on
    612 labels, production 90.3 %)': the clock time is the start's `at` read as epoch seconds.
    Regression kinds say what they measure: 'canary 48.7 % within 0.5 of the label on 612
    labelled predictions', or 'clipped mean absolute error canary 0.91 on 612 labelled
    predictions, production 0.63; errors clipped at 5'."""
    if not since:
        return f"{name} turned worse on the canary"
    start = since["at"]
    clock = time.strftime("%H:%M", time.gmtime(start))
    pc, pp, nc = since["p"]["canary"], since["p"]["production"], since["n"]["canary"] or 0.0
    head = f"{name} turned worse on the canary about {_ago(at - start)} ago (since {clock} UTC: "
    if kind == "mae" and mc is not None:
        return (
            head + f"clipped mean absolute error canary {_mae(pc, _clip(mc))} on {nc:,.0f} labelled predictions, "
            f"production {_mae(pp, _clip(mc))}; errors clipped at {mc.clip:g})"
        )
    if kind == "within_tolerance" and mc is not None:
        what, unit = f" within {mc.tolerance:g} of the label", "labelled predictions"
    else:
        what, unit = _SINCE_WORDS[kind]
    return head + f"canary {_pct(pc)}{what} on {nc:,.0f} {unit}, production {_pct(pp)})"


def _needed_weight(s: float, v_unit: float, tau: float, c: float, w_now: float) -> float:
    """Total MH weight at which the promotion e-value reaches c if the estimate and the variance
    per unit weight stay as they are now (inf if the estimate is not on the right side)."""
    if s <= 0 or not math.isfinite(v_unit) or v_unit <= 0:
        return math.inf
    lo, hi = max(w_now, 1.0), max(w_now, 1.0)
    while log_e_value(s, v_unit / hi, tau) < c:
        lo, hi = hi, hi * 2.0
        if hi > 1e12:
            return math.inf
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if log_e_value(s, v_unit / mid, tau) >= c:
            hi = mid
        else:
            lo = mid
    return hi


class SequentialAnalysis:
    """The Analysis protocol over one rollout. Build a new one per rollout (or call reset)."""

    def __init__(self, config: AnalysisConfig):
        self.config = config
        self.on_inconclusive = config.on_inconclusive
        self.engine = SequentialEngine(config, 1)
        self.stage_weight: float | None = None
        self.final = False

    def reset(self) -> None:
        self.engine.reset()
        self.stage_weight, self.final = None, False

    def start_stage(self, weight: float, at: float, final: bool) -> None:
        self.stage_weight = float(_share(weight))
        self.final = bool(final)
        self.engine.start_stage(weight, at, final)

    def observe(self, poll: Poll) -> None:
        if self.stage_weight is None:  # the controller forgot start_stage: use the poll's weight
            self.start_stage(poll.weight, poll.at, False)
        cols = self.engine.columns
        self.engine.observe(
            poll.at,
            to_row(poll.canary, cols),
            to_row(poll.production, cols),
            poll.weight,
            max(0, int(poll.canary_restarts)),
        )

    # ------------------------------------------------------------------ verdict
    def verdict(self, at: float) -> Verdict:
        eng, cfg = self.engine, self.config
        if self.stage_weight is None:
            return Verdict(Decision.CONTINUE, "No stage started yet: nothing to judge.")
        ev = eng.evaluate(at)
        metrics = [self._metric_evidence(k, ev, at) for k in range(len(eng.names))]
        guards = self._guard_evidence(ev)
        code = int(ev["decision"][0])
        decision = CODE_TO_DECISION[code]
        pct = f"{100 * self.stage_weight:g} %"
        age = float(ev["age"][0])
        detector = None
        if decision is Decision.ROLLBACK:
            fired = [(_GUARD_WORDS[g["name"]], g["name"], g["explanation"]) for g in guards if g["fired"]]
            fired += [(_DETECTOR_WORDS[m["detector"]], m["detector"], m["cause"]) for m in metrics if m["rollback"]]
            by = list(dict.fromkeys(words for words, _, _ in fired))
            detector = fired[0][1] if fired else None
            summary = f"Roll back ({', '.join(by)}): " + "; ".join(text for _, _, text in fired) + "."
        elif decision in (Decision.STEP_UP, Decision.PROMOTE):
            act = "promote" if decision is Decision.PROMOTE else "step up"
            gated = [m["name"] for m in metrics if m["promotion_gate"]]
            summary = f"All gates ({', '.join(gated)}) show non-inferiority after {_duration(age)} at {pct}: {act}."
        else:
            waiting = [m["explanation"] for m in metrics if m["promotion_gate"] and not m["non_inferior"]]
            if not waiting and not ev["dwell_ok"][0]:
                waiting = [f"all gates passed; minimum dwell, {_duration(cfg.min_dwell_s - age)} left"]
            if decision is Decision.INCONCLUSIVE:
                summary = (
                    f"Inconclusive: stage at {pct} ran {_duration(age)}, past max_stage_s "
                    f"({cfg.max_stage_s:g} s), without showing non-inferiority ("
                    + "; ".join(waiting)
                    + f"); policy: {cfg.on_inconclusive}."
                )
            else:
                summary = f"Holding at {pct}: " + "; ".join(waiting) + "."
        return Verdict(decision, summary, metrics, guards, detector)

    def _metric_evidence(self, k: int, ev: dict, at: float) -> dict:
        # Long on purpose: one metric's whole evidence record (estimates, bounds, e-values of every
        # test and the change detector) in the order the design note gives it; split, it scatters.
        eng, cfg = self.engine, self.config
        mc = cfg.metrics[k]
        pick = lambda key: float(ev[key][k, 0])  # noqa: E731
        g_hat, m, tau_r, tau_p = pick("g_hat"), pick("margin"), pick("tau_rollback"), pick("tau_promote")
        var_r, var_p = pick("var_rollback"), pick("var_promote")
        c_r, c_p = pick("log_thr_rollback"), float(ev["log_thr_promote"][0])
        nc, np_ = float(eng.nc[k, 0]), float(eng.np_[k, 0])
        xc, xp = float(eng.xc[k, 0]), float(eng.xp[k, 0])
        burn = bool(ev["burn_in_ok"][k, 0])
        upper = g_hat + evidence_radius(var_r, tau_r, c_r)
        lower = g_hat - evidence_radius(var_p, tau_p, c_p)
        rollback = bool(ev["rollback_metric"][k, 0])
        from_start, change = bool(ev["rollback_from_start"][k, 0]), bool(ev["rollback_change"][k, 0])
        detector = "from_start" if from_start else ("change" if change else None)
        noninf = bool(ev["non_inferior"][k, 0])
        log_e_r, log_e_p = pick("log_e_rollback"), pick("log_e_promote")
        unit = UNIT[mc.kind]
        name = mc.name
        slot = int(ev["change_best"][k, 0])
        since = self._since(slot, k) if slot >= 0 else None
        cause = None
        regression = mc.kind in REGRESSION_KINDS
        pc, pp = (xc / nc if nc > 0 else None), (xp / np_ if np_ > 0 else None)
        if detector == "from_start":
            values = f"{_regression_values(mc, pc, pp)}; " if regression else ""
            scale = " of clip" if mc.kind == "mae" else ""
            cause = text = (
                f"{name} is worse on the canary ({values}g = {g_hat:+.4f}{scale}, upper bound "
                f"{upper:+.4f} < {-mc.delta_rollback + 0.0:+g}; log e {log_e_r:.2f} >= {c_r:.2f})"
            )
        elif detector == "change":
            cause = _change_words(name, mc.kind, since, at, mc)
            text = cause + ": roll back"
        elif not burn:
            text = (
                f"{name} gate: burn-in, {cfg.burn_in} {unit.replace('canary ', '')} per arm needed "
                f"(canary {nc:.0f}, production {np_:.0f})"
            )
        elif noninf:
            text = (
                f"{name} gate: non-inferior within {m:.4g} (lower bound {lower:+.4f}; log e {log_e_p:.2f} >= {c_p:.2f})"
            )
        else:
            text = self._holding_words(k, g_hat, m, var_p, tau_p, c_p, at)
        if regression and detector is None and burn:
            text += f"; {_regression_values(mc, pc, pp)}; {_regression_margin(mc, m)}"
        alpha_r = mc.weight * eng.alpha_from_start
        alpha_p = cfg.alpha_promote if self.final else cfg.alpha_step
        return {
            "name": name,
            "kind": mc.kind,
            "promotion_gate": mc.promotion_gate,
            "n": {"canary": _f(nc, 3), "production": _f(np_, 3)},
            "p": {"canary": _f(xc / nc) if nc > 0 else None, "production": _f(xp / np_) if np_ > 0 else None},
            "g_hat": _f(g_hat),
            "margin": _f(m),
            "delta_rollback": _f(mc.delta_rollback),
            "tau_rollback": _f(tau_r),
            "tau_promote": _f(tau_p),
            "variance": {"rollback": _f(var_r, 12), "promote": _f(var_p, 12)},
            "bounds": {
                "lower": _f(lower),
                "upper": _f(upper),
                "kind": (
                    f"anytime-valid one-sided bounds on g from the normal-mixture e-process: "
                    f"lower at alpha {alpha_p:g} (tau {tau_p:.4g}), upper at alpha {alpha_r:.4g} "
                    f"(tau {tau_r:.4g})"
                ),
            },
            "log_e_rollback": _f(log_e_r),
            "log_e_promote": _f(log_e_p),
            "threshold_rollback": _f(c_r),
            "threshold_promote": _f(c_p),
            "alpha_rollback": _f(alpha_r),
            "alpha_promote": _f(alpha_p),
            "burn_in_ok": burn,
            "rollback": rollback,
            "non_inferior": noninf,
            # Which rollback detector fired (from_start wins when both did), and since when the
            # change detector's fired (or, if none fired, strongest) start-indexed test counts.
            "detector": detector,
            "change_since": since["at"] if since else None,
            "since": since,
            "change": {
                "enabled": eng.change_enabled,
                "fired": change,
                "log_e": _f(ev["log_e_change"][k, 0]),
                "threshold": _f(ev["log_thr_change"][k, 0]),
                "alpha": _f(mc.weight * eng.alpha_change),
                "tau": _f(ev["tau_change"][k, 0]),
                "starts": int(np.isfinite(eng.c_at[:, 0]).sum()) if eng.change_enabled else 0,
            },
            "rollback_from_start": from_start,
            "rollback_change": change,
            "explanation": text,
            "cause": cause,
            **({"regression": self._regression_evidence(mc, pc, pp, m)} if regression else {}),
        }

    @staticmethod
    def _regression_evidence(mc: MetricConfig, pc, pp, m: float) -> dict:
        """What a regression kind measures, per arm in its own terms: the share within tolerance,
        or the clipped MAE (clip x (1 - p)) with the margin in the label's unit."""
        out = {"measure": describe(mc.kind, mc.tolerance, mc.clip)}
        if mc.kind == "mae":
            mae = lambda p: None if p is None else _f(_clip(mc) * (1.0 - p))  # noqa: E731
            out.update(
                clip=mc.clip,
                clipped_mae={"canary": mae(pc), "production": mae(pp)},
                margin_error=_f(m * _clip(mc)),
                counted_as="each error at its histogram bucket's upper bound (never below the true error)",
            )
        else:
            out.update(
                tolerance=mc.tolerance,
                share_within={
                    "canary": _f(pc) if pc is not None else None,
                    "production": _f(pp) if pp is not None else None,
                },
            )
        return out

    def _since(self, slot: int, k: int) -> dict:
        """Per-arm counts and proportions of metric k since the change detector's start in slot."""
        d = self.engine.since(slot, k)
        nc, np_ = d["nc"], d["np_"]
        g = d["G"] / d["W"] if d["W"] > 0 else math.nan
        return {
            "at": _f(d["at"], 3),
            "start": int(d["j"]),
            "n": {"canary": _f(nc, 3), "production": _f(np_, 3)},
            "p": {"canary": _f(d["xc"] / nc) if nc > 0 else None, "production": _f(d["xp"] / np_) if np_ > 0 else None},
            "g_hat": _f(g),
        }

    def _holding_words(self, k, g_hat, m, var_p, tau_p, c_p, at) -> str:
        eng, mc = self.engine, self.config.metrics[k]
        name, unit = mc.name, UNIT[mc.kind]
        s = g_hat + m
        if s <= 0:
            return (
                f"{name} gate: the canary currently looks worse than the margin (g = {g_hat:+.4f} <= "
                f"-{m:.4g}); more data at this estimate will not show non-inferiority"
            )
        w_now, nc = float(eng.W[k, 0]), float(eng.nc[k, 0])
        need_w = _needed_weight(s, var_p * w_now, tau_p, c_p, w_now)
        span = at - float(eng.span_start[0]) if math.isfinite(float(eng.span_start[0])) else 0.0
        rate = float(eng.nc_stage[k, 0]) / span if span > 0 else 0.0
        if not math.isfinite(need_w):
            return f"{name} gate: non-inferiority is out of reach at the current estimate (g = {g_hat:+.4f})"
        more = max(1.0, (need_w - w_now) * nc / w_now)
        if rate <= 0:
            return f"{name} gate: about {more:,.0f} more {unit} needed; none arrived in this stage yet"
        secs = more / rate
        text = f"{name} gate: about {more:,.0f} more {unit} needed at the current rate (≈ {_duration(secs)})"
        if secs > 6 * 3600:
            text += (
                "; that is hours: widen the margin, raise the canary share or the label fraction, or "
                "set promotion_gate: false to keep it as a rollback monitor only"
            )
        return text

    def _guard_evidence(self, ev: dict) -> list[dict]:
        eng, g = self.engine, self.config.guards
        rho = float(eng.stage_weight[0])
        out = []
        for name, cfg, bf, fired, x_c, x_p, what in (
            ("error_burst", g.error_burst, ev["burst_log_bf"][0], ev["burst"][0], eng.err_c[0], eng.err_p[0], "errors"),
            ("sample_ratio", g.sample_ratio, ev["srm_log_bf"][0], ev["srm"][0], eng.req_c[0], eng.req_p[0], "requests"),
        ):
            thr = guard_log_threshold(self.config, cfg.alpha)
            tot = float(x_c + x_p)
            share = float(x_c) / tot if tot > 0 else None
            if fired and name == "error_burst":
                text = (
                    f"error burst on the canary: {x_c:.0f} of {tot:.0f} errors in this stage at a "
                    f"{100 * rho:g} % share (log BF {float(bf):.2f} >= {thr:.2f})"
                )
            elif fired:
                text = (
                    f"sample-ratio mismatch: canary got {100 * (share or 0):.2f} % of {tot:.0f} requests, "
                    f"configured {100 * rho:g} % (log BF {float(bf):.2f} >= {thr:.2f})"
                )
            else:
                text = f"{name}: quiet (log BF {float(bf):.2f} < {thr:.2f})" if cfg.enabled else f"{name}: disabled"
            out.append(
                {
                    "name": name,
                    "enabled": cfg.enabled,
                    "fired": bool(fired),
                    "log_bf": _f(bf),
                    "threshold": _f(thr),
                    "counts": {"canary": _f(x_c, 3), "production": _f(x_p, 3)},
                    "counted": what,
                    "canary_share_expected": _f(rho),
                    "canary_share_observed": _f(share) if share is not None else None,
                    "explanation": text,
                }
            )
        n_restarts = float(eng.restarts[0])
        fired = bool(ev["restarts"][0])
        out.append(
            {
                "name": "restarts",
                "enabled": g.restarts.enabled,
                "fired": fired,
                "count": int(n_restarts),
                "max": g.restarts.max,
                "explanation": (
                    f"canary restarted {n_restarts:.0f} times (max {g.restarts.max})"
                    if fired
                    else f"restarts: {n_restarts:.0f} (max {g.restarts.max})"
                ),
            }
        )
        return out
