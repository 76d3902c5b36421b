"""Regression metric kinds: within_tolerance and mae from the router's
absolute-error histogram. The contract constants, the coefficients, the columns, the words; and
empirically, with fixed seeds, the error rates the method claims: errors drawn from skewed
bounded, exponential, lognormal and mixed distributions (clipped at `clip`), 50 rps at a 20 %
canary, 15 s polls, every prediction labelled, a few hundred runs of several hours each."""

import calendar
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import optimize, stats

from canary_common.regression import (
    ABS_ERROR_BUCKET_SERIES,
    ABS_ERROR_BUCKETS,
    ABS_ERROR_METRIC,
    bound_index,
    dense_counts,
    mae_coefficients,
    within_coefficients,
)
from canary_controller.analysis import (
    ArmIncrement,
    ConfigError,
    Decision,
    Poll,
    SequentialAnalysis,
    SequentialEngine,
    build_analysis,
    load_config,
)
from canary_controller.analysis.arms import ABS_ERROR_FIELDS, FIELDS, columns_for, metric_matrices, to_row
from canary_controller.analysis.config import DEFAULT_COUNTERS

CONTROLLER = Path(__file__).resolve().parents[2] / "controller"
BOUNDS = np.array(ABS_ERROR_BUCKETS)
TOL, CLIP = 0.5, 5.0
WITHIN = {"name": "within_half", "kind": "within_tolerance", "tolerance": TOL}
MAE = {"name": "mae", "kind": "mae", "clip": CLIP}
POLL_S, RPS, WEIGHT = 15.0, 50.0, 0.2


# ---------------------------------------------------------------- error distributions


class Mixture:
    """0.85 small Gaussian residuals (|N(0, 0.3 s)|) + 0.15 heavy lognormal outliers (median 2 s)."""

    def __init__(self, s=1.0):
        self.parts = ((0.85, stats.halfnorm(scale=0.3 * s)), (0.15, stats.lognorm(1.2, scale=2.0 * s)))

    def cdf(self, x):
        return sum(w * d.cdf(x) for w, d in self.parts)


FAMILIES = {
    "exponential": lambda s=1.0: stats.expon(scale=0.5 * s),
    "lognormal": lambda s=1.0: stats.lognorm(1.0, scale=0.4 * s),
    "mixture": Mixture,
    "bounded_skewed": lambda s=1.0: stats.beta(0.6, 4.0, scale=5.0 * s),  # in [0, 5 s], mode at 0
}


def masses(dist) -> np.ndarray:
    """Probability of each histogram bucket (+Inf last)."""
    cdf = np.append(np.clip(dist.cdf(BOUNDS[:-1]), 0, 1), 1.0)
    return np.diff(cdf, prepend=0.0)


def mean_u(m, clip=CLIP) -> float:
    """E[min(bucket upper bound, clip) / clip]: the bucketed clipped MAE in units of clip."""
    return float(m @ (np.minimum(BOUNDS, clip) / clip))


def share_within(m, tol=TOL) -> float:
    return float(m[: bound_index(tol) + 1].sum())


def scale_for(family, target, measure) -> float:
    """The scale s at which measure(masses(family(s))) == target (measures are monotone in s)."""
    return optimize.brentq(lambda s: measure(masses(FAMILIES[family](s))) - target, 0.2, 5.0, xtol=1e-12)


def rows(rng, lam, pm) -> np.ndarray:
    """(B, 29) increments of one arm over one poll: Poisson(lam * 15 s) labelled predictions
    with abs errors in the buckets with probabilities pm (B, 23); no errors, all fast."""
    pm = np.atleast_2d(pm)
    n = rng.poisson(lam * POLL_S, pm.shape[0])
    cum = np.cumsum(rng.multinomial(n, pm), axis=1)
    scal = np.stack([n, np.zeros_like(n), n, np.zeros_like(n), n, n], axis=1)
    return np.hstack([scal, cum]).astype(float)


