"""The change detector (change-detection.md): start-indexed e-processes beside the from-start
rollback test, their error budget over long healthy runs, a late fault found quickly, the words
and evidence keys people see, its configuration, and the new promotion margins."""

import calendar
import json
import math
import re

import numpy as np
import pytest

from canary_controller.analysis import (
    ArmIncrement,
    ConfigError,
    Decision,
    Poll,
    SequentialAnalysis,
    SequentialEngine,
    load_config,
)
from canary_controller.analysis.sequential import start_log_weight

ACC_ONLY = {"metrics": [{"name": "accuracy", "kind": "accuracy"}], "max_stage_s": None}
# 2024-06-01 13:00:00 UTC: the controller's `at` is epoch seconds.
T0 = float(calendar.timegm((2024, 6, 1, 13, 0, 0)))


def arm(requests=0, errors=0, correct=0, slow=0):
    ok = requests - errors
    return ArmIncrement(
        requests=requests, errors=errors, labelled=ok, correct=correct, latency_count=ok, latency_fast=ok - slow
    )


def poll(at, canary, production, weight=0.2):
    return Poll(at=at, canary=canary, production=production, weight=weight)


def rows(rng, runs, lam, acc, err=0.0):
    """(B, 6) increments of one arm over a 15 s poll."""
    n = rng.poisson(lam * 15, runs)
    e = rng.binomial(n, err)
    ok = n - e
    return np.stack([n, e, ok, rng.binomial(ok, acc), ok, ok], axis=1).astype(float)


def late_fault(cfg, runs, seed, healthy_polls, acc_after, rps=50.0, weight=0.2, after_polls=40):
    """Batch runs: the canary at production's 0.90 for healthy_polls, then at acc_after. Returns
    per run the seconds from the change to the first rollback (inf: none; <= 0: before it)."""
    rng = np.random.default_rng(seed)
    eng = SequentialEngine(cfg, runs)
    eng.start_stage(weight, 0.0, False)
    hit = np.full(runs, np.inf)
    for i in range(1, healthy_polls + after_polls + 1):
        acc = 0.9 if i <= healthy_polls else acc_after
        eng.observe(i * 15.0, rows(rng, runs, rps * weight, acc), rows(rng, runs, rps * (1 - weight), 0.9), weight)
        hit = np.where(eng.evaluate(i * 15.0)["rollback"] & np.isinf(hit), i * 15.0, hit)
        if np.isfinite(hit).all():
            break
    return hit - healthy_polls * 15.0


# ---------------------------------------------------------------- the budget


def test_spending_sequence_sums_to_at_most_one():
    j = np.arange(1, 2_000_001)
    head = np.exp(-start_log_weight(j)).sum()
    tail = math.log(50) / math.log(j[-1] + 50)  # integral of ln(A) / (x ln^2 x) past the last start
    assert head + tail <= 1.0
    # log(1/w_j) grows about as ln j: starts an hour into a rollout (15 s grid) cost ~7.8 nats.
    assert start_log_weight(240) == pytest.approx(7.78, abs=0.01)
    assert start_log_weight(2880) == pytest.approx(10.77, abs=0.01)


def test_alpha_splits_between_the_detectors():
    eng = SequentialEngine(load_config(None), 1)
    assert eng.alpha_from_start == pytest.approx(0.025) and eng.alpha_change == pytest.approx(0.025)
    assert eng.log_thr_rollback == pytest.approx([math.log(3 / 0.025)] * 3)
    assert eng.log_thr_change == pytest.approx([math.log(3 / 0.025)] * 3)
    off = SequentialEngine(load_config({"change_detection": {"enabled": False}}), 1)
    assert off.alpha_from_start == pytest.approx(0.05) and off.slots == 0
    assert off.log_thr_rollback == pytest.approx([math.log(3 / 0.05)] * 3)


