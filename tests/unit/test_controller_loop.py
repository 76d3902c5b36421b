"""The control loop (`Controller.tick`): the paths a rollout takes through it, poll by poll.

The registry, Prometheus and the clock are fakes here, and on purpose: these are unit tests of
the loop's paths (step up, promote, roll back, manual mode, metrics outage, inconclusive stage,
a new canary mid-rollout, a stale state, weight written outside a rollout), each driven to its
decision in a few polls and checked on what the loop wrote. The fakes answer exactly the calls
the loop, `Actions`, `CounterReader`, `OutageCounter` and `canary_serving` make; everything
between them (the loop, the real `Actions`, the counter arithmetic, the threshold analysis) is
the real code. The integration suites run the real MLflow, Prometheus and routers.

The last tests hold defects of loop.py found while writing these, fixed since.

The analysis is the threshold rule (deterministic and easy to count by hand) from a small config
written per test: steps 10 % then 50 %, 20 s minimum dwell, 20 labelled canary requests before
a check applies, 60 s maximum stage and outage limit, polls every 10 s of the fake clock.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import pytest
import yaml

from canary_common.registry import MODES, PHASES, RolloutState, StateConflict
from canary_controller.actions import Actions
from canary_controller.loop import Controller
from canary_controller.prometheus import MetricsUnavailable, OutageCounter
from canary_controller.serving import INFO, LOAD_ERROR
from canary_controller.settings import load_settings

T0 = 1000.0
POLL_S = 10.0


# -- fakes ------------------------------------------------------------------------------------
class FakeClock:
    """The loop's clock: epoch seconds that move only when a test says so."""

    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeRegistry:
    """The registered model's rollout state with RegistryClient's compare-and-set semantics.

    `writes` holds the loop's state writes (the changes, the generation it expected, the one
    written); `other_write` is another process writing (an admin call): it bumps the generation
    and is not in `writes`. `before_next_write`, if set, runs once just before the next write's
    generation check: another writer getting in between the loop's read and its write."""

    def __init__(self, **state):
        self.state = {
            "production_version": "1",
            "canary_version": "2",
            "weight": 10.0,
            "mode": "auto",
            "phase": "progressing",
            "reason": "rollout of version 2 started at 10%",
            "updated_at": 0.0,
            "generation": 1,
            "rollout": "2@900.000",
            "shadow_percentage": 0.0,
        }
        self.state.update(state)
        self.writes: list[dict] = []
        self.version_tags: dict[str, dict] = {}
        self.alias_moves: list[tuple[str, str]] = []
        self.before_next_write = None

    def read_state(self) -> RolloutState:
        return RolloutState(**self.state)

    def write_state(
        self,
        *,
        weight=None,
        mode=None,
        phase=None,
        reason,
        rollout=None,
        shadow_percentage=None,
        expected_generation=None,
    ) -> RolloutState:
        assert mode is None or mode in MODES, mode
        assert phase is None or phase in PHASES, phase
        if self.before_next_write is not None:
            hook, self.before_next_write = self.before_next_write, None
            hook()
        if expected_generation is not None and expected_generation != self.state["generation"]:
            raise StateConflict(
                f"the rollout state moved from generation {expected_generation} to "
                f"{self.state['generation']} ({self.state['reason']!r}); not overwriting it"
            )
        changes = {
            k: v
            for k, v in {
                "weight": weight,
                "mode": mode,
                "phase": phase,
                "reason": reason,
                "rollout": rollout,
                "shadow_percentage": shadow_percentage,
            }.items()
            if v is not None
        }
        self._apply(changes)
        self.writes.append(
            {**changes, "expected_generation": expected_generation, "generation": self.state["generation"]}
        )
        return self.read_state()

    def other_write(self, **changes) -> None:
        self._apply(changes)

    def _apply(self, changes: dict) -> None:
        self.state.update(changes, generation=self.state["generation"] + 1)

    def set_alias(self, alias: str, version: str) -> None:
        self.state[f"{alias}_version"] = str(version)
        self.alias_moves.append((alias, str(version)))

    def set_version_tags(self, version: str, tags: dict) -> None:
        self.version_tags.setdefault(str(version), {}).update(tags)

    def delete_version_tags(self, version: str, keys) -> None:
        for key in keys:
            self.version_tags.get(str(version), {}).pop(key, None)

    def get_version(self, version: str) -> dict:
        tags = self.version_tags.get(str(version), {})
        return {"version": str(version), "tags": [{"key": k, "value": v} for k, v in tags.items()]}