def simulate(cfg, pm_c, pm_p, hours, seed, final=False, stop_on_rollback=False):
    """Batch runs at a fixed 20 % weight. Returns (first rollback time per metric and run (K, B),
    first time each metric is non-inferior (K, B)); inf: never."""
    rng = np.random.default_rng(seed)
    runs = pm_c.shape[0]
    eng = SequentialEngine(cfg, runs)
    eng.start_stage(WEIGHT, 0.0, final)
    K = len(cfg.metrics)
    rolled, noninf = np.full((K, runs), np.inf), np.full((K, runs), np.inf)
    for i in range(1, int(round(hours * 3600 / POLL_S)) + 1):
        at = i * POLL_S
        eng.observe(at, rows(rng, RPS * WEIGHT, pm_c), rows(rng, RPS * (1 - WEIGHT), pm_p), WEIGHT)
        ev = eng.evaluate(at)
        rolled = np.where(ev["rollback_metric"] & np.isinf(rolled), at, rolled)
        noninf = np.where(ev["non_inferior"] & np.isinf(noninf), at, noninf)
        if stop_on_rollback and np.isfinite(rolled).any(axis=0).all():
            break
    return rolled, noninf


def within_alpha(rate, alpha, runs):
    return rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)


def stacked(*pms, runs):
    """Per-run bucket probabilities: `runs` rows of each pm in turn."""
    return np.vstack([np.tile(pm, (runs, 1)) for pm in pms])


# ---------------------------------------------------------------- contract and arithmetic


def test_contract_constants():
    assert ABS_ERROR_METRIC == "canary_router_prediction_abs_error"
    assert ABS_ERROR_BUCKET_SERIES == "canary_router_prediction_abs_error_bucket"
    assert ABS_ERROR_BUCKETS == (
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1,
        2.5,
        5,
        10,
        25,
        50,
        100,
        250,
        500,
        1000,
        2500,
        5000,
        10000,
        math.inf,
    )
    ratios = BOUNDS[1:-1] / BOUNDS[:-2]
    assert ratios.max() <= 2.5  # the bucketed error is within 2.5 x the true one (above 0.001)
    assert bound_index(0.5) == 8 and bound_index(1e-3) == 0 and bound_index(math.inf) == 22
    assert bound_index(0.3) is None and bound_index(float("0.0025")) == 1


def test_coefficients_match_per_prediction_arithmetic():
    rng = np.random.default_rng(1)
    errors = np.concatenate([rng.lognormal(-1, 1.5, 500), [0.0, 0.001, 5.0, 7.0, 1e5]])
    cum = np.array([(errors <= b).sum() for b in BOUNDS], float)
    ub = BOUNDS[np.searchsorted(BOUNDS, errors)]  # each error's bucket upper bound
    for clip in (0.5, 5.0, 10000.0):
        good, total = map(np.array, mae_coefficients(clip))
        u = np.minimum(ub, clip) / clip
        assert good @ cum == pytest.approx(len(errors) - u.sum())
        assert total @ cum == len(errors)
        assert (good >= 0).all()
        # Conservative: never above the true clipped good, at most 2.5 x the clipped error (+0.001).
        true_u = np.minimum(errors, clip) / clip
        assert (u >= true_u).all() and (u <= 2.5 * true_u + 0.001 / clip + 1e-12).all()
    good, total = map(np.array, within_coefficients(0.5))
    assert good @ cum == (errors <= 0.5).sum() and total @ cum == len(errors)
    with pytest.raises(ValueError):
        mae_coefficients(0.3)


