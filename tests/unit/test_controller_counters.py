"""The controller's increments from raw counters: resets, new series, vanished series, versions.

The Prometheus client is replaced by a table of canned query answers here (the arithmetic is
what is under test); the integration suite reads a real Prometheus.
"""

import pytest

from canary_controller.prometheus import CounterReader, OutageCounter

COUNTERS = {
    "requests": "req",
    "errors": "err",
    "labelled": "lab",
    "correct": "cor",
    "latency_count": "lc",
    "latency_fast": "lf",
    "latency_buckets": "lb",
}


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
    prom.answers["lb"] = [
        series("canary", "2", 0, le="0.1"),
        series("canary", "2", 0, le="+Inf"),
        series("canary", "2", 0, le="0.1", instance="r2"),
    ]
    reader.poll(VERSIONS)
    prom.answers["lb"] = [
        series("canary", "2", 8, le="0.1"),
        series("canary", "2", 10, le="+Inf"),
        series("canary", "2", 4, le="0.1", instance="r2"),
    ]
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
    answers = [
        up(("c:8000", 1)),
        up(("c:8000", 0)),
        up(("c:8000", 0)),
        up(("c:8000", 0)),
        up(("c:8000", 1)),
        up(("c:8000", 0)),
        up(("c:8000", 1)),
    ]
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


# ---------------------------------------------------------------- the abs-error histogram (regression)


def abs_error_series(model, version, counts, instance="r1", spell=None):
    """One replica's cumulative abs-error buckets: counts per contract bound (+Inf last), le
    spelled as prometheus_client writes it ("0.5", "1.0", "10000.0", "+Inf") unless `spell`."""
    from canary_common.regression import ABS_ERROR_BUCKETS

    spell = spell or (lambda b: "+Inf" if b == float("inf") else repr(float(b)))
    return [series(model, version, float(n), instance=instance, le=spell(b)) for b, n in zip(ABS_ERROR_BUCKETS, counts)]


REG_COUNTERS = {**COUNTERS, "abs_error_buckets": "ae"}


def reg_reader():
    prom = Canned()
    prom.answers["ae"] = []
    return prom, CounterReader(prom, REG_COUNTERS)


def test_abs_error_buckets_are_summed_per_contract_bound():
    from canary_common.regression import ABS_ERROR_BUCKETS

    prom, reader = reg_reader()
    zero = [0] * 23
    prom.answers["ae"] = (
        abs_error_series("canary", "2", zero)
        + abs_error_series("canary", "2", zero, instance="r2")
        + abs_error_series("production", "1", zero)
        + abs_error_series("canary", "3", zero)
    )
    assert reader.poll(VERSIONS) is None
    ramp = [min(i, 10) for i in range(23)]  # cumulative: 0, 1, ..., 10, 10, ...
    # r2 spelled the Go way ("1", "1e+04"): the same bounds.
    go = lambda b: "+Inf" if b == float("inf") else format(b, "g")  # noqa: E731
    prom.answers["ae"] = (
        abs_error_series("canary", "2", ramp)
        + abs_error_series("canary", "2", ramp, instance="r2", spell=go)
        + abs_error_series("production", "1", [2 * n for n in ramp])
        + abs_error_series("canary", "3", [100] * 23)
    )  # another version: not counted
    inc = reader.poll(VERSIONS)
    canary = dict(inc["canary"].abs_error_buckets)
    assert set(canary) == {b for b, n in zip(ABS_ERROR_BUCKETS, ramp) if n}  # zero increments dropped
    assert canary[1.0] == 2 * ramp[9] and canary[float("inf")] == 20
    assert dict(inc["production"].abs_error_buckets)[0.5] == 2 * ramp[8]
    assert inc["canary"].latency_buckets == ()  # the latency histogram is apart


def test_abs_error_bounds_outside_the_contract_are_refused():
    from canary_controller.prometheus import MetricsUnavailable

    prom, reader = reg_reader()
    prom.answers["ae"] = abs_error_series("canary", "2", [0] * 23)
    reader.poll(VERSIONS)
    prom.answers["ae"] = abs_error_series("canary", "2", [1] * 23) + [series("canary", "2", 1, le="0.3")]
    with pytest.raises(
        MetricsUnavailable,
        match=r"ae: bucket bound\(s\) le=0.3 are not in the contract's "
        r"ABS_ERROR_BUCKETS \(0.001, .*\); the router must export "
        r"canary_router_prediction_abs_error with exactly these buckets",
    ):
        reader.poll(VERSIONS)
    prom.answers["ae"] = abs_error_series("canary", "2", [1] * 23)[:-3] + abs_error_series("canary", "2", [1] * 23)[-1:]
    with pytest.raises(MetricsUnavailable, match=r"le=5000, 10000 are missing from the contract's"):
        reader.poll(VERSIONS)
    # The baseline was left alone: a good answer counts from the first poll's values.
    prom.answers["ae"] = abs_error_series("canary", "2", [4] * 23)
    assert dict(reader.poll(VERSIONS)["canary"].abs_error_buckets)[float("inf")] == 4


