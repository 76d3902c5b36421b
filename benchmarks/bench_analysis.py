"""Monte-Carlo benchmark of the rollout analysis: drives the real engines
(canary_controller.analysis.SequentialEngine / ThresholdEngine, the code behind the controller's
SequentialAnalysis / ThresholdAnalysis) with simulated counters, many rollouts at once.

Simulation: Poisson arrivals at 50 rps split by the canary weight, 15 s polls, Binomial outcomes;
errors are failed requests (no prediction); every successful request is labelled at once and
timed; "slow" requests are above the latency SLO bucket (0.1 s). Production: accuracy 0.90,
errors 0.5 %, 5 % slow, unless a figure says otherwise. Default analysis config (three metrics,
guards on) unless said otherwise. Times are from the rollout (or stage) start to the first poll
whose verdict is the event.

Figures (last line = JSON):
- rollback_90_to_50 / 90_to_80: canary accuracy 0.50 / 0.80 at a fixed 20 % weight.
- rollback_after_healthy_60min_90_to_80 / 90_to_50: late degradation. The canary at production's
  0.90 for 60 min at a fixed 20 %, then at 0.80 / 0.50; seconds from the change to the rollback
  (the change detector's figure). Runs that rolled back before the change (false rollbacks of
  the healthy hour) are counted (..._alarmed_before_change) and left out of the median. Extra:
  the same for canary errors 0.5 % -> 5 % and slow requests 5 % -> 10 % after the healthy hour.
- promote_healthy_median_s: healthy canary, rollout through the default steps 5, 10, 20, 50 %
  driven by the analysis' own STEP_UP / PROMOTE decisions, all three gates, min dwell 60 s; each
  step changes the canary share of the simulated traffic. max_stage_s is lifted (no
  INCONCLUSIVE) so the time to promotion is measured; the share of rollouts that would have hit
  the default 30 min stage limit is printed as promote_healthy_stage_over_30min_rate. A run that
  rolls back (a false rollback) counts as never promoted (infinite time) in the median.
- false_rollback_rate_12h: healthy canary held at 20 % for 12 h (the weight is never stepped,
  no max stage time): any ROLLBACK (the three metrics by either detector, from-start test or
  change detector, or a guard) counts; the printed line splits them by what fired first.
- false_promote_rate_at_margin: canary accuracy exactly 2 points below production (0.88 vs 0.90),
  only the accuracy metric configured (the worst case: other healthy gates can only block a
  promotion), held at 20 % as the final stage (alpha_promote) for 6 h, no max stage time; a poll
  where the analysis would PROMOTE counts. Rollback evidence (which rightly grows, the canary
  is worse) is ignored so the run keeps going: only the promotion event is measured.
- ramp_drift_false_rollback_rate: healthy canary, weight forced 5 -> 20 -> 50 % (20 min each)
  while both arms' accuracy drifts linearly 0.95 -> 0.85 over the hour; any ROLLBACK counts.
- seed_rule_*: the seed lab's rule in threshold mode (canary accuracy below 85 % after at least
  5 labelled canary requests, cumulative over the stage, checked at every poll; the latency and
  error checks are off so the accuracy rule is measured alone), at a fixed 20 % weight.

Run: python benchmarks/bench_analysis.py  [--runs N] [--runs-12h N]
(BENCH_QUICK=1: 200 runs per figure). runs_per_figure in the JSON says how many runs each
figure used (the 12 h figure may use fewer: --runs-12h, default min(runs, 5000)).

--regression: instead, the figures of the regression kinds (see run_regression):
a regression model whose absolute errors are lognormal (median 0.4, sigma 1; 59 % within 0.5, a
bucketed clipped MAE of 0.97 at clip 5), labels for every successful request, the example
metrics of analysis.yaml (within_half: within_tolerance at 0.5; mae: clip 5; availability;
latency; weights 1/4 each), errors 0.5 %, 5 % slow, as above.
- regression_false_rollback_rate_12h: healthy canary (the same error distribution) at 20 % for
  12 h, any ROLLBACK (every metric by either detector, or a guard); ..._by: what fired first.
- regression_false_promote_rate_at_margin_<kind>: the canary exactly at the margin of that
  kind (its lognormal errors scaled so the share within 0.5 is 2 points lower, or the bucketed
  clipped MAE 2 % of clip higher), only that metric configured, the final stage for 6 h.
- regression_rollback_errors_x1.5_median_s_<kind> (and p90): the canary's errors 1.5 x
  production's at 20 %, the example metrics: seconds to the first rollback by that kind's
  metric (its from-start test or change detector), and by anything (..._any).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np

from canary_controller.analysis import SequentialEngine, ThresholdEngine, load_config
from canary_controller.analysis.sequential import _EPS, PROMOTE, ROLLBACK, STEP_UP

POLL_S = 15.0
RPS = 50.0
BASE = {"acc": 0.90, "err": 0.005, "slow": 0.05}


def arm(rng, lam, acc, err, slow, runs):
    """(B, 6) increments for one arm over one poll: requests, errors, labelled, correct,
    latency_count, latency_fast."""
    req = rng.poisson(np.broadcast_to(lam * POLL_S, (runs,)))
    errors = rng.binomial(req, err)
    ok = req - errors
    correct = rng.binomial(ok, acc)
    fast = rng.binomial(ok, 1.0 - slow)
    return np.stack([req, errors, ok, correct, ok, fast], axis=1).astype(float)


def first_times(hit_at):
    """Summaries of first-event times (inf = never)."""
    t = np.asarray(hit_at)
    return {
        "median": float(np.median(t)),
        "p90": float(np.quantile(t, 0.9, method="higher")),
        "rate": float(np.isfinite(t).mean()),
    }


def run_fixed(cfg, runs, seed, hours, canary, weight=0.2, final=False, event="rollback", drift=None, schedule=None):
    """Fixed-weight (or forced-schedule) runs; returns first time of the event per run."""
    rng = np.random.default_rng(seed)
    eng = SequentialEngine(cfg, runs)
    polls = int(round(hours * 3600 / POLL_S))
    w = weight
    eng.start_stage(w, 0.0, final)
    hit = np.full(runs, np.inf)
    for i in range(1, polls + 1):
        at = i * POLL_S
        if schedule is not None:
            w_new = schedule(at - POLL_S)
            if w_new != w:
                w = w_new
                eng.start_stage(w, at - POLL_S, final)
        acc_p = BASE["acc"] if drift is None else drift(at)
        acc_c = canary.get("acc", BASE["acc"]) if drift is None else drift(at)
        c = arm(rng, RPS * w, acc_c, canary.get("err", BASE["err"]), canary.get("slow", BASE["slow"]), runs)
        p = arm(rng, RPS * (1 - w), acc_p, BASE["err"], BASE["slow"], runs)
        eng.observe(at, c, p, w)
        ev = eng.evaluate(at)
        flag = ev["rollback"] if event == "rollback" else (ev["gates_ok"] & ev["dwell_ok"])
        hit = np.where(flag & np.isinf(hit), at, hit)
        if np.isfinite(hit).all():
            break
    return hit


def run_late(cfg, runs, seed, healthy_s, canary, weight=0.2, after_s=1800.0):
    """The canary at production's level for healthy_s, then as `canary` says (the change falls on
    a poll boundary). Returns per run the seconds from the change to the first rollback (inf:
    none within after_s; <= 0: rolled back before the change)."""
    rng = np.random.default_rng(seed)
    eng = SequentialEngine(cfg, runs)
    eng.start_stage(weight, 0.0, False)
    hit = np.full(runs, np.inf)
    for i in range(1, int(round((healthy_s + after_s) / POLL_S)) + 1):
        at = i * POLL_S
        bad = at > healthy_s + _EPS
        get = lambda key: canary.get(key, BASE[key]) if bad else BASE[key]  # noqa: E731, B023 (used in this iteration)
        c = arm(rng, RPS * weight, get("acc"), get("err"), get("slow"), runs)
        p = arm(rng, RPS * (1 - weight), BASE["acc"], BASE["err"], BASE["slow"], runs)
        eng.observe(at, c, p, weight)
        hit = np.where(eng.evaluate(at)["rollback"] & np.isinf(hit), at, hit)
        if np.isfinite(hit).all():
            break
    return hit - healthy_s


def late_summary(delay):
    """Median / p90 of the delays of runs that were still running at the change."""
    after = delay[delay > 0]
    return {
        "median": float(np.median(after)) if after.size else math.inf,
        "p90": float(np.quantile(after, 0.9, method="higher")) if after.size else math.inf,
        "rate": float(np.isfinite(after).mean()) if after.size else 0.0,
        "alarmed_before_change": int((delay <= 0).sum()),
        "runs": int(delay.size),
    }


def run_false_rollbacks(cfg, runs, seed, hours, weight=0.2):
    """Healthy runs at a fixed weight; first rollback time per run and what fired first."""
    rng = np.random.default_rng(seed)
    eng = SequentialEngine(cfg, runs)
    eng.start_stage(weight, 0.0, False)
    hit = np.full(runs, np.inf)
    by = np.full(runs, "", dtype=object)
    for i in range(1, int(round(hours * 3600 / POLL_S)) + 1):
        at = i * POLL_S
        c = arm(rng, RPS * weight, BASE["acc"], BASE["err"], BASE["slow"], runs)
        p = arm(rng, RPS * (1 - weight), BASE["acc"], BASE["err"], BASE["slow"], runs)
        eng.observe(at, c, p, weight)
        ev = eng.evaluate(at)
        new = ev["rollback"] & np.isinf(hit)
        if new.any():
            guard = ev["burst"] | ev["srm"] | ev["restarts"]
            what = np.where(guard, "guard", np.where(ev["rollback_from_start"].any(axis=0), "from_start", "change"))
            by = np.where(new, what, by)
            hit = np.where(new, at, hit)
    counts = {k: int((by == k).sum()) for k in ("from_start", "change", "guard")}
    return hit, counts


def run_promotion(cfg, runs, seed, hours=4.0):
    """Rollouts through cfg.steps driven by the analysis' own decisions."""
    rng = np.random.default_rng(seed)
    eng = SequentialEngine(cfg, runs)
    steps = np.array(cfg.steps) / 100.0
    idx = np.zeros(runs, int)
    eng.start_stage(np.full(runs, steps[0]), 0.0, np.full(runs, len(steps) == 1))
    stage_start = np.zeros(runs)
    longest = np.zeros(runs)
    promoted = np.full(runs, np.inf)
    rolled = np.zeros(runs, bool)
    for i in range(1, int(hours * 3600 / POLL_S) + 1):
        at = i * POLL_S
        w = steps[idx]
        c = arm(rng, RPS * w, BASE["acc"], BASE["err"], BASE["slow"], runs)
        p = arm(rng, RPS * (1 - w), BASE["acc"], BASE["err"], BASE["slow"], runs)
        eng.observe(at, c, p, w)
        dec = eng.evaluate(at)["decision"]
        active = np.isinf(promoted) & ~rolled
        rolled |= active & (dec == ROLLBACK)
        done = active & (dec == PROMOTE)
        promoted = np.where(done, at, promoted)
        step = active & (dec == STEP_UP)
        longest = np.where(active & (step | done), np.maximum(longest, at - stage_start), longest)
        if step.any():
            idx = np.where(step, np.minimum(idx + 1, len(steps) - 1), idx)
            stage_start = np.where(step, at, stage_start)
            eng.start_stage(steps[idx], at, idx == len(steps) - 1, mask=step)
        if not (np.isinf(promoted) & ~rolled).any():
            break
    still = np.isinf(promoted) & ~rolled
    longest = np.where(still, np.inf, longest)
    return promoted, rolled, longest