def test_columns_and_rows():
    default = load_config(None)
    assert columns_for(default.metrics) == FIELDS  # the rate kinds keep their (B, 6) arrays
    cfg = load_config({"metrics": [WITHIN, MAE, {"kind": "availability"}]})
    assert columns_for(cfg.metrics) == FIELDS + ABS_ERROR_FIELDS and len(ABS_ERROR_FIELDS) == 23
    good, total = metric_matrices(cfg.metrics)
    assert good.shape == total.shape == (29, 3)
    assert total[FIELDS.index("requests"), 2] == 1 and good[FIELDS.index("errors"), 2] == -1
    # Sparse increments as the controller sends them (zero increments dropped, le spelled
    # "1.0" or "1"), a stray bound ignored, inversions repaired.
    arm = ArmIncrement(
        requests=10, labelled=10, abs_error_buckets=((0.25, 2.0), (0.5, 5.0), (1.0, 4.0), (0.3, 99.0), (math.inf, 10.0))
    )
    row = to_row(arm, columns_for(cfg.metrics))
    assert row.shape == (1, 29)
    dense = row[0, 6:]
    assert dense[bound_index(0.1)] == 0 and dense[bound_index(0.25)] == 2 and dense[bound_index(0.5)] == 5
    assert dense[bound_index(1.0)] == 5 and dense[bound_index(2.5)] == 5 and dense[-1] == 10
    assert dense_counts(()) == [0.0] * 23
    summed = arm + ArmIncrement(abs_error_buckets=((0.5, 1.0), (math.inf, 1.0)))
    assert dict(summed.abs_error_buckets)[0.5] == 6.0 and dict(summed.abs_error_buckets)[math.inf] == 11.0


def test_engine_refuses_the_wrong_layout():
    eng = SequentialEngine(load_config({"metrics": [MAE]}), 2)
    eng.start_stage(0.2, 0.0, False)
    with pytest.raises(ValueError, match="increments need 29 columns"):
        eng.observe(15.0, np.zeros((2, 6)), np.zeros((2, 6)), 0.2)


def test_batch_matches_single_runs():
    cfg = load_config({"metrics": [WITHIN, MAE, {"kind": "availability"}], "max_stage_s": None})
    rng = np.random.default_rng(4)
    pm = np.vstack([masses(FAMILIES["lognormal"](s)) for s in (1.0, 1.5, 1.1)])
    eng = SequentialEngine(cfg, 3)
    singles = [SequentialAnalysis(cfg) for _ in range(3)]
    eng.start_stage(0.2, 0.0, False)
    for s in singles:
        s.start_stage(0.2, 0.0, False)
    for i in range(1, 30):
        c, p = rows(rng, 10.0, pm), rows(rng, 40.0, np.tile(pm[0], (3, 1)))
        eng.observe(i * 15.0, c, p, 0.2)
        batch = eng.evaluate(i * 15.0)
        for r, s in enumerate(singles):

            def inc(row):
                return ArmIncrement(*row[:6], abs_error_buckets=tuple(zip(ABS_ERROR_BUCKETS, row[6:])))

            s.observe(Poll(i * 15.0, inc(c[r]), inc(p[r]), 0.2))
            v = s.verdict(i * 15.0)
            assert (
                v.decision.value
                == {0: "continue", 1: "step_up", 2: "promote", 3: "rollback", 4: "inconclusive"}[
                    int(batch["decision"][r])
                ]
            )
            assert [m["g_hat"] for m in v.metrics] == pytest.approx(batch["g_hat"][:, r], abs=1e-6)


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            {"metrics": [{"kind": "within_tolerance"}]},
            "metrics[0].tolerance: required for kind within_tolerance (the absolute error at or under which a prediction "
            "counts as within tolerance): one of the bucket bounds of canary_router_prediction_abs_error: 0.001, 0.0025, "
            "0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000",
        ),
        (
            {"metrics": [{"kind": "within_tolerance", "tolerance": 0.3}]},
            "metrics[0].tolerance: must be one of the bucket bounds of canary_router_prediction_abs_error (so the count "
            "is exact): 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, "
            "1000, 2500, 5000, 10000; got 0.3",
        ),
        ({"metrics": [{"kind": "accuracy"}, {"kind": "mae"}]}, "metrics[1].clip: required for kind mae"),
        ({"metrics": [{"kind": "mae", "clip": 0}]}, "metrics[0].clip: must be > 0 and one of the bucket bounds"),
        (
            {"metrics": [{"kind": "mae", "clip": 7}]},
            "metrics[0].clip: must be one of the bucket bounds of "
            "canary_router_prediction_abs_error (so the count is exact)",
        ),
        ({"metrics": [{"kind": "mae", "clip": ".inf"}]}, "metrics[0].clip: must be a number"),
        ({"metrics": [{"kind": "mae", "clip": float("inf")}]}, "metrics[0].clip: must be a number"),
        (
            {"metrics": [{"kind": "mae", "clip": 5, "tolerance": 0.5}]},
            "metrics[0].tolerance: only for kind within_tolerance, not mae",
        ),
        ({"metrics": [{"kind": "accuracy", "clip": 5}]}, "metrics[0].clip: only for kind mae, not accuracy"),
        (
            {"metrics": [{"kind": "mae", "clip": 5, "margin": "auto"}]},
            'metrics[0].margin: "auto" is only for availability',
        ),
        ({"metrics": [{"kind": "mae", "clip": 5, "margin": 1.5}]}, "metrics[0].margin: must be < 1"),
        (
            {"metrics": [{"kind": "regression"}]},
            "metrics[0].kind: must be one of accuracy, availability, latency, within_tolerance, mae",
        ),
        (
            {"mode": "threshold", "metrics": [{"kind": "accuracy"}, {"kind": "within_tolerance", "tolerance": 0.5}]},
            "metrics[1].kind: within_tolerance is a regression metric of the sequential analysis; mode: threshold (the "
            "seed lab's fixed thresholds on accuracy, p95 latency and errors) ignores the metrics list and has no "
            "regression check: use mode: sequential",
        ),
        ({"counters": {"abs_error_buckets": ""}}, "counters.abs_error_buckets: must be a non-empty PromQL selector"),
    ],
)
def test_regression_errors_name_the_field(raw, message):
    with pytest.raises(ConfigError) as err:
        load_config(raw)
    assert message in str(err.value)