@dataclass(frozen=True)
class Traffic:
    """One poll interval of one arm: requests (ok + error), and labelled predictions."""

    requests: int
    errors: int = 0
    labelled: int = 0
    correct: int = 0


GOOD = Traffic(requests=10, labelled=10, correct=9)  # 90 % accurate, no errors
WRONG = Traffic(requests=10, labelled=10, correct=5)  # 50 % accurate
FAILING = Traffic(requests=10, errors=5, labelled=5, correct=5)  # half the requests fail
FEW_LABELS = Traffic(requests=10, labelled=1, correct=1)  # the labels needed never arrive
PRODUCTION = Traffic(requests=90, labelled=90, correct=81)


class FakePrometheus:
    """Prometheus's instant queries as the loop makes them, answered from cumulative counters
    per (arm, version), labelled as the router exports them: requests by status, labelled
    predictions by outcome, and a latency histogram (every successful request under 50 ms).
    `down = True` is an outage: every query raises MetricsUnavailable, as PrometheusClient does.
    A query this fake does not know fails the test (KeyError)."""

    def __init__(self, counters: dict[str, str], canary_serves: str = "2"):
        self.field_of = {query: name for name, query in counters.items()}
        self.totals: dict[tuple[str, str], Counter] = {}
        self.canary_serves = canary_serves  # the version model_server_model_info says the canary serves
        self.down = False
        self.queries: list[str] = []

    def add(self, arm: str, version: str, t: Traffic) -> None:
        c = self.totals.setdefault((arm, version), Counter())
        c.update(
            {"ok": t.requests - t.errors, "error": t.errors, "correct": t.correct, "incorrect": t.labelled - t.correct}
        )

    def instant(self, query: str) -> list[tuple[dict, float]]:
        self.queries.append(query)
        if self.down:
            raise MetricsUnavailable("fake Prometheus is down")
        if query == OutageCounter.QUERY:
            return [({"__name__": "up", "job": "model-server", "arm": "canary", "instance": "canary:8000"}, 1.0)]
        if query == f'max by (version) ({INFO}{{alias="canary"}}) == 1':
            return [({"version": self.canary_serves}, 1.0)]
        if query == f'max by (version) ({LOAD_ERROR}{{alias="canary"}}) == 1':
            return []
        return [
            row
            for (arm, version), c in self.totals.items()
            for row in self._series(
                self.field_of[query], {"model": arm, "version": version, "instance": "router:8000"}, c
            )
        ]

    @staticmethod
    def _series(name: str, labels: dict, c: Counter) -> list[tuple[dict, float]]:
        by_status = [({**labels, "status": s}, float(c[s])) for s in ("ok", "error")]
        by_outcome = [({**labels, "outcome": o}, float(c[o])) for o in ("correct", "incorrect")]
        buckets = [({**labels, "le": le}, float(c["ok"])) for le in ("0.05", "0.1", "+Inf")]
        return {
            "requests": by_status,
            "errors": by_status[1:],
            "labelled": by_outcome,
            "correct": by_outcome[:1],
            "latency_count": [(labels, float(c["ok"]))],
            "latency_fast": buckets[1:2],
            "latency_buckets": buckets,
        }[name]

    def wait_for_scrape(self, job: str, after: float, timeout: float) -> bool:
        return True


# -- the lab: one controller wired to the fakes -------------------------------------------------
CONFIG = {
    "mode": "threshold",
    "steps": [10, 50],
    "min_dwell_s": 20,
    "max_stage_s": 60,
    "on_inconclusive": "rollback",
    "outage_fallback_s": 60,
    "threshold": {
        "accuracy_threshold": 85,
        "latency_threshold_ms": 100,
        "error_threshold_pct": 5,
        "min_samples": 20,
        "window_s": None,
    },
}