def run_seed(cfg, runs, seed, hours, canary_acc, weight=0.2):
    rng = np.random.default_rng(seed)
    eng = ThresholdEngine(cfg, runs)
    eng.start_stage(weight, 0.0, False)
    hit = np.full(runs, np.inf)
    for i in range(1, int(round(hours * 3600 / POLL_S)) + 1):
        at = i * POLL_S
        c = arm(rng, RPS * weight, canary_acc, BASE["err"], BASE["slow"], runs)
        eng.observe(at, c)
        dec = eng.evaluate(at)["decision"]
        hit = np.where((dec == ROLLBACK) & np.isinf(hit), at, hit)
        if np.isfinite(hit).all():
            break
    return hit


# ------------------------------------------------------------------ regression kinds (--regression)

REG_TOL, REG_CLIP = 0.5, 5.0
REG_METRICS = [
    {"name": "within_half", "kind": "within_tolerance", "tolerance": REG_TOL},
    {"name": "mae", "kind": "mae", "clip": REG_CLIP},
    {"name": "availability", "kind": "availability"},
    {"name": "latency", "kind": "latency"},
]


def abs_error_masses(scale=1.0, sigma=1.0, median=0.4):
    """Probabilities of the abs-error histogram's buckets (+Inf last) for lognormal errors."""
    from scipy import stats

    from canary_common.regression import ABS_ERROR_BUCKETS

    b = np.array(ABS_ERROR_BUCKETS[:-1])
    cdf = np.append(stats.lognorm(sigma, scale=median * scale).cdf(b), 1.0)
    return np.diff(cdf, prepend=0.0)


