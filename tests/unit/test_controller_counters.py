"""The controller's increments from raw counters: resets, new series, vanished series, versions.

The Prometheus client is replaced by a table of canned query answers here (the arithmetic is
what is under test); the integration suite reads a real Prometheus.
"""
import pytest

from canary_controller.prometheus import CounterReader, OutageCounter

COUNTERS = {"requests": "req", "errors": "err", "labelled": "lab", "correct": "cor",
            "latency_count": "lc", "latency_fast": "lf", "latency_buckets": "lb"}


class Canned:
    def __init__(self):
        self.answers = {q: [] for q in COUNTERS.values()}

    def instant(self, query):
        return self.answers[query]


def series(model, version, value, instance="r1", **extra):
    return ({"__name__": "x", "model": model, "version": version, "instance": instance, **extra}, value)


VERSIONS = {"production": "1", "canary": "2"}


def test_first_poll_is_a_baseline_then_increments():
    prom = Canned()
    reader = CounterReader(prom, COUNTERS)
    prom.answers["req"] = [series("canary", "2", 100), series("production", "1", 400)]
    assert reader.poll(VERSIONS) is None
    prom.answers["req"] = [series("canary", "2", 130), series("production", "1", 520)]
    inc = reader.poll(VERSIONS)
    assert inc["canary"].requests == 30 and inc["production"].requests == 120


def test_counter_reset_counts_the_new_value_not_a_drop():
    prom = Canned()
    reader = CounterReader(prom, COUNTERS)
    prom.answers["req"] = [series("canary", "2", 100)]
    reader.poll(VERSIONS)
    prom.answers["req"] = [series("canary", "2", 7)]  # the replica restarted
    assert reader.poll(VERSIONS)["canary"].requests == 7


def test_new_replica_series_starts_from_zero_not_a_burst_of_history():
    prom = Canned()
    reader = CounterReader(prom, COUNTERS)
    prom.answers["req"] = [series("canary", "2", 100, instance="r1")]
    reader.poll(VERSIONS)
    prom.answers["req"] = [series("canary", "2", 110, instance="r1"), series("canary", "2", 5, instance="r2")]
    assert reader.poll(VERSIONS)["canary"].requests == 15


def test_a_series_that_vanishes_and_returns_lower_is_a_reset():
    prom = Canned()
    reader = CounterReader(prom, COUNTERS)
    prom.answers["req"] = [series("canary", "2", 50, instance="r2")]
    reader.poll(VERSIONS)
    prom.answers["req"] = []
    assert reader.poll(VERSIONS)["canary"].requests == 0
    prom.answers["req"] = [series("canary", "2", 3, instance="r2")]
    assert reader.poll(VERSIONS)["canary"].requests == 3


def test_only_the_versions_in_the_rollout_count():
    prom = Canned()
    reader = CounterReader(prom, COUNTERS)
    prom.answers["req"] = [series("canary", "3", 10), series("canary", "2", 10)]
    reader.poll(VERSIONS)
    prom.answers["req"] = [series("canary", "3", 20), series("canary", "2", 15)]
    assert reader.poll(VERSIONS)["canary"].requests == 5


def test_buckets_are_summed_per_bound():
    prom = Canned()
    reader = CounterReader(prom, COUNTERS)
    prom.answers["lb"] = [series("canary", "2", 0, le="0.1"), series("canary", "2", 0, le="+Inf"),
                          series("canary", "2", 0, le="0.1", instance="r2")]
    reader.poll(VERSIONS)
    prom.answers["lb"] = [series("canary", "2", 8, le="0.1"), series("canary", "2", 10, le="+Inf"),
                          series("canary", "2", 4, le="0.1", instance="r2")]
    inc = reader.poll(VERSIONS)
    assert dict(inc["canary"].latency_buckets) == {0.1: 12, float("inf"): 10}


def test_a_failed_query_leaves_the_baseline_alone():
    from canary_controller.prometheus import MetricsUnavailable

    class Flaky(Canned):
        fail = False

        def instant(self, query):
            if self.fail:
                raise MetricsUnavailable("down")
            return super().instant(query)

    prom = Flaky()
    reader = CounterReader(prom, COUNTERS)
    prom.answers["req"] = [series("canary", "2", 10)]
    reader.poll(VERSIONS)
    prom.fail = True
    with pytest.raises(MetricsUnavailable):
        reader.poll(VERSIONS)
    prom.fail = False
    prom.answers["req"] = [series("canary", "2", 25)]
    assert reader.poll(VERSIONS)["canary"].requests == 15


def up(*states):
    """`up` of the canary targets: (instance, 0 or 1), ..."""
    return [({"__name__": "up", "job": "model-server", "arm": "canary", "instance": i}, float(v)) for i, v in states]


def test_an_outage_counts_once_however_many_polls_it_lasts():
    prom = Canned()
    outages = OutageCounter(prom)
    answers = [up(("c:8000", 1)), up(("c:8000", 0)), up(("c:8000", 0)), up(("c:8000", 0)),
               up(("c:8000", 1)), up(("c:8000", 0)), up(("c:8000", 1))]
    seen = []
    for answer in answers:
        prom.answers[OutageCounter.QUERY] = answer
        seen.append(outages.poll())
    assert seen == [0, 1, 0, 0, 0, 1, 0]


def test_each_canary_target_counts_apart_and_a_new_rollout_starts_afresh():
    prom = Canned()
    outages = OutageCounter(prom)
    prom.answers[OutageCounter.QUERY] = up(("a", 0), ("b", 1))
    assert outages.poll() == 1
    prom.answers[OutageCounter.QUERY] = up(("a", 0), ("b", 0))
    assert outages.poll() == 1
    prom.answers[OutageCounter.QUERY] = []  # a target gone from service discovery is not a restart
    assert outages.poll() == 0
    prom.answers[OutageCounter.QUERY] = up(("a", 0))
    assert outages.poll() == 1
    outages.reset()  # a canary already down when a rollout starts counts for that rollout
    assert outages.poll() == 1