def test_the_histogram_is_queried_only_for_regression_configs():
    from canary_controller.analysis import load_config
    from canary_controller.prometheus import shadow_counters

    class Recorder:
        def __init__(self):
            self.queries = []

        def instant(self, query):
            self.queries.append(query)
            return []

    for cfg, expect in ((load_config(None), False), (load_config({"metrics": [{"kind": "mae", "clip": 5}]}), True)):
        prom = Recorder()
        CounterReader(prom, dict(cfg.counters)).poll(VERSIONS)
        assert ("canary_router_prediction_abs_error_bucket" in prom.queries) is expect
        shadow = shadow_counters(dict(cfg.counters))
        if expect:
            assert shadow["abs_error_buckets"] == (
                'label_replace(canary_router_shadow_prediction_abs_error_bucket, "model", "canary", "", "")'
            )


def test_the_controller_judges_a_regression_model_with_no_change_of_its_own(tmp_path):
    """The loop as it is: a regression analysis file, a router exporting the abs-error histogram,
    a canary with errors 1.5 x production's. CounterReader reads the histogram, the analysis
    rolls back, and the summary speaks of the regression metric."""
    import yaml

    from canary_common.registry import RolloutState
    from canary_common.regression import ABS_ERROR_BUCKETS
    from canary_controller.loop import Controller
    from canary_controller.settings import load_settings

    path = tmp_path / "analysis.yaml"
    path.write_text(
        yaml.safe_dump(
            {"metrics": [{"name": "mae", "kind": "mae", "clip": 5}, {"name": "availability", "kind": "availability"}]}
        )
    )
    settings = load_settings({"ANALYSIS_CONFIG": str(path)})
    assert settings.analysis.counters["abs_error_buckets"] == "canary_router_prediction_abs_error_bucket"

    # Per poll: production 600 predictions, canary 150, errors spread over 0.25 .. 5 (canary worse).
    def cumulative(n, shares):
        return [n * sum(s for b, s in shares.items() if b <= le) for le in ABS_ERROR_BUCKETS]

    good = {0.25: 0.4, 0.5: 0.3, 1.0: 0.2, 2.5: 0.1}
    bad = {0.5: 0.2, 1.0: 0.3, 2.5: 0.3, 5.0: 0.2}
    per_poll = {("production", "1"): (600, good), ("canary", "2"): (150, bad)}

    class Router:
        def __init__(self):
            self.polls = 0

        def instant(self, query):
            if query == "canary_router_prediction_abs_error_bucket":
                self.polls += 1  # one histogram query per tick
                return [
                    series(arm, v, self.polls * c, le="+Inf" if le == float("inf") else repr(le))
                    for (arm, v), (n, shares) in per_poll.items()
                    for le, c in zip(ABS_ERROR_BUCKETS, cumulative(n, shares))
                ]
            if query == "canary_router_requests_total":
                return [series(arm, v, self.polls * n) for (arm, v), (n, _) in per_poll.items()]
            return []

    class Registry:
        def read_state(self):
            return RolloutState(
                production_version="1", canary_version="2", weight=20.0, mode="auto", phase="progressing"
            )

    class Actions:
        rolled = None

        def rollback(self, state, reason, evidence=None):
            self.rolled = (reason, evidence)

        def __getattr__(self, name):
            return lambda *args, **kwargs: None

    now = iter(float(t) for t in range(1000, 100000, 15))
    actions = Actions()
    c = Controller(settings, Registry(), Router(), actions, clock=lambda: next(now))
    for _ in range(4):
        c.tick()
        if actions.rolled:
            break
    reason, evidence = actions.rolled
    assert reason.startswith(
        "Roll back (from-start test): mae is worse on the canary (clipped mean absolute error "
        "(errors clipped at 5): canary "
    )
    mae = evidence["metrics"][0]
    # Each error at its bucket's upper bound: 0.4 x 0.25 + 0.3 x 0.5 + 0.2 x 1 + 0.1 x 2.5 = 0.7.
    assert mae["kind"] == "mae" and mae["regression"]["clipped_mae"] == {"canary": 2.15, "production": 0.7}