def test_regression_fields_load_and_the_histogram_is_read_only_when_needed():
    cfg = load_config({"metrics": [dict(WITHIN, tolerance=1), dict(MAE, margin=0.05)]})
    w, m = cfg.metrics
    assert (w.kind, w.tolerance, w.clip, w.margin, w.tau_rollback, w.tau_promote, w.tau_change) == (
        "within_tolerance",
        1.0,
        None,
        0.02,
        0.05,
        0.02,
        0.1,
    )
    assert (m.kind, m.clip, m.tolerance, m.margin) == ("mae", 5.0, None, 0.05)
    assert cfg.counters == {**DEFAULT_COUNTERS, "abs_error_buckets": "canary_router_prediction_abs_error_bucket"}
    assert "abs_error_buckets" not in load_config(None).counters  # classification: never queried
    custom = load_config({"metrics": [MAE], "counters": {"abs_error_buckets": 'my_abs_error_bucket{job="r"}'}})
    assert custom.counters["abs_error_buckets"] == 'my_abs_error_bucket{job="r"}'
    assert isinstance(build_analysis(cfg), SequentialAnalysis)


def test_reference_file_example_block_loads():
    """analysis.yaml carries a commented-out regression example; uncommented, it is valid."""
    text = (CONTROLLER / "analysis.yaml").read_text()
    start = text.index("# metrics:\n#   - name: within_half")
    block = []
    for line in text[start:].splitlines():
        if not line.startswith("#"):
            break
        block.append(line[2:])
    cfg = load_config({"metrics": yaml.safe_load("\n".join(block))["metrics"]})
    assert [(m.kind, m.tolerance, m.clip) for m in cfg.metrics] == [
        ("within_tolerance", 0.5, None),
        ("mae", None, 5.0),
        ("availability", None, None),
        ("latency", None, None),
    ]
    assert "# abs_error_buckets: canary_router_prediction_abs_error_bucket" in text
    assert load_config(CONTROLLER / "analysis.yaml") == load_config(None)  # the defaults are unchanged


# ---------------------------------------------------------------- error rates (Monte Carlo)