class Lab:
    def __init__(self, tmp_path, state: dict, config: dict):
        path = tmp_path / "analysis.yaml"
        path.write_text(yaml.safe_dump({**CONFIG, **config}))
        self.settings = load_settings({"ANALYSIS_CONFIG": str(path), "POLL_INTERVAL_S": str(POLL_S)})
        self.clock = FakeClock()
        self.registry = FakeRegistry(**state)
        self.prom = FakePrometheus(
            dict(self.settings.analysis.counters), canary_serves=self.registry.state["canary_version"]
        )
        self.actions = Actions(self.registry, production_url=None)
        self.controller = Controller(self.settings, self.registry, self.prom, self.actions, clock=self.clock)

    def start(self) -> dict:
        """The first poll, at T0: reads the counters' baseline."""
        return self.controller.tick()

    def poll(self, canary: Traffic = GOOD, production: Traffic = PRODUCTION) -> dict:
        """One poll interval later: both arms served this traffic, then the loop polls."""
        self.clock.advance(self.settings.poll_interval_s)
        self.prom.add("canary", self.prom.canary_serves, canary)
        self.prom.add("production", self.registry.state["production_version"], production)
        return self.controller.tick()

    def decisions(self) -> list[str]:
        """The recorded decisions, oldest first."""
        return [entry["decision"] for entry in reversed(self.controller.history)]


@pytest.fixture
def make_lab(tmp_path):
    def make(config: dict | None = None, **state) -> Lab:
        return Lab(tmp_path, state, config or {})

    return make


def rolled_back(write: dict) -> bool:
    return write["weight"] == 0 and write["phase"] == "rolled_back"


# -- the paths ----------------------------------------------------------------------------------
def test_a_healthy_canary_steps_up_and_is_promoted(make_lab, monkeypatch):
    lab = make_lab()
    reg = lab.registry
    serves = {"2": False}  # what the production server's /ready would say
    monkeypatch.setattr(lab.actions, "production_serves", lambda version: serves.get(version, False))

    assert lab.start()["summary"] == "baseline read; judging from the next poll"
    first = lab.poll()  # 10 s at 10 %: too young, too few labels
    assert first["decision"] == "continue" and "Holding at 10 %" in first["summary"]
    assert reg.writes == [] and "canary.decision" in reg.version_tags["2"]  # the holding evidence

    step = lab.poll()  # 20 s, 20 labels at 90 %
    assert step["decision"] == "step_up" and step["summary"].startswith("10% -> 50%")
    assert reg.writes == [
        {"weight": 50, "phase": "progressing", "reason": reg.state["reason"], "expected_generation": 1, "generation": 2}
    ]
    assert reg.state["reason"].startswith("stepped up 10% -> 50%")
    assert json.loads(reg.version_tags["2"]["canary.decision"])["decision"] == "step_up"

    assert [lab.poll()["decision"] for _ in range(2)] == ["continue", "continue"]  # the 50 % stage's dwell
    promote = lab.poll()
    assert promote["decision"] == "promote" and "promote" in promote["summary"]
    assert reg.writes[-1] == {
        "phase": "promoting",
        "reason": promote["summary"],
        "expected_generation": 2,
        "generation": 3,
    }
    assert reg.alias_moves == [("production", "2")] and reg.state["weight"] == 50
    assert "canary.promoted_at" in reg.version_tags["2"]

    waiting = lab.poll()  # the production server still serves version 1
    assert waiting["summary"] == "promoting: waiting for the production server to serve version 2"
    assert len(reg.writes) == 2

    serves["2"] = True
    assert lab.poll()["summary"] == "promotion finished"
    assert reg.writes[-1] == {
        "weight": 0,
        "phase": "promoted",
        "reason": "version 2 promoted and serving in production",
        "expected_generation": 3,
        "generation": 4,
    }
    assert lab.decisions() == ["step_up", "promote", "promoted"]
    assert lab.poll()["summary"] == "idle: phase promoted, the canary gets no traffic"
    assert len(reg.writes) == 3


