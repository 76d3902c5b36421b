"""The /stats arithmetic: percentiles from buckets, baselines, merging replicas, the summary."""

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from canary_router.api import stats
from canary_router.control.peers import resolve_peers
from canary_router.metrics import BUCKETS


def test_quantile_interpolates_inside_the_bucket():
    buckets = {0.01: 0, 0.02: 100, math.inf: 100}
    assert stats.quantile_from_buckets(0.5, buckets) == pytest.approx(0.015)
    assert stats.quantile_from_buckets(0.95, buckets) == pytest.approx(0.0195)


def test_quantile_edges():
    assert stats.quantile_from_buckets(0.95, {}) is None
    assert stats.quantile_from_buckets(0.95, {0.1: 0, math.inf: 0}) is None
    assert stats.quantile_from_buckets(0.95, {0.1: 0, 5.0: 0, math.inf: 10}) == 5.0  # beyond the last bound
    assert stats.quantile_from_buckets(0.95, {0.001: 10, math.inf: 10}) == pytest.approx(0.00095)


def _families(ok_prod=0, ok_canary=0, err_canary=0, latencies=(), correct=0, incorrect=0):
    reg = CollectorRegistry()
    req = Counter("canary_router_requests_total", "", ["model", "version", "status"], registry=reg)
    lab = Counter("canary_router_labelled_predictions_total", "", ["model", "version", "outcome"], registry=reg)
    dur = Histogram("canary_router_request_duration_seconds", "", ["model", "version"], buckets=BUCKETS, registry=reg)
    fb = Counter("canary_router_fallbacks_total", "", registry=reg)
    req.labels("production", "1", "ok").inc(ok_prod)
    req.labels("canary", "2", "ok").inc(ok_canary)
    req.labels("canary", "2", "error").inc(err_canary)
    fb.inc(err_canary)
    for s in latencies:
        dur.labels("production", "1").observe(s)
    lab.labels("canary", "2", "correct").inc(correct)
    lab.labels("canary", "2", "incorrect").inc(incorrect)
    return list(reg.collect())


def test_summary_from_counters():
    counts = stats.raw_counts(
        _families(ok_prod=80, ok_canary=20, err_canary=5, latencies=[0.004] * 19 + [0.2], correct=15, incorrect=5)
    )
    s = stats.summarize(counts, {"production_version": "1", "canary_version": "2", "canary_percentage": 20.0})
    assert s["production"]["requests"] == 80 and s["production"]["version"] == "1"
    assert s["canary"]["requests"] == 20 and s["canary"]["errors"] == 5 and s["canary"]["error_rate"] == 20.0
    assert s["canary"]["accuracy"] == 75.0 and s["production"]["accuracy"] is None
    assert s["production"]["avg_latency_ms"] == pytest.approx((19 * 4 + 200) / 20, rel=1e-6)
    assert 2.5 < s["production"]["p95_latency_ms"] <= 5.0
    assert s["canary_percentage"] == 20.0 and s["observed_canary_percentage"] == 20.0
    assert s["totals"]["requests"] == 100 and s["totals"]["fallbacks"] == 5


def test_baseline_and_merge():
    before = stats.raw_counts(_families(ok_prod=10))
    after = stats.raw_counts(_families(ok_prod=25))
    since = stats.subtract(after, before)
    assert since["req|production|1|ok"] == 15
    # A counter that went down (files wiped by a restart) counts from zero, never negative.
    assert stats.subtract(before, after)["req|production|1|ok"] == 10
    merged = stats.merge([since, since, {}])
    assert merged["req|production|1|ok"] == 30
    assert stats.summarize(merged)["production"]["requests"] == 30


def test_empty_summary():
    s = stats.summarize({})
    assert s["production"]["requests"] == 0 and s["canary"]["p95_latency_ms"] is None
    assert s["observed_canary_percentage"] is None


def test_peers():
    assert resolve_peers("") is None
    assert resolve_peers("http://a:8000/, http://b:8000") == ["http://a:8000", "http://b:8000"]

    def fake(name, port, *a):
        return [(2, 1, 6, "", ("10.0.0.3", port)), (2, 1, 6, "", ("10.0.0.2", port)), (2, 1, 6, "", ("10.0.0.3", port))]

    assert resolve_peers("dns:router:8000", resolver=fake) == ["http://10.0.0.2:8000", "http://10.0.0.3:8000"]
    with pytest.raises(ValueError):
        resolve_peers("dns:router")