def test_false_rollback_under_equal_error_distributions():
    """Canary and production draw errors from the same distribution (four shapes, 300 runs each,
    4 h): both metrics, both detectors (from-start and change), default alphas (0.025 each)."""
    cfg = load_config({"metrics": [WITHIN, MAE], "max_stage_s": None})
    runs = 300
    pm = stacked(*(masses(f()) for f in FAMILIES.values()), runs=runs)
    rolled, _ = simulate(cfg, pm, pm, 4.0, seed=101)
    fired = np.isfinite(rolled)
    for k, name in enumerate(("within_tolerance", "mae")):
        for g in range(len(FAMILIES)):
            rate = fired[k, g * runs : (g + 1) * runs].mean()
            assert within_alpha(rate, 0.025, runs), (name, list(FAMILIES)[g], rate)
    for g in range(len(FAMILIES)):
        assert within_alpha(fired[:, g * runs : (g + 1) * runs].any(axis=0).mean(), 0.05, runs)
    assert within_alpha(fired.any(axis=0).mean(), 0.05, fired.shape[1])


@pytest.mark.parametrize("metric, measure", [(MAE, mean_u), (WITHIN, share_within)])
def test_false_rollback_at_the_boundary_with_different_shapes(metric, measure):
    """H0_R's boundary g = 0 reached by different distributions with the same mean good (so
    different variances): production lognormal or mixed, the canary exponential or bounded
    skewed, scaled to the same bucketed clipped MAE (or share within tolerance)."""
    cfg = load_config({"metrics": [metric], "max_stage_s": None})
    runs = 300
    pairs = [("lognormal", "exponential"), ("mixture", "bounded_skewed")]
    prod = [masses(FAMILIES[p]()) for p, _ in pairs]
    canary = [masses(FAMILIES[c](scale_for(c, measure(pm), measure))) for (_, c), pm in zip(pairs, prod)]
    for pc, pp in zip(canary, prod):
        assert measure(pc) == pytest.approx(measure(pp), abs=1e-9)
    rolled, _ = simulate(cfg, stacked(*canary, runs=runs), stacked(*prod, runs=runs), 4.0, seed=102)
    for g, pair in enumerate(pairs):
        rate = np.isfinite(rolled[0, g * runs : (g + 1) * runs]).mean()
        assert within_alpha(rate, 0.05, runs), (pair, rate)


@pytest.mark.parametrize("metric, measure, sign", [(MAE, mean_u, +1), (WITHIN, share_within, -1)])
def test_false_promotion_at_the_margin(metric, measure, sign):
    """The canary exactly at H0_P's boundary g = -m (m = 0.02: its clipped MAE 2 % of clip above
    production's, or its share within tolerance 2 points below), the final stage (alpha_promote
    0.01), 4 h, 300 runs per shape: the canary scaled up (lognormal), or production's errors
    with a share replaced by clipped outliers (mixture)."""
    cfg = load_config({"metrics": [metric], "max_stage_s": None, "change_detection": {"enabled": False}})
    runs, m = 300, 0.02
    pm_log = masses(FAMILIES["lognormal"]())
    c_log = masses(FAMILIES["lognormal"](scale_for("lognormal", measure(pm_log) + sign * m, measure)))
    pm_mix = masses(FAMILIES["mixture"]())
    # eps of the predictions become outliers beyond the clip: g moves by eps (1 - u) (mae), or
    # by eps * share (within); choose eps so that it is exactly m.
    outlier = np.zeros(len(BOUNDS))
    outlier[-1] = 1.0
    eps = m / (1 - mean_u(pm_mix)) if metric is MAE else m / share_within(pm_mix)
    c_mix = (1 - eps) * pm_mix + eps * outlier
    for pc, pp in ((c_log, pm_log), (c_mix, pm_mix)):
        assert measure(pc) - measure(pp) == pytest.approx(sign * m, abs=1e-9)
    _, noninf = simulate(
        cfg, stacked(c_log, c_mix, runs=runs), stacked(pm_log, pm_mix, runs=runs), 4.0, seed=103, final=True
    )
    for g, shape in enumerate(("lognormal", "mixture")):
        rate = np.isfinite(noninf[0, g * runs : (g + 1) * runs]).mean()
        assert within_alpha(rate, 0.01, runs), (shape, rate)


