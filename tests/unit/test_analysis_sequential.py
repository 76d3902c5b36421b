"""The sequential analysis: the e-value formula, error rates under the nulls, decisions, the
carry-over of evidence across stages, and the guards."""

import json
import math

import numpy as np
import pytest
from scipy import integrate, stats

from canary_controller.analysis import ArmIncrement, Decision, Poll, SequentialAnalysis, SequentialEngine, load_config
from canary_controller.analysis.stats import evidence_radius, lindon_malek_log_bf, log_e_value

ACC_ONLY = {"metrics": [{"name": "accuracy", "kind": "accuracy"}], "max_stage_s": None}


def arm(requests=0, errors=0, labelled=None, correct=0, slow=0):
    ok = requests - errors
    labelled = ok if labelled is None else labelled
    return ArmIncrement(
        requests=requests, errors=errors, labelled=labelled, correct=correct, latency_count=ok, latency_fast=ok - slow
    )


def poll(at, canary, production, weight=0.2, restarts=0):
    return Poll(at=at, canary=canary, production=production, weight=weight, canary_restarts=restarts)


# ---------------------------------------------------------------- the formula


def mixture_by_quadrature(s, var, tau):
    """E = integral over theta > 0 of the half-normal prior times the likelihood ratio of an
    estimate at distance s under N(theta, V) against N(0, V)."""

    def integrand(theta):
        prior = 2.0 * stats.norm.pdf(theta, scale=tau)
        return prior * math.exp((theta * s - 0.5 * theta * theta) / var)

    value, _ = integrate.quad(integrand, 0.0, np.inf, epsabs=0, epsrel=1e-10, limit=200)
    return math.log(value)


@pytest.mark.parametrize(
    "s, var, tau",
    [
        (0.05, 1e-3, 0.05),
        (0.1, 1.2e-3, 0.05),
        (-0.02, 4e-4, 0.02),
        (0.0, 1e-4, 0.02),
        (0.02, 6e-5, 0.02),
        (0.004, 1e-6, 0.0025),
        (-0.01, 1e-5, 0.03),
        (0.03, 2e-4, 0.01),
    ],
)
def test_log_e_value_matches_numerical_integration(s, var, tau):
    assert log_e_value(s, var, tau) == pytest.approx(mixture_by_quadrature(s, var, tau), abs=1e-7)


def test_log_e_value_vectorises_and_handles_no_data():
    out = log_e_value(np.array([0.05, 0.1]), np.array([1e-3, np.nan]), 0.05)
    assert out[0] == pytest.approx(log_e_value(0.05, 1e-3, 0.05))
    assert out[1] == 0.0


@pytest.mark.parametrize(
    "var, tau, c", [(1e-3, 0.05, math.log(60)), (1e-5, 0.02, math.log(100)), (2e-7, 0.0025, math.log(20))]
)
def test_evidence_radius_inverts_the_test(var, tau, c):
    r = evidence_radius(var, tau, c)
    assert log_e_value(r, var, tau) == pytest.approx(c, abs=1e-6)


def test_lindon_malek_bayes_factor_formula():
    from scipy.special import betaln

    xc, xp, rho, k = 7, 13, 0.2, 100
    expected = (
        betaln(k * rho + xc, k * (1 - rho) + xp)
        - betaln(k * rho, k * (1 - rho))
        - xc * math.log(rho)
        - xp * math.log(1 - rho)
    )
    assert lindon_malek_log_bf(xc, xp, rho, k) == pytest.approx(expected)
    assert lindon_malek_log_bf(0, 0, rho, k) == pytest.approx(0.0)


# ---------------------------------------------------------------- error rates under the nulls


def simulate(cfg, runs, polls, acc_c, acc_p, seed, weight=0.2, final=False, rps=20.0):
    """Batch runs of the engine; returns (ever rolled back, ever ready to step/promote)."""
    rng = np.random.default_rng(seed)
    eng = SequentialEngine(cfg, runs)
    eng.start_stage(weight, 0.0, final)
    rolled, ready = np.zeros(runs, bool), np.zeros(runs, bool)
    for i in range(1, polls + 1):
        rows = []
        for share, acc in ((weight, acc_c), (1 - weight, acc_p)):
            n = rng.poisson(rps * share * 15, runs)
            good = rng.binomial(n, acc)
            rows.append(np.stack([n, np.zeros(runs), n, good, n, n], axis=1).astype(float))
        eng.observe(i * 15.0, rows[0], rows[1], weight)
        ev = eng.evaluate(i * 15.0)
        rolled |= ev["rollback_metric"].any(axis=0)
        ready |= ev["gates_ok"]
    return rolled, ready


def within_alpha(rate, alpha, runs):
    return rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)


