"""The seed lab's threshold rule behind the Analysis interface, and the p95 interpolation."""

import json
import math

import numpy as np
import pytest

from canary_controller.analysis import ArmIncrement, Decision, Poll, ThresholdAnalysis, build_analysis, load_config
from canary_controller.analysis.stats import histogram_quantile

INF = float("inf")
BOUNDS = (0.05, 0.1, 0.25, INF)


def cfg(**threshold):
    base = {"accuracy_threshold": 85, "latency_threshold_ms": 100, "error_threshold_pct": 5, "min_samples": 20}
    base.update(threshold)
    return load_config({"mode": "threshold", "min_dwell_s": 60, "max_stage_s": 600, "threshold": base})


def arm(requests, correct, errors=0, buckets=None):
    ok = requests - errors
    # Default: every request under 50 ms.
    buckets = buckets if buckets is not None else tuple((le, ok) for le in BOUNDS)
    return ArmIncrement(
        requests=requests,
        errors=errors,
        labelled=ok,
        correct=correct,
        latency_count=ok,
        latency_fast=ok,
        latency_buckets=buckets,
    )


def poll(at, canary, weight=0.2):
    return Poll(at=at, canary=canary, production=arm(400, 360), weight=weight)


# ---------------------------------------------------------------- p95


def test_histogram_quantile_interpolates_inside_the_bucket():
    # 50 under 50 ms, 90 under 100 ms, 100 under 250 ms: rank 95 lies in (0.1, 0.25].
    assert histogram_quantile(0.95, BOUNDS, [50, 90, 100, 100]) == pytest.approx(0.1 + 0.15 * 5 / 10)
    # Rank in the first bucket: lower edge 0.
    assert histogram_quantile(0.5, BOUNDS, [100, 100, 100, 100]) == pytest.approx(0.025)
    # Rank in +Inf: the last finite bound, like Prometheus.
    assert histogram_quantile(0.95, BOUNDS, [10, 20, 30, 100]) == pytest.approx(0.25)
    assert math.isnan(histogram_quantile(0.95, BOUNDS, [0, 0, 0, 0]))


def test_histogram_quantile_vectorises():
    out = histogram_quantile(0.95, BOUNDS, np.array([[50, 90, 100, 100], [100, 100, 100, 100]]))
    assert out == pytest.approx([0.175, 0.0475])


# ---------------------------------------------------------------- decisions


def test_accuracy_below_threshold_rolls_back():
    a = ThresholdAnalysis(cfg())
    a.start_stage(0.2, 0.0, False)
    a.observe(poll(15, arm(100, 80)))
    v = a.verdict(15)
    assert v.decision is Decision.ROLLBACK
    assert "canary accuracy 80.0 % < 85 %" in v.summary
    json.dumps(v.as_dict(), allow_nan=False)


def test_too_few_samples_hold():
    a = ThresholdAnalysis(cfg())
    a.start_stage(0.2, 0.0, False)
    a.observe(poll(15, arm(10, 2)))
    v = a.verdict(15)
    assert v.decision is Decision.CONTINUE
    assert "10 of 20 labelled canary requests" in v.metrics[0]["explanation"]


def test_p95_latency_above_threshold_rolls_back():
    a = ThresholdAnalysis(cfg())
    a.start_stage(0.2, 0.0, False)
    slow = ((0.05, 50.0), (0.1, 90.0), (0.25, 100.0), (INF, 100.0))  # p95 = 175 ms
    a.observe(poll(15, arm(100, 95, buckets=slow)))
    v = a.verdict(15)
    assert v.decision is Decision.ROLLBACK
    lat = next(m for m in v.metrics if m["name"] == "latency_p95")
    assert lat["value"] == pytest.approx(0.175) and lat["failed"]
    assert "175 ms > 100 ms" in v.summary


def test_p95_over_several_polls_with_missing_bounds():
    # The controller drops zero increments: a poll may lack some bounds (their increment is 0).
    a = ThresholdAnalysis(cfg())
    a.start_stage(0.2, 0.0, False)
    a.observe(poll(15, arm(50, 48, buckets=((0.05, 50.0), (0.1, 50.0), (0.25, 50.0), (INF, 50.0)))))
    a.observe(poll(30, arm(50, 48, buckets=((0.25, 40.0), (INF, 50.0)))))
    # Cumulative over both: 50, 50, 90, 100 -> rank 95 in +Inf -> 0.25 s.
    lat = next(m for m in a.verdict(30).metrics if m["name"] == "latency_p95")
    assert lat["value"] == pytest.approx(0.25)
    assert a.verdict(30).decision is Decision.ROLLBACK


def test_error_ratio_above_threshold_rolls_back():
    a = ThresholdAnalysis(cfg())
    a.start_stage(0.2, 0.0, False)
    a.observe(poll(15, arm(100, 85, errors=8)))
    v = a.verdict(15)
    assert v.decision is Decision.ROLLBACK and "error_ratio 8.00 % > 5 %" in v.summary


def test_steps_up_after_dwell_and_promotes_on_the_final_stage():
    a = ThresholdAnalysis(cfg())
    a.start_stage(0.2, 0.0, False)
    a.observe(poll(15, arm(100, 92)))
    v = a.verdict(15)
    assert v.decision is Decision.CONTINUE and "minimum dwell, 45 s left" in v.summary
    for at in (30, 45, 60):
        a.observe(poll(at, arm(100, 92)))
    assert a.verdict(60).decision is Decision.STEP_UP
    a.start_stage(0.5, 60.0, True)
    assert a.verdict(75).decision is Decision.CONTINUE  # the stage starts over
    for at in (75, 90, 105, 120):
        a.observe(poll(at, arm(250, 230), weight=0.5))
    assert a.verdict(120).decision is Decision.PROMOTE


def test_inconclusive_past_max_stage():
    a = ThresholdAnalysis(cfg())
    a.start_stage(0.2, 0.0, False)
    a.observe(poll(15, arm(5, 5)))
    v = a.verdict(700)
    assert v.decision is Decision.INCONCLUSIVE and "policy: rollback" in v.summary


def test_window_forgets_old_polls():
    a = ThresholdAnalysis(cfg(window_s=30))
    a.start_stage(0.2, 0.0, False)
    a.observe(poll(15, arm(100, 50)))
    assert a.verdict(15).decision is Decision.ROLLBACK
    for at in (30, 45, 60):
        a.observe(poll(at, arm(100, 95)))
    v = a.verdict(60)  # only the polls at 45 and 60 are inside the last 30 s
    assert v.decision is Decision.STEP_UP
    assert v.metrics[0]["n"]["canary"] == 200


def test_cumulative_stage_is_the_default_and_checks_can_be_disabled():
    a = ThresholdAnalysis(cfg(latency_threshold_ms=None, error_threshold_pct=None))
    a.start_stage(0.2, 0.0, False)
    slow = ((0.05, 0.0), (0.1, 0.0), (0.25, 0.0), (INF, 100.0))
    a.observe(poll(15, arm(100, 50, errors=0, buckets=slow)))
    for at in (30, 45, 60, 75):
        a.observe(poll(at, arm(100, 95, buckets=slow)))
    v = a.verdict(75)
    assert v.metrics[0]["value"] == pytest.approx(430 / 500)  # cumulative: 86 %, passes
    assert v.decision is Decision.STEP_UP
    assert v.metrics[1]["explanation"] == "latency_p95: check disabled"


def test_factory_builds_threshold_mode():
    assert isinstance(build_analysis({"mode": "threshold"}), ThresholdAnalysis)