def test_change_detector_type_one_error_over_long_healthy_runs():
    # A generous budget (alpha_cd = 0.3) so that a wrong threshold would show; 300 healthy runs
    # of 4 hours at 30 s polls (480 starts through 32 slots): the observed rate of any change
    # alarm must stay within the budget (it is far below: the starts overlap, the bound is a
    # union bound).
    cfg = load_config(
        {
            **ACC_ONLY,
            "alpha_rollback": 0.5,
            "change_detection": {"alpha_share": 0.6, "start_interval_s": 30, "max_starts": 32},
        }
    )
    runs, rng = 300, np.random.default_rng(101)
    eng = SequentialEngine(cfg, runs)
    eng.start_stage(0.2, 0.0, False)
    alarmed = np.zeros(runs, bool)
    for i in range(1, 481):
        eng.observe(i * 30.0, rows(rng, runs, 1.0, 0.9), rows(rng, runs, 4.0, 0.9), 0.2)  # 15 : 60 a poll
        ev = eng.evaluate(i * 30.0)
        alarmed |= ev["rollback_change"][0]
    assert int(np.isfinite(eng.c_at).sum(axis=0).max()) == 32  # bounded
    budget = 0.3
    assert alarmed.mean() <= budget + 3 * math.sqrt(budget * (1 - budget) / runs), alarmed.mean()


def test_default_false_rollback_over_two_healthy_hours():
    # Both detectors and the guards, default config, 2 h of healthy traffic at 20 %.
    runs, rng = 100, np.random.default_rng(7)
    eng = SequentialEngine(load_config({"max_stage_s": None}), runs)
    eng.start_stage(0.2, 0.0, False)
    rolled = np.zeros(runs, bool)
    for i in range(1, 481):
        eng.observe(i * 15.0, rows(rng, runs, 4.0, 0.9, 0.005), rows(rng, runs, 16.0, 0.9, 0.005), 0.2)
        rolled |= eng.evaluate(i * 15.0)["rollback"]
    assert rolled.mean() <= 0.05


# ---------------------------------------------------------------- detection


def test_late_fault_is_found_about_as_fast_as_one_from_the_start():
    cfg = load_config({"max_stage_s": None})
    late = late_fault(cfg, 100, 5, 240, 0.80)  # an hour healthy, then 90 -> 80 %
    assert (late > 0).mean() >= 0.97  # (almost) no alarm before the change
    assert np.median(late[late > 0]) <= 60
    # The from-start test alone drags the healthy hour along.
    alone = late_fault(
        load_config({"max_stage_s": None, "change_detection": {"enabled": False}}), 100, 5, 240, 0.80, after_polls=60
    )
    assert np.median(alone[alone > 0]) >= 2 * np.median(late[late > 0])


def test_engine_batch_matches_single_runs_with_thinning():
    # The batch prefilter must not change a decision: three runs, 8 slots (thinning active),
    # a fault on run 1 after 40 polls, a subtle one on run 2; each against a B = 1 engine, which
    # evaluates every start.
    cfg = load_config({**ACC_ONLY, "change_detection": {"max_starts": 8}})
    rng = np.random.default_rng(3)
    runs = 3
    eng = SequentialEngine(cfg, runs)
    singles = [SequentialEngine(cfg, 1) for _ in range(runs)]
    for e in [eng] + singles:
        e.start_stage(0.2, 0.0, False)
    fired = np.zeros(runs, bool)
    for i in range(1, 90):
        accs = [0.9, 0.9 if i <= 40 else 0.75, 0.9 if i <= 40 else 0.85]
        c = np.vstack([rows(rng, 1, 10.0, a) for a in accs])
        p = np.vstack([rows(rng, 1, 40.0, 0.9) for _ in accs])
        eng.observe(i * 15.0, c, p, 0.2)
        ev = eng.evaluate(i * 15.0)
        for r, s in enumerate(singles):
            s.observe(i * 15.0, c[r : r + 1], p[r : r + 1], 0.2)
            one = s.evaluate(i * 15.0)
            assert one["decision"][0] == ev["decision"][r], (i, r)
            assert one["rollback_change"][0, 0] == ev["rollback_change"][0, r], (i, r)
            if ev["rollback_change"][0, r]:
                assert one["change_best"][0, 0] == ev["change_best"][0, r]
        fired |= ev["rollback_change"][0]
    assert fired[1] and not fired[0]


