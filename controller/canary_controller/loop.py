"""The control loop: one poll reads the state and the counters, asks the analysis, and acts.

The controller knows the rollout (stages, modes, promotion, outages); the analysis knows the
statistics; the metrics provider knows Prometheus; the registry knows where state lives.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time

from canary_common import contracts
from canary_common.registry import (
    ROLLING_PHASES,
    RegistryClient,
    RegistryError,
    RolloutState,
    StateConflict,
    new_rollout_id,
)

from . import labcheck, notify, telemetry
from .actions import Actions
from .analysis import build_analysis
from .analysis.base import Analysis, Decision, Poll, Verdict
from .prometheus import CounterReader, MetricsUnavailable, OutageCounter, PrometheusClient, shadow_counters
from .serving import FAILED, LOADING, canary_serving
from .settings import Settings
from .timeline import Timeline

log = logging.getLogger("canary.controller")
HOLD_TAG_EVERY_S = 30.0
# Decisions whose action writes the rollout state (under the lock: the one writer's own write).
STATE_CHANGING = frozenset({"rollback", "step_up", "promote", "promoted"})


class Controller:
    def __init__(
        self,
        settings: Settings,
        registry: RegistryClient,
        prometheus: PrometheusClient,
        actions: Actions,
        clock=time.time,
    ):
        self.settings = settings
        self.config = settings.analysis
        self.registry = registry
        self.prometheus = prometheus
        self.actions = actions
        self.clock = clock
        self.reader = CounterReader(prometheus, dict(self.config.counters))
        self.shadow_reader = CounterReader(prometheus, shadow_counters(dict(self.config.counters)))
        self.outages = OutageCounter(prometheus)
        self.lock = threading.RLock()
        self.analysis: Analysis | None = None
        self.rollout_key: tuple | None = None
        self.stage_weight: tuple | None = None  # ("live", weight %) or ("shadow", shadow %)
        self.stage_started: float | None = None
        self.outage_since: float | None = None
        self.last_verdict: Verdict | None = None
        self.last_verdict_at: float | None = None
        self.last_state: RolloutState | None = None
        self.last_note = "starting"
        self.history: collections.deque = collections.deque(maxlen=50)
        self.timeline = Timeline(clock=clock)  # what each poll saw, for the live page
        self._stop = threading.Event()
        self._last_hold_tag = 0.0
        self._held_inconclusive: tuple | None = None  # the stage whose inconclusive hold was recorded

    # -- the loop -------------------------------------------------------------------------
    def run_forever(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # the loop must survive anything one poll throws
                log.exception("poll failed")
            self._stop.wait(max(0.0, self.settings.poll_interval_s - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()

    def next_step(self, weight: float) -> float | None:
        return next((s for s in self.config.steps if s > weight + 1e-9), None)

    def tick(self, fresh_after: float | None = None) -> dict:
        """One poll. `fresh_after`: first wait for a router scrape newer than this epoch time."""
        with self.lock:
            if fresh_after is not None:
                self.prometheus.wait_for_scrape(self.settings.scrape_job, fresh_after, self.settings.scrape_wait_s)
            try:
                record = self._tick()
            except StateConflict as exc:  # written by another process meanwhile: judge that next
                record = self._note(f"not acting on a stale state: {exc}; judging the new state next poll")
            except RegistryError as exc:  # a write failed: nothing decided is lost, the next poll decides again
                record = self._note(f"holding: the registry refused a write ({exc})")
            self.timeline.add(self.last_state, self.last_verdict, self.last_verdict_at, record)
            return record

    def _tick(self) -> dict:
        now = self.clock()
        try:
            state = self.registry.read_state()
        except RegistryError as exc:
            return self._note(f"holding: registry unreachable ({exc})")
        self.last_state = state
        telemetry.export_state(state)

        if state.phase == "promoting":
            return self._promoting(state)
        shadow = state.shadow_live
        if not state.canary_version or (state.weight <= 0 and not shadow):
            # Idle polls do not ask Prometheus: an outage must not be charged to the next rollout.
            self.analysis, self.rollout_key, self.outage_since = None, None, None
            self._reset_readers()
            return self._note(f"idle: phase {state.phase}, the canary gets no traffic")
        if state.phase not in ROLLING_PHASES:
            state = self._watch(state)
        self._follow_rollout(state)
        serving = canary_serving(self.prometheus, state.canary_version)
        if serving.status == FAILED:
            reason = f"Roll back: {serving.detail}."
            self.actions.rollback(state, reason, None)
            return self.record("rollback", reason)
        if serving.status == LOADING:  # judge the version only on traffic it served
            self.reader.reset()
            self.shadow_reader.reset()
            self.stage_weight = None
            return self._note(f"holding: {serving.detail}; judging from when it does")
        self._follow_stage(state, shadow, now)
        try:
            increments = self._increments(state, shadow)
            restarts = self.outages.poll()
        except MetricsUnavailable as exc:
            return self._outage(state, now, exc)
        if self.outage_since is not None:
            self.record("metrics_back", f"Prometheus answers again after {now - self.outage_since:.0f}s")
            self.outage_since = None
        telemetry.PROMETHEUS_UP.set(1)
        if increments is None:
            return self._note("baseline read; judging from the next poll")

        # A shadow poll's live weight (0) differs from its stage's share, so the guards, which
        # compare counts with the share, skip it: copies may be dropped by design.
        self.analysis.observe(
            Poll(
                at=now,
                canary=increments["canary"],
                production=increments["production"],
                weight=state.weight / 100.0,
                canary_restarts=restarts,
            )
        )
        verdict = self.analysis.verdict(now)
        self.last_verdict, self.last_verdict_at = verdict, now
        telemetry.export_verdict(verdict)
        if shadow and verdict.decision is not Decision.ROLLBACK:
            return self._note(
                f"shadow at {state.shadow_percentage:g}%: judging the canary's copies; {verdict.summary}",
                decision="continue",
            )
        return self._act(state, verdict)

    def _promoting(self, state: RolloutState) -> dict:
        """A promotion in progress: the alias first, then wait for production to serve it."""
        if state.production_version != state.canary_version:  # the alias move failed: again
            self.registry.set_alias("production", state.canary_version)
            return self._note(f"promoting: moved the production alias to version {state.canary_version}")
        if self.actions.production_serves(state.canary_version):
            self.actions.finish_promotion(state)
            self.record("promoted", f"version {state.canary_version} serves production; canary weight 0")
            return self._note("promotion finished", decision="promoted")
        return self._note(f"promoting: waiting for the production server to serve version {state.canary_version}")

    def _reset_readers(self) -> None:
        self.reader.reset()
        self.shadow_reader.reset()
        self.outages.reset()

    def _follow_rollout(self, state: RolloutState) -> None:
        """A new canary version, production version or rollout id: a fresh analysis."""
        key = (state.canary_version, state.production_version, state.rollout)
        if key != self.rollout_key:
            self.analysis = build_analysis(self.config)
            self.rollout_key, self.stage_weight = key, None
            self._reset_readers()
            self.last_verdict = None

    def _follow_stage(self, state: RolloutState, shadow: bool, now: float) -> None:
        """A new weight (or shadow share): a new stage of the analysis."""
        # In shadow the canary's share of the calls is the copies' share of all backend calls.
        stage = ("shadow", state.shadow_percentage) if shadow else ("live", state.weight)
        if stage != self.stage_weight:
            share = state.shadow_percentage / (100.0 + state.shadow_percentage) if shadow else state.weight / 100.0
            self.analysis.start_stage(share, now, final=not shadow and self.next_step(state.weight) is None)
            self.stage_weight, self.stage_started = stage, now

    def _increments(self, state: RolloutState, shadow: bool):
        """Per-arm increments of this poll; in shadow the canary's are its copies' counters."""
        versions = {"production": state.production_version, "canary": state.canary_version}
        live = self.reader.poll(versions)
        if not shadow:
            return live
        copies = self.shadow_reader.poll(versions)
        if live is None or copies is None:
            return None
        return {"production": live["production"], "canary": copies["canary"]}

    def _watch(self, state: RolloutState) -> RolloutState:
        """The canary gets traffic outside a rollout (a weight or shadow share written after a
        rollback or a promotion): judge it as a manual rollout with a fresh analysis, and say so."""
        what = f"{state.weight:g}% of traffic" if state.weight > 0 else f"{state.shadow_percentage:g}% shadow copies"
        reason = (
            f"the canary (version {state.canary_version}) gets {what} in phase {state.phase}: "
            "judged as a manual rollout with a fresh analysis"
        )
        state = self.registry.write_state(
            phase="progressing",
            mode="manual",
            reason=reason,
            rollout=new_rollout_id(state.canary_version),
            expected_generation=state.generation,
        )
        self.record("watch", reason)
        self.last_state = state
        return state

    # -- decisions ------------------------------------------------------------------------
    def _act(self, state: RolloutState, verdict: Verdict) -> dict:
        evidence = verdict.as_dict()
        d = verdict.decision
        if d is Decision.ROLLBACK:
            self.actions.rollback(state, verdict.summary, evidence)
            return self.record("rollback", verdict.summary)
        if d is Decision.INCONCLUSIVE:
            if self.config.on_inconclusive == "rollback":
                reason = f"inconclusive: {verdict.summary}"
                self.actions.rollback(state, reason, evidence)
                return self.record("rollback", reason)
            # Told once per stage; the next polls hold quietly (the history keeps room for decisions).
            held = (self.rollout_key, self.stage_weight)
            if self._held_inconclusive == held:
                return self._note(f"inconclusive, holding: {verdict.summary}")
            self._held_inconclusive = held
            return self.record("hold", f"inconclusive, holding: {verdict.summary}")
        if d in (Decision.STEP_UP, Decision.PROMOTE):
            if state.mode == "manual":
                return self._note(
                    f"would {d.value} but the weight was set by hand: stepping paused "
                    f"(canaryctl resume hands it back). {verdict.summary}"
                )
            nxt = self.next_step(state.weight)
            if d is Decision.PROMOTE or nxt is None:
                self.actions.start_promotion(state, verdict.summary, evidence)
                return self.record("promote", verdict.summary)
            self.actions.set_weight(
                nxt, f"stepped up {state.weight:g}% -> {nxt:g}%: {verdict.summary}", evidence, state
            )
            return self.record("step_up", f"{state.weight:g}% -> {nxt:g}%: {verdict.summary}")
        self._tag_hold(state, evidence)
        return self._note(verdict.summary, decision="continue")

    def _tag_hold(self, state: RolloutState, evidence: dict) -> None:
        """While holding, keep the version's evidence in MLflow fresh, without writing every poll."""
        now = self.clock()
        if now - self._last_hold_tag < HOLD_TAG_EVERY_S:
            return
        self._last_hold_tag = now
        try:
            self.actions.tag_evidence(state, evidence)
        except RegistryError as exc:
            log.warning("could not tag the holding evidence: %s", exc)

    def _outage(self, state: RolloutState, now: float, exc: Exception) -> dict:
        telemetry.PROMETHEUS_UP.set(0)
        if self.outage_since is None:
            self.outage_since = now
            self.record("hold", f"metrics unavailable, holding: {exc}")
        down_for = now - self.outage_since
        limit = self.config.outage_fallback_s
        if state.weight > 0 and down_for >= limit:
            reason = f"no metrics for {down_for:.0f}s (limit {limit:g}s): fell back to production"
            self.actions.rollback(state, reason)
            return self.record("rollback", reason)
        return self._note(
            f"holding: metrics unavailable for {down_for:.0f}s (fall back to production after {limit:g}s): {exc}",
            decision="hold",
        )

    def record(self, decision: str, summary: str) -> dict:
        entry = {"at": self.clock(), "decision": decision, "summary": summary}
        self.history.appendleft(entry)
        telemetry.DECISIONS.labels(decision=decision).inc()
        log.info("%s: %s", decision, summary)
        self.last_note = summary
        if decision in STATE_CHANGING:  # people are told the state the decision made, not the one before
            try:
                self.last_state = self.registry.read_state()
            except RegistryError as exc:
                log.warning("could not read the state after %s: %s", decision, exc)
        notify.publish(self.settings, self.last_state, entry)
        return entry

    def _note(self, summary: str, decision: str = "hold") -> dict:
        self.last_note = summary
        return {"at": self.clock(), "decision": decision, "summary": summary}

    # -- the lab's /check_rollback --------------------------------------------------------
    def lab_check(self, record: dict) -> dict:
        """`record` is the poll just made: the lab's answer, and the evidence under `analysis`."""
        try:
            state = self.registry.read_state()
        except RegistryError:
            state = self.last_state
        # The current rollout's latest verdict (none once idle: the analysis is dropped then).
        verdict = self.last_verdict.as_dict() if self.last_verdict and self.analysis is not None else None
        if state is None:
            answer = {"status": labcheck.WAITING, "message": record["summary"]}
        else:
            rolled = self._rollback_evidence(state) if state.phase == "rolled_back" else None
            answer = labcheck.lab_answer(state, record["decision"], record["summary"], verdict, rolled)
        answer.update(
            decision=record["decision"],
            summary=record["summary"],
            rollback=answer["status"] == labcheck.ROLLBACK,
            canary_percentage=state.weight if state else None,
            analysis={
                "verdict": self.last_verdict.as_dict() if self.last_verdict else None,
                "controller": self.status(),
            },
        )
        return answer

    def _rollback_evidence(self, state: RolloutState) -> dict | None:
        """The evidence the controller tagged on the version when it rolled it back."""
        try:
            version = self.registry.get_version(state.canary_version)
        except RegistryError:
            return None
        raw = {t["key"]: t["value"] for t in version.get("tags", [])}.get(contracts.DECISION_TAG)
        try:
            return json.loads(raw) if raw else None
        except ValueError:  # cut at MLflow's tag limit
            return None

    # -- what GET /status shows ------------------------------------------------------------
    def status(self) -> dict:
        try:
            state = self.registry.read_state()  # fresh: a decision may have changed it since the poll
        except RegistryError:
            state = self.last_state
        with self.lock:
            out = {
                "model_name": self.settings.model_name,
                "analysis_mode": self.config.mode,
                "analysis_file": self.settings.analysis_file,
                "steps": list(self.config.steps),
                "now": self.clock(),
                "note": self.last_note,
                "metrics_outage_since": self.outage_since,
                "stage": {
                    "kind": self.stage_weight[0] if self.stage_weight else None,
                    "weight": self.stage_weight[1] if self.stage_weight else None,
                    "started_at": self.stage_started,
                },
                "last_verdict": (
                    dict(self.last_verdict.as_dict(), at=self.last_verdict_at) if self.last_verdict else None
                ),
                "history": list(self.history),
            }
            if state is not None:
                out.update(state.as_dict())
            return out
