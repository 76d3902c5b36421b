"""Outlier ejection of the canary: a fake clock and a scripted probe, the probe run inline."""

import threading

import pytest

from canary_router.datapath.ejection import CLOSED, EJECTED, Ejector


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def make(answers, **kwargs):
    clock = Clock()
    probes = []

    def probe():
        probes.append(clock.now)
        return answers.pop(0)

    kwargs = {"consecutive": 3, "base_s": 2.0, "max_s": 60.0, **kwargs}
    return Ejector(probe, clock=clock, background=False, **kwargs), clock, probes


def fail(ejector, n):
    for _ in range(n):
        ejector.failure()


def test_consecutive_failures_eject_and_a_success_in_between_resets_the_count():
    ejector, _, _ = make([])
    fail(ejector, 2)
    ejector.success()
    fail(ejector, 2)
    assert ejector.allow() and ejector.describe()["state"] == CLOSED
    ejector.failure()
    assert not ejector.allow()
    assert ejector.describe() == {"state": EJECTED, "ejections": 1, "consecutive_failures": 0, "ejected_for_s": 2.0}


def test_a_refused_connection_or_timeout_ejects_at_once():
    ejector, _, _ = make([])
    ejector.failure(at_once=True)
    assert not ejector.allow() and ejector.describe()["state"] == EJECTED and ejector.ejections == 1


def test_no_traffic_during_the_backoff_then_one_probe_brings_it_back():
    ejector, clock, probes = make([True])
    fail(ejector, 3)
    clock.now += 1.9
    assert not ejector.allow() and probes == []
    clock.now += 0.2
    assert ejector.allow()
    assert probes == [pytest.approx(102.1)]
    assert ejector.allow() and len(probes) == 1


def test_a_server_that_stays_down_is_probed_every_base_s_and_let_in_once_back():
    ejector, clock, probes = make([False] * 5 + [True], max_s=20.0)
    fail(ejector, 3)
    ejected_at = clock.now
    while len(probes) < 6:
        clock.now += 0.5
        ejector.allow()
    times = [ejected_at, *probes]
    assert [b - a for a, b in zip(times, times[1:])] == [2.0] * 6  # no backoff grown while it was down
    assert ejector.allow() and ejector.ejections == 1


def test_a_flapping_server_is_ejected_for_longer_each_time_up_to_max_s():
    ejector, clock, _ = make([True] * 8, max_s=20.0)
    backoffs = []
    for _ in range(7):
        fail(ejector, 3)
        backoffs.append(ejector.describe()["ejected_for_s"])
        clock.now += backoffs[-1]
        assert ejector.allow()  # the probe lets it in; it fails again at once
    assert backoffs == [2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0]
    assert ejector.ejections == 7


def test_failing_again_soon_after_coming_back_ejects_for_longer():
    ejector, clock, _ = make([True, True])
    fail(ejector, 3)
    clock.now += 2.0
    assert ejector.allow()
    fail(ejector, 3)
    assert ejector.describe()["ejected_for_s"] == 4.0


def test_healthy_for_max_s_starts_the_backoff_from_the_base_again():
    ejector, clock, _ = make([True, True], max_s=10.0)
    fail(ejector, 3)
    clock.now += 2.0
    assert ejector.allow()
    clock.now += 10.0
    fail(ejector, 3)
    assert ejector.describe()["ejected_for_s"] == 2.0


def test_a_probe_that_raises_counts_as_down():
    def broken():
        raise RuntimeError("boom")

    clock = Clock()
    ejector = Ejector(broken, consecutive=1, base_s=1.0, max_s=5.0, clock=clock, background=False)
    ejector.failure()
    clock.now += 1.0
    assert not ejector.allow()
    assert ejector.describe()["state"] == EJECTED and ejector.ejections == 1
    assert ejector.describe()["ejected_for_s"] == 1.0  # probed again after base_s


def test_zero_consecutive_never_ejects():
    ejector, _, _ = make([], consecutive=0)
    fail(ejector, 50)
    assert ejector.allow() and ejector.ejections == 0


def test_the_background_probe_runs_once_and_requests_meanwhile_stay_on_production():
    release = threading.Event()
    calls = []

    def slow_probe():
        calls.append(1)
        release.wait(5)
        return True

    clock = Clock()
    ejector = Ejector(slow_probe, consecutive=1, base_s=1.0, clock=clock)
    ejector.failure()
    clock.now += 1.0
    assert not any(ejector.allow() for _ in range(20))  # probing: still out, no client waits
    release.set()
    for _ in range(100):
        if ejector.allow():
            break
        threading.Event().wait(0.01)
    assert ejector.allow() and calls == [1]


def test_the_prober_lets_the_server_in_without_waiting_for_a_request():
    """A worker that gets no traffic while production is out must not turn its first client
    away once production is back: the probe runs when the backoff ends, requests or not."""
    answers = [False, True]
    clock = Clock()
    ejector = Ejector(lambda: answers.pop(0), consecutive=3, base_s=1.0, clock=clock)
    ejector.failure(at_once=True)
    assert ejector.describe()["state"] == EJECTED
    clock.now += 1.0  # the first probe fails: out for base_s more
    for _ in range(200):
        if ejector.describe()["ejected_for_s"] == 1.0 and not answers[1:]:
            break
        threading.Event().wait(0.01)
    clock.now += 1.0
    for _ in range(200):
        if ejector.describe()["state"] == CLOSED:
            break
        threading.Event().wait(0.01)
    assert ejector.describe()["state"] == CLOSED and answers == []


def test_reset_lets_the_server_in_again_with_the_first_backoff():
    ejector, clock, _ = make([True, False])
    fail(ejector, 3)
    clock.now += 2.0
    assert ejector.allow()  # back
    fail(ejector, 3)  # and out again at once: 4 s this time
    clock.now += 4.0
    assert not ejector.allow() and ejector.describe()["ejected_for_s"] == 2.0  # the probe failed
    ejector.reset()
    assert ejector.allow() and ejector.describe()["state"] == CLOSED
    fail(ejector, 3)
    assert ejector.describe()["ejected_for_s"] == 2.0