def test_kept_starts_are_bounded_and_spaced_by_age():
    cfg = load_config({**ACC_ONLY, "change_detection": {"max_starts": 16}})
    a = SequentialAnalysis(cfg)
    a.start_stage(0.2, 0.0, False)
    for i in range(1, 481):  # 2 h
        a.observe(poll(i * 15.0, arm(150, correct=135), arm(600, correct=540)))
    kept = np.sort(a.engine.c_at[:, 0])
    assert np.isfinite(kept).all() and len(kept) == 16
    assert kept[-1] == 480 * 15.0  # the newest start is always kept
    age = 480 * 15.0 - kept
    gaps = np.diff(kept)
    # Dense at the recent end, sparse far back: gaps grow with age.
    assert gaps[-1] == 15.0 and gaps[0] > 10 * gaps[-1]
    assert np.all(gaps[:-1] <= 0.6 * age[:-2] + 15.0)


# ---------------------------------------------------------------- words and evidence


def hour_then(a, canary_correct, polls, start=T0):
    """60 healthy minutes (exact 90 % on both arms), then `polls` polls of the canary at
    canary_correct of 150; returns (verdict, its at) at the first rollback or the last poll."""
    at = start
    a.start_stage(0.2, at, False)
    for _ in range(240):
        at += 15
        a.observe(poll(at, arm(150, correct=135), arm(600, correct=540)))
    assert a.verdict(at).decision is not Decision.ROLLBACK
    for _ in range(polls):
        at += 15
        a.observe(poll(at, arm(150, correct=canary_correct), arm(600, correct=540)))
        v = a.verdict(at)
        if v.decision is Decision.ROLLBACK:
            break
    return v, at


def test_change_rollback_says_which_detector_and_since_when():
    a = SequentialAnalysis(load_config(ACC_ONLY))
    v, at = hour_then(a, 126, 40)  # 84 % after 14:00 UTC
    assert v.decision is Decision.ROLLBACK
    m = v.metrics[0]
    assert m["detector"] == "change" and m["rollback"] and m["rollback_change"] and not m["rollback_from_start"]
    assert m["change_since"] == T0 + 3600
    since = m["since"]
    polls = (at - since["at"]) / 15
    assert since["n"] == {"canary": 150 * polls, "production": 600 * polls}
    assert since["p"] == {"canary": 0.84, "production": 0.9}
    assert m["change"]["fired"] and m["change"]["log_e"] >= m["change"]["threshold"]
    assert m["change"]["alpha"] == pytest.approx(0.025)
    minutes = round((at - since["at"]) / 60)
    assert minutes >= 2
    assert m["explanation"] == (
        f"accuracy turned worse on the canary about {minutes} min ago (since 14:00 UTC: "
        f"canary 84.0 % on {150 * polls:,.0f} labels, production 90.0 %): roll back"
    )
    assert v.summary.startswith("Roll back (change detector): accuracy turned worse on the canary about ")
    assert v.detector == "change" and v.as_dict()["detector"] == "change"
    json.dumps(v.as_dict(), allow_nan=False)


def test_a_sharp_late_fault_is_seconds_ago():
    a = SequentialAnalysis(load_config(None))
    v, at = hour_then(a, 105, 10)  # 70 %
    assert v.decision is Decision.ROLLBACK and v.metrics[0]["detector"] == "change"
    assert at - T0 - 3600 <= 45
    assert re.fullmatch(
        r"accuracy turned worse on the canary about \d+ s ago \(since 14:00 UTC: canary 70\.0 % "
        r"on \d+ labels, production 90\.0 %\): roll back",
        v.metrics[0]["explanation"],
    )


def test_availability_change_words():
    a = SequentialAnalysis(load_config({"max_stage_s": None}))
    at = T0
    a.start_stage(0.2, at, False)
    for _ in range(240):  # 0.5 % errors on both arms for an hour
        at += 15
        a.observe(poll(at, arm(200, errors=1, correct=180), arm(800, errors=4, correct=720)))
    for _ in range(20):  # then 5 % on the canary
        at += 15
        a.observe(poll(at, arm(200, errors=10, correct=171), arm(800, errors=4, correct=720)))
        v = a.verdict(at)
        if v.decision is Decision.ROLLBACK:
            break
    assert v.decision is Decision.ROLLBACK and v.detector == "change"
    m = next(m for m in v.metrics if m["name"] == "availability")
    polls = round((at - T0 - 3600) / 15)
    assert m["detector"] == "change" and m["since"]["n"]["canary"] == 200 * polls
    assert re.fullmatch(
        r"availability turned worse on the canary about \d+ (s|min) ago \(since 14:00 UTC: canary "
        r"95\.0 % succeeded on [\d,]+ requests, production 99\.5 %\): roll back",
        m["explanation"],
    )
    assert [x["detector"] for x in v.metrics if x["name"] != "availability"] == [None, None]