@pytest.mark.parametrize(
    "canary, why",
    [
        (WRONG, "Roll back: canary accuracy 50.0 % < 85 % over this stage (20 labelled canary requests)."),
        (FAILING, "Roll back: canary error_ratio 50.00 % > 5 % over this stage (20 canary requests)."),
    ],
    ids=["accuracy", "errors"],
)
def test_a_bad_canary_is_rolled_back(make_lab, canary, why):
    lab = make_lab()
    lab.start()
    assert lab.poll(canary)["decision"] == "continue"  # 10 samples: below min_samples
    record = lab.poll(canary)
    assert record == {"at": T0 + 20, "decision": "rollback", "summary": why}
    assert lab.registry.writes == [
        {"weight": 0, "phase": "rolled_back", "reason": why, "expected_generation": 1, "generation": 2}
    ]
    tags = lab.registry.version_tags["2"]
    assert tags["canary.rollback_reason"] == why
    assert json.loads(tags["canary.decision"])["decision"] == "rollback"
    assert lab.decisions() == ["rollback"]
    assert lab.poll(canary)["summary"].startswith("idle: phase rolled_back")


def test_manual_mode_pauses_stepping_but_still_rolls_back(make_lab):
    lab = make_lab(mode="manual")
    lab.start()
    lab.poll()
    paused = lab.poll()  # a verdict that would step up
    assert paused["decision"] == "hold"
    assert paused["summary"].startswith("would step_up but the weight was set by hand: stepping paused")
    assert lab.poll()["summary"].startswith("would step_up")
    assert lab.registry.writes == [] and lab.registry.state["weight"] == 10 and lab.decisions() == []

    # 27 of 30 correct so far; 10 more, all wrong: 27 / 40 = 67.5 % < 85 %.
    bad = lab.poll(Traffic(requests=10, labelled=10, correct=0))
    assert bad["decision"] == "rollback" and "accuracy 67.5 % < 85 %" in bad["summary"]
    (write,) = lab.registry.writes
    assert rolled_back(write) and "mode" not in write and lab.registry.state["mode"] == "manual"


def test_a_metrics_outage_holds_then_falls_back_to_production(make_lab):
    lab = make_lab()
    lab.start()
    lab.poll()
    lab.prom.down = True
    polls = [lab.poll() for _ in range(6)]  # T0 + 20 .. T0 + 70: down for 0 .. 50 s
    assert [p["decision"] for p in polls] == ["hold"] * 6
    assert polls[-1]["summary"].startswith("holding: metrics unavailable for 50s (fall back to production after 60s)")
    assert lab.decisions() == ["hold"]  # recorded once, not every poll
    assert lab.controller.history[0]["summary"] == "metrics unavailable, holding: fake Prometheus is down"
    assert lab.registry.writes == []

    fallback = lab.poll()  # down for 60 s
    reason = "no metrics for 60s (limit 60s): fell back to production"
    assert fallback["decision"] == "rollback" and fallback["summary"] == reason
    assert lab.registry.writes == [
        {"weight": 0, "phase": "rolled_back", "reason": reason, "expected_generation": 1, "generation": 2}
    ]
    assert lab.decisions() == ["hold", "rollback"]


def test_metrics_back_after_a_short_outage_judges_the_traffic_served_meanwhile(make_lab):
    lab = make_lab()
    lab.start()
    lab.poll()  # 10 labels judged
    lab.prom.down = True
    assert [lab.poll()["decision"] for _ in range(3)] == ["hold"] * 3  # T0 + 20 .. T0 + 40
    lab.prom.down = False
    back = lab.poll()  # T0 + 50: the counters' baseline of T0 + 10 still holds: 40 more labels
    assert lab.decisions() == ["hold", "metrics_back", "step_up"]
    assert lab.controller.history[1]["summary"] == "Prometheus answers again after 30s"
    assert back["decision"] == "step_up" and "after 50 s at 10 %" in back["summary"]
    assert lab.controller.outage_since is None
    assert [w["weight"] for w in lab.registry.writes] == [50]