@pytest.mark.parametrize("metric", [WITHIN, MAE])
def test_a_clearly_worse_regressor_is_rolled_back_quickly(metric):
    """Errors x 1.5 on the canary (lognormal and exponential errors), default settings."""
    cfg = load_config({"metrics": [metric], "max_stage_s": None})
    runs = 100
    shapes = ("lognormal", "exponential")
    pm_p = stacked(*(masses(FAMILIES[s]()) for s in shapes), runs=runs)
    pm_c = stacked(*(masses(FAMILIES[s](1.5)) for s in shapes), runs=runs)
    rolled, _ = simulate(cfg, pm_c, pm_p, 0.25, seed=104, stop_on_rollback=True)
    t = rolled[0]
    assert np.isfinite(t).all()
    assert np.median(t) <= 60 and np.quantile(t, 0.9) <= 120, (np.median(t), np.quantile(t, 0.9))


def test_a_healthy_regressor_shows_non_inferiority():
    """Equal errors: both gates establish non-inferiority at the final margin within 2 h."""
    cfg = load_config({"metrics": [WITHIN, MAE], "max_stage_s": None, "change_detection": {"enabled": False}})
    pm = stacked(masses(FAMILIES["lognormal"]()), runs=100)
    _, noninf = simulate(cfg, pm, pm, 2.0, seed=105, final=True)
    assert np.isfinite(noninf).all(axis=0).mean() >= 0.9


# ---------------------------------------------------------------- words and evidence


def regression_arm(n, dist, rng=None, times=1):
    """One poll's increments of an arm with n labelled predictions: drawn with rng, or else the
    expected bucket counts rounded (times a factor, so that arms of the same distribution keep
    exactly the same shares)."""
    pm = masses(dist)
    counts = rng.multinomial(n, pm) if rng is not None else times * np.round(n * pm)
    cum = np.cumsum(counts).astype(float)
    return ArmIncrement(
        requests=cum[-1],
        labelled=cum[-1],
        latency_count=cum[-1],
        latency_fast=cum[-1],
        abs_error_buckets=tuple(zip(ABS_ERROR_BUCKETS, cum.tolist())),
    )


def test_from_start_rollback_words():
    a = SequentialAnalysis(load_config({"metrics": [WITHIN, MAE]}))
    a.start_stage(0.2, 0.0, False)
    worse = FAMILIES["lognormal"](2.0)
    a.observe(Poll(15.0, regression_arm(300, worse), regression_arm(1200, FAMILIES["lognormal"]()), 0.2))
    v = a.verdict(15.0)
    assert v.decision is Decision.ROLLBACK and v.detector == "from_start"
    w, m = v.metrics
    assert w["explanation"].startswith("within_half is worse on the canary (share within 0.5 of the label: canary ")
    assert "%, production " in w["explanation"] and "; g = -0." in w["explanation"]
    assert m["explanation"].startswith(
        "mae is worse on the canary (clipped mean absolute error (errors clipped at 5): canary "
    )
    assert " of clip, upper bound " in m["explanation"]
    assert v.summary.startswith("Roll back (from-start test): within_half is worse on the canary (share within 0.5")
    # Evidence in the metric's own terms; the usual keys are all there.
    assert w["regression"]["measure"] == "share within 0.5 of the label" and w["regression"]["tolerance"] == 0.5
    assert w["regression"]["share_within"]["canary"] == pytest.approx(w["p"]["canary"])
    assert m["regression"]["measure"] == "clipped mean absolute error (errors clipped at 5)"
    mae = m["regression"]["clipped_mae"]
    assert mae["canary"] == pytest.approx(5 * (1 - m["p"]["canary"]), abs=1e-5)
    # At 20 % the exposure margin of the step to 50 % is 2 x 0.02 of clip: 0.2 in the label's unit.
    assert mae["canary"] > mae["production"] and m["regression"]["margin_error"] == pytest.approx(0.2)
    assert {"n", "p", "g_hat", "bounds", "detector", "since", "change"} <= set(m)
    json.dumps(v.as_dict(), allow_nan=False)