def test_from_start_rollback_keeps_its_words():
    a = SequentialAnalysis(load_config(None))
    a.start_stage(0.2, T0, False)
    a.observe(poll(T0 + 15, arm(150, correct=75), arm(600, correct=540)))
    v = a.verdict(T0 + 15)
    m = v.metrics[0]
    assert v.decision is Decision.ROLLBACK and m["detector"] == "from_start"
    assert m["explanation"].startswith("accuracy is worse on the canary (g = ")
    assert v.summary.startswith("Roll back (from-start test): accuracy is worse on the canary")
    assert v.detector == "from_start"
    # The other metrics did not fire: no detector, and keys present for the UIs.
    for other in v.metrics[1:]:
        assert other["detector"] is None and not other["rollback"]
        assert {"change_since", "since", "change"} <= set(other)


def test_holding_metrics_show_the_strongest_start():
    a = SequentialAnalysis(load_config(ACC_ONLY))
    a.start_stage(0.2, T0, False)
    for i in range(1, 21):
        a.observe(poll(T0 + 15 * i, arm(150, correct=135), arm(600, correct=540)))
    m = a.verdict(T0 + 300).metrics[0]
    assert m["detector"] is None and m["change"]["starts"] == 20
    assert m["change_since"] is not None and m["since"]["at"] == m["change_since"]
    assert m["change"]["log_e"] < m["change"]["threshold"]


def test_error_burst_after_an_hour_of_quiet_fires_at_once():
    a = SequentialAnalysis(load_config(None))
    a.start_stage(0.2, T0, False)
    rng = np.random.default_rng(11)
    at = T0
    for _ in range(240):
        at += 15
        ec, ep = rng.binomial(150, 0.005), rng.binomial(600, 0.005)
        a.observe(
            poll(
                at,
                arm(150, errors=ec, correct=round(0.9 * (150 - ec))),
                arm(600, errors=ep, correct=round(0.9 * (600 - ep))),
            )
        )
        assert not a.engine.evaluate(at)["rollback"][0]
    quiet = next(g for g in a.verdict(at).guards if g["name"] == "error_burst")
    assert not quiet["fired"] and quiet["counts"]["production"] > 0
    at += 15
    # Half the canary's requests fail in one poll.
    a.observe(poll(at, arm(150, errors=75, correct=68), arm(600, errors=3, correct=537)))
    v = a.verdict(at)
    assert v.decision is Decision.ROLLBACK
    burst = next(g for g in v.guards if g["name"] == "error_burst")
    assert burst["fired"] and v.detector == "error_burst"
    assert v.summary.startswith("Roll back (guard: error burst")