def reg_measures(pm):
    """(share within REG_TOL, bucketed clipped MAE in units of REG_CLIP) of bucket masses pm."""
    from canary_common.regression import ABS_ERROR_BUCKETS, bound_index

    b = np.array(ABS_ERROR_BUCKETS)
    return float(pm[: bound_index(REG_TOL) + 1].sum()), float(pm @ (np.minimum(b, REG_CLIP) / REG_CLIP))


def reg_arm(rng, lam, err, slow, pm, runs):
    """(B, 29) increments of one arm over one poll: the six FIELDS (every successful request
    labelled; `correct` unused), then the cumulative abs-error bucket counts of the labelled."""
    req = rng.poisson(np.broadcast_to(lam * POLL_S, (runs,)))
    errors = rng.binomial(req, err)
    ok = req - errors
    fast = rng.binomial(ok, 1.0 - slow)
    cum = np.cumsum(rng.multinomial(ok, pm), axis=1)
    return np.hstack([np.stack([req, errors, ok, np.zeros(runs), ok, fast], axis=1), cum]).astype(float)


def run_reg(cfg, runs, seed, hours, pm_c, weight=0.2, final=False, event="rollback"):
    """Fixed-weight runs of a regression model; production's errors abs_error_masses(). Returns
    the first time per run of: any rollback, each metric's rollback (K, B), each metric's
    non-inferiority (K, B); and what fired first (guard, or the metric's name)."""
    rng = np.random.default_rng(seed)
    eng = SequentialEngine(cfg, runs)
    eng.start_stage(weight, 0.0, final)
    pm_p = abs_error_masses()
    K = len(cfg.metrics)
    names = np.array([m.name for m in cfg.metrics], dtype=object)
    regression = [k for k, m in enumerate(cfg.metrics) if m.kind in ("within_tolerance", "mae")]
    hit = np.full(runs, np.inf)
    by = np.full(runs, "", dtype=object)
    per_metric, noninf = np.full((K, runs), np.inf), np.full((K, runs), np.inf)
    for i in range(1, int(round(hours * 3600 / POLL_S)) + 1):
        at = i * POLL_S
        c = reg_arm(rng, RPS * weight, BASE["err"], BASE["slow"], pm_c, runs)
        p = reg_arm(rng, RPS * (1 - weight), BASE["err"], BASE["slow"], pm_p, runs)
        eng.observe(at, c, p, weight)
        ev = eng.evaluate(at)
        new = ev["rollback"] & np.isinf(hit)
        if new.any():
            guard = ev["burst"] | ev["srm"] | ev["restarts"]
            first_metric = names[np.argmax(ev["rollback_metric"], axis=0)]
            by = np.where(new, np.where(guard, "guard", first_metric), by)
            hit = np.where(new, at, hit)
        per_metric = np.where(ev["rollback_metric"] & np.isinf(per_metric), at, per_metric)
        noninf = np.where(ev["non_inferior"] & np.isinf(noninf), at, noninf)
        if event == "rollback" and np.isfinite(per_metric[regression]).all() and np.isfinite(hit).all():
            break
        if event == "promote" and np.isfinite(noninf).all():
            break
    return hit, per_metric, noninf, by