@pytest.mark.parametrize("policy", ["hold", "rollback"])
def test_an_inconclusive_stage_holds_or_rolls_back_by_policy(make_lab, policy):
    lab = make_lab({"on_inconclusive": policy})
    lab.start()
    # One label per poll: the 20 the accuracy check needs do not come within max_stage_s (60 s).
    assert [lab.poll(FEW_LABELS)["decision"] for _ in range(6)] == ["continue"] * 6  # age 10 .. 60 s
    record = lab.poll(FEW_LABELS)  # age 70 s > 60 s
    summary = (
        f"Inconclusive: stage at 10 % ran past max_stage_s (60 s); policy: {policy}: "
        "accuracy: 7 of 20 labelled canary requests needed before the check applies."
    )
    if policy == "hold":
        assert record == {"at": T0 + 70, "decision": "hold", "summary": f"inconclusive, holding: {summary}"}
        assert [lab.poll(FEW_LABELS)["decision"] for _ in range(3)] == ["hold"] * 3
        assert lab.registry.writes == [] and lab.decisions() == ["hold"]  # recorded once per stage
    else:
        assert record == {"at": T0 + 70, "decision": "rollback", "summary": f"inconclusive: {summary}"}
        (write,) = lab.registry.writes
        assert rolled_back(write) and write["reason"] == f"inconclusive: {summary}"
        assert lab.decisions() == ["rollback"]


def test_a_new_canary_version_mid_rollout_is_judged_afresh(make_lab):
    lab = make_lab()
    lab.start()
    assert lab.poll(WRONG)["decision"] == "continue"  # version 2: 10 labels at 50 %, not yet judged
    old_key, old_analysis = lab.controller.rollout_key, lab.controller.analysis

    lab.registry.set_alias("canary", "3")  # someone deploys version 3 over the rollout
    loading = lab.poll(WRONG)  # the canary server still serves version 2
    assert loading["summary"] == (
        "holding: the canary model server serves version 2, not yet version 3; judging from when it does"
    )
    assert lab.controller.rollout_key == ("3", "1", "2@900.000") != old_key
    assert lab.controller.analysis is not old_analysis
    assert lab.controller.last_verdict is None

    lab.prom.canary_serves = "3"
    assert lab.poll()["summary"] == "baseline read; judging from the next poll"
    fresh = lab.poll()  # version 3's 10 labels at 90 %; with version 2's 20 wrong ones it would roll back
    assert fresh["decision"] == "continue"
    assert "accuracy: 10 of 20 labelled canary requests needed" in fresh["summary"]
    assert lab.registry.writes == [] and lab.decisions() == []
    assert lab.controller.stage_started == T0 + 30  # the stage's dwell restarts with the new version


def test_a_new_rollout_of_the_same_version_is_judged_afresh(make_lab):
    lab = make_lab()
    lab.start()
    lab.poll(WRONG)
    old_analysis = lab.controller.analysis
    lab.registry.other_write(rollout="2@1015.000", reason="redeploying version 2")
    assert lab.poll(WRONG)["summary"] == "baseline read; judging from the next poll"
    assert lab.controller.rollout_key == ("2", "1", "2@1015.000")
    assert lab.controller.analysis is not old_analysis
    fresh = lab.poll()
    assert fresh["decision"] == "continue" and "10 of 20 labelled" in fresh["summary"]
    assert lab.registry.writes == []


def test_a_stale_state_is_not_acted_on(make_lab):
    lab = make_lab()
    reg = lab.registry
    lab.start()
    lab.poll()
    tags_before = dict(reg.version_tags["2"])
    # Between the loop's read and its step-up write, a person pauses the rollout.
    reg.before_next_write = lambda: reg.other_write(mode="manual", reason="paused by hand")
    stale = lab.poll()
    assert stale["decision"] == "hold"
    assert stale["summary"].startswith("not acting on a stale state: the rollout state moved from generation 1 to 2")
    assert stale["summary"].endswith("judging the new state next poll")
    assert reg.writes == [] and reg.version_tags["2"] == tags_before and lab.decisions() == []
    assert reg.state["weight"] == 10 and reg.state["generation"] == 2

    after = lab.poll()  # the same evidence still says step up, but the new state is manual
    assert after["summary"].startswith("would step_up but the weight was set by hand")
    assert lab.controller.last_state.generation == 2 and reg.writes == []
    bad = lab.poll(Traffic(requests=10, labelled=10, correct=0))
    assert bad["decision"] == "rollback"
    assert reg.writes[-1]["expected_generation"] == 2