def test_change_detector_can_be_disabled():
    a = SequentialAnalysis(load_config({**ACC_ONLY, "change_detection": {"enabled": False}}))
    v, _ = hour_then(a, 126, 8)
    m = v.metrics[0]
    assert v.decision is not Decision.ROLLBACK and m["detector"] is None
    assert m["change"] == {
        "enabled": False,
        "fired": False,
        "log_e": None,
        "threshold": None,
        "alpha": 0.0,
        "tau": 0.1,
        "starts": 0,
    }
    assert m["since"] is None and m["change_since"] is None


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"change_detection": {"alpha_share": 1}}, "change_detection.alpha_share: must be < 1, got 1"),
        ({"change_detection": {"alpha_share": 0}}, "change_detection.alpha_share: must be > 0, got 0"),
        ({"change_detection": {"start_interval_s": 0}}, "change_detection.start_interval_s: must be > 0, got 0"),
        ({"change_detection": {"max_starts": 1}}, "change_detection.max_starts: must be >= 2, got 1"),
        ({"change_detection": {"max_starts": 5000}}, "change_detection.max_starts: must be <= 1000, got 5000"),
        ({"change_detection": {"max_starts": 10.5}}, "change_detection.max_starts: must be an integer"),
        ({"change_detection": {"enabled": "no"}}, "change_detection.enabled: must be true or false"),
        ({"change_detection": {"window_s": 60}}, "change_detection.window_s: unknown key"),
        ({"change_detection": [1]}, "change_detection: must be a mapping"),
        ({"metrics": [{"kind": "accuracy", "tau_change": 0}]}, "metrics[0].tau_change: must be > 0, got 0"),
        (
            {"metrics": [{"kind": "latency", "tau_change": "auto"}]},
            'metrics[0].tau_change: "auto" is only for availability',
        ),
    ],
)
def test_change_detection_errors_name_the_field(raw, message):
    with pytest.raises(ConfigError) as err:
        load_config(raw)
    assert message in str(err.value)


def test_change_detection_fields_load():
    cfg = load_config(
        {
            "change_detection": {"alpha_share": 0.25, "start_interval_s": 30, "max_starts": 100},
            "metrics": [{"kind": "accuracy", "tau_change": 0.07}, {"kind": "availability"}],
        }
    )
    cd = cfg.change_detection
    assert (cd.enabled, cd.alpha_share, cd.start_interval_s, cd.max_starts) == (True, 0.25, 30, 100)
    assert [m.tau_change for m in cfg.metrics] == [0.07, "auto"]
    eng = SequentialEngine(cfg, 1)
    assert eng.alpha_change == pytest.approx(0.0125) and eng.slots == 100


# ---------------------------------------------------------------- margins


def engine_with_production_errors(error_rate, n=200_000):
    eng = SequentialEngine(load_config(None), 1)
    eng.start_stage(0.2, 0.0, True)  # final stage: the margins themselves
    e = round(error_rate * n)
    ok = n - e
    prod = np.array([[n, e, ok, 0.9 * ok, ok, ok]], float)
    eng.observe(15.0, prod / 4, prod, 0.2)
    return eng


@pytest.mark.parametrize("error_rate, margin", [(0.005, 0.005), (0.02, 0.02), (0.0005, 0.002), (0.0, 0.002)])
def test_availability_auto_margin_is_the_baseline_error_rate(error_rate, margin):
    m, tau_r, tau_p = engine_with_production_errors(error_rate).margins()
    avail = 1  # accuracy, availability, latency
    assert m[avail, 0] == pytest.approx(margin, rel=0.01, abs=1e-5)
    assert tau_p[avail, 0] == pytest.approx(m[avail, 0])  # tau_promote follows m
    assert tau_r[avail, 0] == pytest.approx(max(0.01, 2 * error_rate), rel=0.01, abs=1e-5)


def test_change_tau_auto_follows_the_baseline_error_rate():
    eng = engine_with_production_errors(0.01)
    tau = eng.tau_change(eng.base_error())
    assert tau[1, 0] == pytest.approx(0.04, rel=0.01)  # availability: max(0.02, 4e)
    assert tau[0, 0] == 0.1 and tau[2, 0] == 0.06  # accuracy, latency: twice tau_rollback
    assert eng.tau_change(np.full((3, 1), 0.001))[1, 0] == 0.02  # the floor


def test_demo_file_keeps_the_reference_change_detection():
    from pathlib import Path

    demo = load_config(Path(__file__).resolve().parents[2] / "controller" / "analysis-demo.yaml")
    ref = load_config(None)
    assert demo.change_detection == ref.change_detection
    assert [m.tau_change for m in demo.metrics] == [m.tau_change for m in ref.metrics]
    assert [m.margin for m in demo.metrics] == [0.02, 0.01, 0.02]


def test_latency_and_accuracy_margins_are_two_points():
    m, _, tau_p = engine_with_production_errors(0.005).margins()
    assert m[0, 0] == pytest.approx(0.02) and m[2, 0] == pytest.approx(0.02)
    assert tau_p[0, 0] == pytest.approx(0.02) and tau_p[2, 0] == pytest.approx(0.02)
