"""Following the registry and failing closed, with a fake registry client and a fake clock."""

from canary_common.registry import RegistryError, RolloutState
from canary_router.control.state import StateFollower


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class FakeRegistry:
    def __init__(self):
        self.state = RolloutState("1", "2", 30.0, "auto", "progressing")
        self.down = False

    def read_state(self, default_weight=0.0):
        if self.down:
            raise RegistryError("unreachable")
        return self.state


def test_follows_and_fails_closed_then_recovers():
    clock, reg = FakeClock(), FakeRegistry()
    f = StateFollower(reg, poll_s=1, fail_closed_after_s=30, clock=clock)
    assert not f.ready and f.effective_weight() == 0.0  # nothing known yet: production only
    assert f.refresh() and f.ready and f.effective_weight() == 30.0
    reg.down = True
    clock.now += 29
    assert not f.refresh() and f.effective_weight() == 30.0 and not f.fail_closed
    clock.now += 2
    assert f.fail_closed and f.effective_weight() == 0.0
    reg.down = False
    assert f.refresh() and not f.fail_closed and f.effective_weight() == 30.0


def test_never_read_fails_closed_after_the_limit():
    clock, reg = FakeClock(), FakeRegistry()
    reg.down = True
    f = StateFollower(reg, fail_closed_after_s=5, clock=clock)
    f.refresh()
    assert not f.fail_closed
    clock.now += 6
    assert f.fail_closed and not f.ready


def test_no_canary_alias_means_all_production():
    clock, reg = FakeClock(), FakeRegistry()
    reg.state = RolloutState("1", None, 50.0, "auto", "idle")
    f = StateFollower(reg, clock=clock)
    f.refresh()
    assert f.effective_weight() == 0.0


def test_a_crashing_client_does_not_kill_the_poll():
    class Broken:
        def read_state(self, default_weight=0.0):
            raise KeyError("registered_model")

    f = StateFollower(Broken(), clock=FakeClock())
    assert f.refresh() is False and "KeyError" in f.last_error