def run_regression(args) -> None:
    """The --regression figures (see the module docstring); the last line printed is the JSON."""
    from scipy import optimize

    n, seed = args.runs, args.seed
    n12 = args.runs_12h or min(n, 5000)
    cfg = load_config({"max_stage_s": None, "metrics": REG_METRICS})
    out, t0 = {}, time.time()

    def note(name, value):
        print(f"{name}: {value}  [{time.time() - t0:.0f} s]", flush=True)

    pm = abs_error_masses()
    within, u = reg_measures(pm)
    from scipy import integrate, stats

    dist = stats.lognorm(1.0, scale=0.4)
    true_mae = integrate.quad(lambda x: min(x, REG_CLIP) * dist.pdf(x), 0, np.inf, limit=200)[0]
    out["regression_production"] = {
        "share_within_0.5": round(within, 4),
        "clipped_mae_clip_5": round(REG_CLIP * u, 4),
        "true_clipped_mae": round(true_mae, 4),
    }
    note("production errors", out["regression_production"])

    hit, _, _, by = run_reg(cfg, n12, seed + 21, 12.0, pm, event="none")
    out["regression_false_rollback_rate_12h"] = float(np.isfinite(hit).mean())
    out["regression_false_rollback_12h_by"] = {
        k: int((by == k).sum()) for k in [m["name"] for m in REG_METRICS] + ["guard"]
    }
    note(
        "regression: false rollback 12 h (by what fired first)",
        {"rate": out["regression_false_rollback_rate_12h"], "by": out["regression_false_rollback_12h_by"], "runs": n12},
    )

    m = 0.02
    for k, (kind, metric) in enumerate((("within_tolerance", REG_METRICS[0]), ("mae", REG_METRICS[1]))):
        target = (within - m) if kind == "within_tolerance" else (u + m)

        # The root is found within this iteration, so the closure's k and target are the right ones.
        def gap(s, k=k, target=target):
            return reg_measures(abs_error_masses(s))[k] - target

        scale = optimize.brentq(gap, 0.5, 3.0, xtol=1e-12)
        single = load_config({"max_stage_s": None, "metrics": [metric], "change_detection": {"enabled": False}})
        _, _, noninf, _ = run_reg(single, n, seed + 22 + k, 6.0, abs_error_masses(scale), final=True, event="promote")
        out[f"regression_false_promote_rate_at_margin_{kind}"] = float(np.isfinite(noninf[0]).mean())
        note(
            f"regression: false promotion at the margin, {kind} (canary errors x {scale:.4f})",
            out[f"regression_false_promote_rate_at_margin_{kind}"],
        )

    hit, per_metric, _, _ = run_reg(cfg, n, seed + 24, 0.5, abs_error_masses(1.5))
    for k, kind in ((0, "within_tolerance"), (1, "mae")):
        t = first_times(per_metric[k])
        out[f"regression_rollback_errors_x1.5_median_s_{kind}"] = t["median"]
        out[f"regression_rollback_errors_x1.5_p90_s_{kind}"] = t["p90"]
        note(f"regression: rollback, errors x 1.5, by {kind}", t)
    t = first_times(hit)
    out["regression_rollback_errors_x1.5_median_s_any"] = t["median"]
    note("regression: rollback, errors x 1.5, by anything", t)

    print_json(out, n, n12, t0)