def test_holding_and_non_inferior_words():
    a = SequentialAnalysis(load_config({"metrics": [WITHIN, MAE], "max_stage_s": None}))
    a.start_stage(0.2, 0.0, True)
    a.observe(Poll(15.0, regression_arm(10, FAMILIES["lognormal"]()), regression_arm(40, FAMILIES["lognormal"]()), 0.2))
    v = a.verdict(15.0)
    assert v.metrics[0]["explanation"].startswith(
        "within_half gate: burn-in, 30 labelled predictions per arm needed (canary "
    )
    rng = np.random.default_rng(2)
    at = 15.0
    for _ in range(400):
        at += 15
        d = FAMILIES["lognormal"]()
        a.observe(Poll(at, regression_arm(150, d, rng), regression_arm(600, d, rng), 0.2))
        v = a.verdict(at)
        if v.decision is Decision.PROMOTE:
            break
        if at == 120.0:
            held = v
    words = held.metrics[1]["explanation"]
    assert words.startswith("mae gate: ") and "clipped mean absolute error (errors clipped at 5): canary " in words
    assert words.endswith(
        "margin 0.02 of clip: the canary's clipped mean absolute error may exceed production's by at most 0.1"
    )
    assert "more labelled canary predictions needed" in words or "looks worse than the margin" in words
    assert v.decision is Decision.PROMOTE
    w, m = v.metrics
    assert w["explanation"].startswith("within_half gate: non-inferior within 0.02 (lower bound ")
    assert w["explanation"].endswith("margin 2 points of the share within 0.5 of the label")
    assert "; share within 0.5 of the label: canary " in w["explanation"]
    assert m["explanation"].startswith("mae gate: non-inferior within 0.02 (lower bound ")


def test_change_words_for_regression():
    t0 = float(calendar.timegm((2024, 6, 1, 13, 0, 0)))
    for metric, limit, pattern in (
        (
            WITHIN,
            60,
            r"within_half turned worse on the canary about \d+ (s|min) ago \(since 14:00 UTC: canary "
            r"\d+\.\d % within 0\.5 of the label on [\d,]+ labelled predictions, production "
            r"\d+\.\d %\): roll back",
        ),
        (
            MAE,
            120,
            r"mae turned worse on the canary about \d+ (s|min) ago \(since 14:00 UTC: clipped mean absolute "
            r"error canary \d\.\d+ on [\d,]+ labelled predictions, production \d\.\d+; errors clipped at "
            r"5\): roll back",
        ),
    ):
        a = SequentialAnalysis(load_config({"metrics": [metric], "max_stage_s": None}))
        a.start_stage(0.2, t0, False)
        at, base = t0, FAMILIES["lognormal"]()
        for _ in range(240):  # an hour of equal, exact expected counts
            at += 15
            a.observe(Poll(at, regression_arm(150, base), regression_arm(150, base, times=4), 0.2))
        assert a.verdict(at).decision is not Decision.ROLLBACK
        for _ in range(20):
            at += 15
            a.observe(
                Poll(at, regression_arm(150, FAMILIES["lognormal"](1.5)), regression_arm(150, base, times=4), 0.2)
            )
            v = a.verdict(at)
            if v.decision is Decision.ROLLBACK:
                break
        assert v.decision is Decision.ROLLBACK and v.detector == "change", v.summary
        assert re.fullmatch(pattern, v.metrics[0]["explanation"]), v.metrics[0]["explanation"]
        # mae is the slower (its variance bound p (1 - p) is loose): 105 s here, 45 s for the share.
        assert at - t0 - 3600 <= limit