def test_rollback_type_one_error_under_h0():
    # One metric: alpha_R = 0.05 goes to accuracy alone; the canary equals production.
    runs = 400
    rolled, _ = simulate(load_config(ACC_ONLY), runs, 240, 0.9, 0.9, seed=11)
    assert within_alpha(rolled.mean(), 0.05, runs), rolled.mean()


def test_promotion_type_one_error_at_the_margin():
    # The canary sits exactly at the margin (g = -0.02): the final stage must promote <= 1 %.
    runs = 400
    _, ready = simulate(load_config(ACC_ONLY), runs, 240, 0.88, 0.90, seed=12, final=True, rps=40.0)
    assert within_alpha(ready.mean(), 0.01, runs), ready.mean()


def test_step_type_one_error_at_the_margin():
    runs = 400
    cfg = load_config(dict(ACC_ONLY, step_margin="fixed"))
    _, ready = simulate(cfg, runs, 240, 0.88, 0.90, seed=13, final=False, rps=40.0)
    assert within_alpha(ready.mean(), 0.05, runs), ready.mean()


def test_exposure_step_type_one_error_at_its_scaled_margin():
    # At 20 % the next step is 50 %: the step margin is 0.02 / 0.5 = 0.04.
    runs = 400
    _, ready = simulate(load_config(ACC_ONLY), runs, 240, 0.86, 0.90, seed=14, final=False, rps=40.0)
    assert within_alpha(ready.mean(), 0.05, runs), ready.mean()


def test_exposure_margin_scales_with_the_next_share_and_is_capped():
    eng = SequentialEngine(load_config(dict(ACC_ONLY, step_margin_cap=4)), 3)
    eng.start_stage(np.array([0.05, 0.20, 0.50]), 0.0, np.array([False, False, True]))
    m, _, _ = eng.margins()
    # 5 % -> 10 %: 10 x capped at 4; 20 % -> 50 %: 2 x; the final stage: the margin itself.
    assert m[0] == pytest.approx([0.08, 0.04, 0.02])


# ---------------------------------------------------------------- decisions


def healthy_polls(analysis, start, count, weight=0.2, acc=0.9, rng=None, per_poll=750):
    rng = rng or np.random.default_rng(5)
    at = start
    for _ in range(count):
        at += 15
        nc, np_ = int(per_poll * weight), int(per_poll * (1 - weight))
        analysis.observe(
            poll(at, arm(nc, correct=rng.binomial(nc, acc)), arm(np_, correct=rng.binomial(np_, 0.9)), weight)
        )
    return at


def test_clear_rollback_on_first_poll():
    a = SequentialAnalysis(load_config(None))
    a.start_stage(0.2, 0.0, False)
    a.observe(poll(15, arm(150, correct=75), arm(600, correct=540)))
    v = a.verdict(15)
    assert v.decision is Decision.ROLLBACK
    acc = v.metrics[0]
    assert acc["rollback"] and acc["bounds"]["upper"] < 0 < acc["log_e_rollback"] - acc["threshold_rollback"]
    assert "accuracy is worse on the canary" in v.summary
    json.dumps(v.as_dict(), allow_nan=False)


def test_burn_in_holds_and_is_not_a_failure():
    a = SequentialAnalysis(load_config(None))
    a.start_stage(0.05, 0.0, False)
    a.observe(poll(15, arm(10, correct=0), arm(190, correct=171), weight=0.05))
    v = a.verdict(15)
    assert v.decision is Decision.CONTINUE
    assert "burn-in" in v.metrics[0]["explanation"]


def test_healthy_canary_steps_up_after_dwell_then_promotes():
    cfg = load_config({**ACC_ONLY, "min_dwell_s": 300})
    a = SequentialAnalysis(cfg)
    a.start_stage(0.2, 0.0, False)
    rng = np.random.default_rng(3)
    at, decisions = 0.0, []
    while at < 3600:
        at = healthy_polls(a, at, 1, rng=rng, acc=0.92)
        v = a.verdict(at)
        decisions.append((at, v.decision))
        if v.decision is not Decision.CONTINUE:
            break
    assert v.decision is Decision.STEP_UP and at >= 300
    assert "non-inferiority" in v.summary
    # Evidence carries over: the final stage promotes once its own dwell has passed.
    a.start_stage(0.5, at, True)
    v = a.verdict(at + 15)
    assert v.decision is Decision.CONTINUE and "minimum dwell" in v.summary
    for _ in range(40):
        at = healthy_polls(a, at, 1, weight=0.5, rng=rng, acc=0.92)
        v = a.verdict(at)
        if v.decision is not Decision.CONTINUE:
            break
    assert v.decision is Decision.PROMOTE
    assert v.metrics[0]["threshold_promote"] == pytest.approx(math.log(100))