def print_json(out: dict, n: int, n12: int, t0: float) -> None:
    """The last line of every run: the figures, with never-happened (infinite) times as null."""
    out.update(runs_per_figure=n, runs_false_rollback_12h=n12, elapsed_s=round(time.time() - t0))
    print(json.dumps({k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in out.items()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=200 if os.environ.get("BENCH_QUICK") else 5000)
    ap.add_argument(
        "--runs-12h", type=int, default=None, help="runs of the 12 h figure (default: --runs, at most 5000)"
    )
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument(
        "--regression",
        action="store_true",
        help="the regression kinds' figures instead "
        "(within_tolerance, mae: false rollback over 12 h, false promotion at the margin, "
        "rollback time for errors x 1.5)",
    )
    args = ap.parse_args()
    if args.regression:
        run_regression(args)
        return
    n, seed = args.runs, args.seed
    n12 = args.runs_12h or min(n, 5000)
    no_limit = load_config({"max_stage_s": None})
    acc_only = load_config(
        {
            "max_stage_s": None,
            "metrics": [{"name": "accuracy", "kind": "accuracy"}],
            "change_detection": {"enabled": False},
        }
    )
    seed_cfg = load_config(
        {
            "mode": "threshold",
            "max_stage_s": None,
            "threshold": {
                "accuracy_threshold": 85,
                "min_samples": 5,
                "window_s": None,
                "latency_threshold_ms": None,
                "error_threshold_pct": None,
            },
        }
    )
    out, t0 = {}, time.time()

    def note(name, value):
        print(f"{name}: {value}  [{time.time() - t0:.0f} s]", flush=True)

    r50 = first_times(run_fixed(no_limit, n, seed + 1, 0.5, {"acc": 0.50}))
    out["rollback_90_to_50_median_s"] = r50["median"]
    note("rollback 90->50", r50)
    r80 = first_times(run_fixed(no_limit, n, seed + 2, 0.5, {"acc": 0.80}))
    out["rollback_90_to_80_median_s"] = r80["median"]
    out["rollback_90_to_80_p90_s"] = r80["p90"]
    note("rollback 90->80", r80)
    for key, canary, sd in (("90_to_80", {"acc": 0.80}, 12), ("90_to_50", {"acc": 0.50}, 13)):
        late = late_summary(run_late(no_limit, n, seed + sd, 3600.0, canary))
        out[f"rollback_after_healthy_60min_{key}_median_s"] = late["median"]
        out[f"rollback_after_healthy_60min_{key}_p90_s"] = late["p90"]
        out[f"rollback_after_healthy_60min_{key}_alarmed_before_change"] = late["alarmed_before_change"]
        note(f"rollback after 60 healthy min, {key.replace('_to_', '->')}", late)
    for key, canary, sd in (("errors 0.5 %->5 %", {"err": 0.05}, 14), ("slow 5 %->10 %", {"slow": 0.10}, 15)):
        note(
            f"rollback after 60 healthy min, {key} (extra)",
            late_summary(run_late(no_limit, n, seed + sd, 3600.0, canary)),
        )
    e5 = first_times(
        run_fixed(
            no_limit,
            n,
            seed + 3,
            0.5,
            {"err": 0.05},
        )
    )
    note("rollback errors 0.5 %->5 % (extra)", e5)
    s10 = first_times(run_fixed(no_limit, n, seed + 4, 0.5, {"slow": 0.10}))
    note("rollback slow 5 %->10 % (extra)", s10)

    promoted, rolled, longest = run_promotion(no_limit, n, seed + 5)
    out["promote_healthy_median_s"] = float(np.median(promoted))
    note(
        "promote healthy (5,10,20,50)",
        {
            "median": float(np.median(promoted)),
            "p90": float(np.quantile(promoted, 0.9, method="higher")),
            "promoted_within_4h": float(np.isfinite(promoted).mean()),
            "rolled_back": float(rolled.mean()),
        },
    )
    out["promote_healthy_stage_over_30min_rate"] = float((longest > 1800).mean())
    note("promote healthy: a stage over 30 min", out["promote_healthy_stage_over_30min_rate"])

    # Extra: the same rollout with availability and latency kept as rollback monitors only.
    monitors = load_config(
        {
            "max_stage_s": None,
            "metrics": [
                {"name": "accuracy", "kind": "accuracy"},
                {"name": "availability", "kind": "availability", "promotion_gate": False},
                {"name": "latency", "kind": "latency", "promotion_gate": False},
            ],
        }
    )
    promoted_acc, _, _ = run_promotion(monitors, n, seed + 11)
    out["promote_healthy_accuracy_gate_only_median_s"] = float(np.median(promoted_acc))
    note("promote healthy, accuracy gate only (extra)", out["promote_healthy_accuracy_gate_only_median_s"])

    hit12, by = run_false_rollbacks(no_limit, n12, seed + 6, 12.0)
    fr = first_times(hit12)
    out["false_rollback_rate_12h"] = fr["rate"]
    out["false_rollback_12h_by"] = by
    note("false rollback 12 h (all detectors and guards; by what fired first)", {**fr, "by": by, "runs": n12})

    fp = first_times(run_fixed(acc_only, n, seed + 7, 6.0, {"acc": 0.88}, final=True, event="promote"))
    out["false_promote_rate_at_margin"] = fp["rate"]
    note("false promotion at margin", fp)

    def ramp(at):
        return 0.05 if at < 1200 else (0.20 if at < 2400 else 0.50)

    def drift(at):
        return 0.95 - 0.10 * min(at, 3600.0) / 3600.0

    rd = first_times(run_fixed(no_limit, n, seed + 8, 1.0, {}, weight=0.05, drift=drift, schedule=ramp))
    out["ramp_drift_false_rollback_rate"] = rd["rate"]
    note("ramp drift false rollback", rd)

    sr = first_times(run_seed(seed_cfg, n, seed + 9, 0.5, 0.80))
    out["seed_rule_rollback_90_to_80_median_s"] = sr["median"]
    note("seed rule 90->80", sr)
    sf = first_times(run_seed(seed_cfg, n, seed + 10, 12.0, 0.90))
    out["seed_rule_false_rollback_rate_12h"] = sf["rate"]
    note("seed rule false rollback 12 h", sf)

    print_json(out, n, n12, t0)


if __name__ == "__main__":
    main()