@pytest.mark.parametrize("phase", ["rolled_back", "promoted", "idle"])
def test_weight_outside_a_rollout_is_watched_as_a_manual_rollout(make_lab, phase):
    lab = make_lab(phase=phase, weight=20.0, reason="set by hand", generation=7)
    record = lab.start()
    assert record["summary"] == "baseline read; judging from the next poll"
    reason = (
        f"the canary (version 2) gets 20% of traffic in phase {phase}: judged as a manual rollout with a fresh analysis"
    )
    (write,) = lab.registry.writes
    new_rollout = write.pop("rollout")
    assert write == {
        "phase": "progressing",
        "mode": "manual",
        "reason": reason,
        "expected_generation": 7,
        "generation": 8,
    }
    assert new_rollout.startswith("2@") and new_rollout != "2@900.000"
    assert lab.decisions() == ["watch"] and lab.controller.history[0]["summary"] == reason
    assert lab.controller.rollout_key == ("2", "1", new_rollout)
    assert lab.controller.last_state.phase == "progressing"

    lab.poll()
    assert lab.poll()["summary"].startswith("would step_up")  # manual: no stepping
    assert len(lab.registry.writes) == 1 and lab.decisions() == ["watch"]


# -- defects found while writing these tests, fixed since ----------------------------------------
def test_an_outage_that_ended_while_idle_is_not_charged_to_the_next_rollout(make_lab):
    lab = make_lab()
    lab.start()
    lab.poll()
    lab.prom.down = True
    assert [lab.poll()["decision"] for _ in range(7)][-1] == "rollback"  # fell back after 60 s
    lab.prom.down = False
    lab.poll()  # idle: Prometheus answers again (an idle poll does not ask it)
    lab.clock.advance(3600)
    lab.registry.other_write(weight=10.0, phase="progressing", rollout="2@5000.000", reason="a new rollout")
    lab.prom.down = True  # one failed query on the new rollout's first poll
    assert lab.poll()["decision"] == "hold"  # today: rollback, "no metrics for 3680s (limit 60s)"


def test_a_rollback_refused_as_stale_leaves_the_version_untagged(make_lab):
    lab = make_lab()
    lab.start()
    lab.poll(WRONG)
    lab.registry.before_next_write = lambda: lab.registry.other_write(reason="an operator meanwhile")
    record = lab.poll(WRONG)
    assert record["summary"].startswith("not acting on a stale state")
    assert lab.registry.writes == [] and "canary.rollback_reason" not in lab.registry.version_tags.get("2", {})


def test_a_failed_production_alias_move_is_made_again_before_promotion_ends(make_lab):
    lab = make_lab(phase="promoting", weight=50.0)  # the alias move of start_promotion failed
    record = lab.start()
    assert record["summary"] == "promoting: moved the production alias to version 2"
    assert lab.registry.alias_moves == [("production", "2")] and lab.registry.writes == []
    assert lab.poll()["summary"] == "promotion finished"
    assert lab.registry.writes[-1]["phase"] == "promoted"


def test_a_registry_that_refuses_a_write_holds_the_poll(make_lab):
    from canary_common.registry import RegistryError

    lab = make_lab()
    lab.start()
    lab.poll(WRONG)

    def refuse():
        raise RegistryError("MLflow registry POST registered-models/set-tag: HTTP 503")

    lab.registry.before_next_write = refuse
    record = lab.poll(WRONG)
    assert record["decision"] == "hold" and record["summary"].startswith("holding: the registry refused a write")
    assert lab.poll(WRONG)["decision"] == "rollback"  # the next poll decides again


def test_people_are_told_the_state_a_decision_made(make_lab, monkeypatch):
    """The webhook's state is the one after the action: a rollback says weight 0, rolled back."""
    told = []
    monkeypatch.setattr(
        "canary_controller.loop.notify.publish",
        lambda settings, state, entry: told.append((entry["decision"], state.phase, state.weight)),
    )
    lab = make_lab()
    lab.start()
    lab.poll(WRONG)
    lab.poll(WRONG)
    assert told == [("rollback", "rolled_back", 0)], told