def test_holding_explains_what_is_needed():
    a = SequentialAnalysis(load_config(None))
    a.start_stage(0.2, 0.0, False)
    at = healthy_polls(a, 0.0, 4, rng=np.random.default_rng(8))
    v = a.verdict(at)
    assert v.decision is Decision.CONTINUE
    words = v.metrics[0]["explanation"]
    assert (
        "more labelled canary requests needed at the current rate (≈" in words
        or "looks worse than the margin" in words
        or "non-inferior" in words
    ), words
    assert v.summary.startswith("Holding at 20 %")


def test_max_stage_time_is_inconclusive():
    cfg = load_config({"max_stage_s": 120})
    a = SequentialAnalysis(cfg)
    a.start_stage(0.05, 0.0, False)
    at = healthy_polls(a, 0.0, 9, weight=0.05)
    v = a.verdict(at)
    assert v.decision is Decision.INCONCLUSIVE
    assert "policy: rollback" in v.summary


def test_rollback_evidence_is_kept_across_stages():
    cfg = load_config(ACC_ONLY)
    # 0.80 vs 0.90, then 0.78 vs 0.90, at the stage's weight; each stage alone is weak evidence.
    first = (arm(60, correct=48), arm(240, correct=216))
    second = (arm(150, correct=117), arm(150, correct=135))

    a = SequentialAnalysis(cfg)
    a.start_stage(0.2, 0.0, False)
    a.observe(poll(15, *first))
    before = a.verdict(15)
    assert before.decision is Decision.CONTINUE
    a.start_stage(0.5, 15.0, False)
    after = a.verdict(15)
    assert after.metrics[0]["log_e_rollback"] == before.metrics[0]["log_e_rollback"]
    a.observe(poll(30, *second, weight=0.5))
    v = a.verdict(30)
    assert v.decision is Decision.ROLLBACK and v.metrics[0]["rollback"]
    assert not any(g["fired"] for g in v.guards)

    # The second stage's data alone would not have been enough.
    fresh = SequentialAnalysis(cfg)
    fresh.start_stage(0.5, 15.0, False)
    fresh.observe(poll(30, *second, weight=0.5))
    assert fresh.verdict(30).decision is Decision.CONTINUE


def test_strata_keep_a_ramp_with_drift_unbiased():
    # Equal arms within each poll; the base rate and the weight change together (Simpson).
    cfg = load_config(ACC_ONLY)
    a = SequentialAnalysis(cfg)
    a.start_stage(0.05, 0.0, False)
    a.observe(poll(15, arm(100, correct=95), arm(1900, correct=1805), weight=0.05))
    a.start_stage(0.5, 15.0, False)
    a.observe(poll(30, arm(1000, correct=850), arm(1000, correct=850), weight=0.5))
    m = a.verdict(30).metrics[0]
    assert m["p"]["canary"] < m["p"]["production"] - 0.05  # pooled counts would call it harm
    assert m["g_hat"] == pytest.approx(0.0, abs=1e-12)
    assert not m["rollback"]


def test_engine_batch_matches_single_runs():
    cfg = load_config(None)
    rng = np.random.default_rng(21)
    runs = 3
    eng = SequentialEngine(cfg, runs)
    singles = [SequentialAnalysis(cfg) for _ in range(runs)]
    eng.start_stage(0.2, 0.0, False)
    for s in singles:
        s.start_stage(0.2, 0.0, False)
    for i in range(1, 12):
        c = np.stack([rng.poisson(150, runs), rng.poisson(1, runs)], axis=1).astype(float)
        rows_c = np.column_stack(
            [
                c[:, 0],
                c[:, 1],
                c[:, 0] - c[:, 1],
                rng.binomial((c[:, 0] - c[:, 1]).astype(int), [0.9, 0.8, 0.5]),
                c[:, 0] - c[:, 1],
                c[:, 0] - c[:, 1],
            ]
        )
        rows_p = np.tile([600.0, 3, 597, 537, 597, 570], (runs, 1))
        eng.observe(i * 15.0, rows_c, rows_p, 0.2)
        batch = eng.evaluate(i * 15.0)["decision"]
        for r, s in enumerate(singles):
            f = rows_c[r]
            s.observe(poll(i * 15.0, ArmIncrement(*f), ArmIncrement(*rows_p[r])))
            assert (
                s.verdict(i * 15.0).decision.value
                == {0: "continue", 1: "step_up", 2: "promote", 3: "rollback", 4: "inconclusive"}[int(batch[r])]
            )


# ---------------------------------------------------------------- guards


