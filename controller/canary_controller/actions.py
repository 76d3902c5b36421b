"""What the controller does to the world: every change goes through the MLflow registry.

Routers follow the weight tag, model servers follow the aliases; the controller never talks to
them except to see that the production server serves a promoted version.
"""

from __future__ import annotations

import json
import logging
import time

import requests

from canary_common.contracts import (
    DECISION_TAG,
    PROMOTED_AT_TAG,
    PROMOTION_REASON_TAG,
    ROLLBACK_REASON_TAG,
    ROLLED_BACK_AT_TAG,
)
from canary_common.registry import RegistryClient, RolloutState, StateConflict, new_rollout_id

log = logging.getLogger("canary.controller.actions")


class Actions:
    def __init__(self, registry: RegistryClient, production_url: str | None = None):
        self.registry = registry
        self.production_url = production_url.rstrip("/") if production_url else None

    def rollback(self, state: RolloutState, reason: str, evidence: dict | None = None) -> None:
        # The version's reason first: whoever sees the phase change can read why. If the state
        # write is then refused as stale, the version was not rolled back: its reason goes again.
        if state.canary_version:
            tags = {ROLLBACK_REASON_TAG: reason, ROLLED_BACK_AT_TAG: f"{time.time():.0f}"}
            if evidence is not None:
                tags[DECISION_TAG] = _evidence_tag(evidence)
            self.registry.set_version_tags(state.canary_version, tags)
        try:
            self.registry.write_state(
                weight=0, phase="rolled_back", reason=reason, expected_generation=state.generation
            )
        except StateConflict:
            if state.canary_version:
                self.registry.delete_version_tags(state.canary_version, (ROLLBACK_REASON_TAG, ROLLED_BACK_AT_TAG))
            raise
        log.warning("rolled back version %s: %s", state.canary_version, reason)

    def set_weight(
        self, weight: float, reason: str, evidence: dict | None = None, state: RolloutState | None = None
    ) -> None:
        self.registry.write_state(
            weight=weight,
            phase="progressing",
            reason=reason,
            expected_generation=state.generation if state is not None else None,
        )
        if evidence is not None and state is not None and state.canary_version:
            self.registry.set_version_tags(state.canary_version, {DECISION_TAG: _evidence_tag(evidence)})
        log.info("canary weight -> %g%%: %s", weight, reason)

    def tag_evidence(self, state: RolloutState, evidence: dict) -> None:
        if state.canary_version:
            self.registry.set_version_tags(state.canary_version, {DECISION_TAG: _evidence_tag(evidence)})

    def start_promotion(self, state: RolloutState, reason: str, evidence: dict | None = None) -> None:
        """Move the production alias; the weight drops to 0 once production serves it."""
        self.registry.write_state(phase="promoting", reason=reason, expected_generation=state.generation)
        self.registry.set_alias("production", state.canary_version)
        tags = {PROMOTED_AT_TAG: f"{time.time():.0f}", PROMOTION_REASON_TAG: reason}
        if evidence is not None:
            tags[DECISION_TAG] = _evidence_tag(evidence)
        self.registry.set_version_tags(state.canary_version, tags)
        log.info("promoting version %s: %s", state.canary_version, reason)

    def production_serves(self, version: str) -> bool:
        if not self.production_url:
            return True
        try:
            ready = requests.get(f"{self.production_url}/ready", timeout=2).json()
        except (requests.RequestException, ValueError):
            return False
        return str(ready.get("version")) == str(version)

    def finish_promotion(self, state: RolloutState) -> None:
        self.registry.write_state(
            weight=0,
            phase="promoted",
            expected_generation=state.generation,
            reason=f"version {state.canary_version} promoted and serving in production",
        )

    def deploy(self, version: str, first_weight: float, production: str | None = None) -> None:
        """Make `version` the canary (optionally pin production first) and start a rollout."""
        if production is not None:
            self.registry.get_version(production)  # NotFound names a missing version
            self.registry.set_alias("production", production)
        self.registry.get_version(version)
        # Weight 0 first: routers must not send the new version traffic before the rollout starts.
        # A new rollout id, even for the same version again: the controller starts a fresh analysis.
        self.registry.write_state(
            weight=0,
            phase="progressing",
            mode="auto",
            reason=f"deploying version {version}",
            rollout=new_rollout_id(version),
        )
        self.registry.set_alias("canary", version)
        self.registry.write_state(
            weight=first_weight,
            phase="progressing",
            mode="auto",
            reason=f"rollout of version {version} started at {first_weight:g}%",
        )


TAG_MAX_CHARS = 5000  # MLflow's cap on a tag value
# What a decision rests on, when the whole evidence is over the cap (many metrics, change
# detector starts): the figures, without the prose and the detectors' detail.
_METRIC_KEYS = (
    "name",
    "kind",
    "p",
    "n",
    "g_hat",
    "bounds",
    "margin",
    "delta_rollback",
    "rollback",
    "non_inferior",
    "promotion_gate",
    "burn_in_ok",
    "detector",
    "change_since",
    "value",
    "threshold",
    "failed",
    "min_samples",
)
_REGRESSION_KEYS = ("clip", "tolerance", "clipped_mae", "share_within")
_GUARD_KEYS = ("name", "fired", "log_bf", "threshold", "counts", "count", "max")


def _compact(evidence: dict) -> dict:
    def metric(m: dict) -> dict:
        out = {k: m[k] for k in _METRIC_KEYS if k in m}
        if isinstance(m.get("regression"), dict):
            out["regression"] = {k: m["regression"][k] for k in _REGRESSION_KEYS if k in m["regression"]}
        return out

    return {
        "decision": evidence.get("decision"),
        "summary": evidence.get("summary"),
        "detector": evidence.get("detector"),
        "compacted": True,
        "metrics": [metric(m) for m in evidence.get("metrics") or []],
        "guards": [{k: g[k] for k in _GUARD_KEYS if k in g} for g in evidence.get("guards") or []],
    }


def _evidence_tag(evidence: dict) -> str:
    """The evidence as JSON within MLflow's cap, always valid JSON (readers parse it)."""
    text = json.dumps(evidence, sort_keys=True, default=str)
    if len(text) <= TAG_MAX_CHARS:
        return text
    compact = _compact(evidence)
    text = json.dumps(compact, sort_keys=True, default=str)
    while len(text) > TAG_MAX_CHARS and compact["metrics"]:  # the summary still says why
        compact["metrics"].pop()
        text = json.dumps(compact, sort_keys=True, default=str)
    if len(text) > TAG_MAX_CHARS:
        compact.update(guards=[], summary=str(compact["summary"])[: TAG_MAX_CHARS // 2])
        text = json.dumps(compact, sort_keys=True, default=str)
    return text