def test_error_burst_fires_without_burn_in():
    a = SequentialAnalysis(load_config(None))
    a.start_stage(0.05, 0.0, False)
    a.observe(poll(15, arm(8, correct=7), arm(150, correct=135), weight=0.05))  # the first poll: skipped
    a.observe(poll(30, arm(16, errors=14, correct=2), arm(150, errors=1, correct=135), weight=0.05))
    v = a.verdict(30)
    assert v.decision is Decision.ROLLBACK
    burst = next(g for g in v.guards if g["name"] == "error_burst")
    assert burst["fired"] and "error burst" in v.summary
    assert not any(m["burn_in_ok"] for m in v.metrics)  # the metric tests could not have fired


def test_error_burst_ignores_a_canary_with_fewer_errors():
    a = SequentialAnalysis(load_config(ACC_ONLY))
    a.start_stage(0.5, 0.0, False)
    a.observe(poll(15, arm(500, errors=0, correct=450), arm(500, errors=60, correct=396), weight=0.5))
    v = a.verdict(15)
    assert not next(g for g in v.guards if g["name"] == "error_burst")["fired"]
    assert v.decision is not Decision.ROLLBACK


def test_sample_ratio_mismatch_fires():
    a = SequentialAnalysis(load_config(None))
    a.start_stage(0.2, 0.0, False)
    a.observe(poll(15, arm(150, correct=135), arm(600, correct=540)))  # the first poll: skipped
    a.observe(poll(30, arm(60, correct=54), arm(700, correct=630)))  # 7.9 % of traffic at 20 %
    v = a.verdict(30)
    assert v.decision is Decision.ROLLBACK
    assert next(g for g in v.guards if g["name"] == "sample_ratio")["fired"]
    assert "sample-ratio mismatch" in v.summary


def test_sample_ratio_skips_the_poll_straddling_a_weight_change():
    a = SequentialAnalysis(load_config(None))
    a.start_stage(0.05, 0.0, False)
    a.observe(poll(15, arm(38, correct=34), arm(712, correct=641), weight=0.05))
    a.start_stage(0.5, 20.0, False)
    # Counted mostly at the old weight, reported at the new one: not evidence of a mismatch.
    a.observe(poll(30, arm(38, correct=34), arm(712, correct=641), weight=0.5))
    v = a.verdict(30)
    assert not next(g for g in v.guards if g["name"] == "sample_ratio")["fired"]
    a.observe(poll(45, arm(375, correct=338), arm(375, correct=337), weight=0.5))
    assert not next(g for g in a.verdict(45).guards if g["name"] == "sample_ratio")["fired"]


def test_guards_wait_for_the_new_weight_to_settle():
    """A fresh rollout at 20 %: the first polls still hold traffic from before it (weight 0,
    every request to production, as Prometheus last scraped it and while the routers follow)."""
    a = SequentialAnalysis(load_config(None))
    a.start_stage(0.2, 0.0, False)
    a.observe(poll(5, arm(0), arm(100, correct=90)))  # no previous poll: it may reach back
    a.observe(poll(10, arm(2, correct=2), arm(98, correct=88)))  # began 5 s in: before settle_s
    assert not next(g for g in a.verdict(10).guards if g["name"] == "sample_ratio")["fired"]
    for t in range(15, 60, 5):
        a.observe(poll(t, arm(20, correct=18), arm(80, correct=72)))
        assert not next(g for g in a.verdict(t).guards if g["name"] == "sample_ratio")["fired"]
    counted = next(g for g in a.verdict(55).guards if g["name"] == "sample_ratio")
    assert counted["counts"] == {"canary": 180.0, "production": 720.0}, counted  # the polls from 15 s on
    # Without the settle time the same start is a mismatch.
    eager = SequentialAnalysis(load_config({"guards": {"settle_s": 0}}))
    eager.start_stage(0.2, 0.0, False)
    eager.observe(poll(5, arm(0), arm(100, correct=90)))
    eager.observe(poll(10, arm(0), arm(100, correct=90)))
    assert next(g for g in eager.verdict(10).guards if g["name"] == "sample_ratio")["fired"]


def test_restart_guard():
    a = SequentialAnalysis(load_config(None))
    a.start_stage(0.2, 0.0, False)
    a.observe(poll(15, arm(150, correct=135), arm(600, correct=540), restarts=1))
    v = a.verdict(15)
    assert v.decision is Decision.ROLLBACK and "restarted 1 times" in v.summary
    relaxed = SequentialAnalysis(load_config({"guards": {"restarts": {"max": 2}}}))
    relaxed.start_stage(0.2, 0.0, False)
    relaxed.observe(poll(15, arm(150, correct=135), arm(600, correct=540), restarts=1))
    assert relaxed.verdict(15).decision is Decision.CONTINUE


def test_verdict_before_any_stage_and_percent_weights():
    a = SequentialAnalysis(load_config(None))
    assert a.verdict(0).decision is Decision.CONTINUE
    a.start_stage(20, 0.0, False)  # a percentage is read as a share
    assert a.stage_weight == pytest.approx(0.2)
