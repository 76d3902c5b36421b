"""The rollout state, kept in the MLflow model registry.

The registry is the one source of truth: aliases say which version serves where, and one tag on
the registered model, `canary.state`, holds the rest as JSON: weight, mode, phase, reason, the
rollout id, the shadow share and a `generation` counter. The controller is its one writer
(routers forward admin calls to it; model-setup only seeds a state that does not exist yet).

What MLflow guarantees, and what we build on it: a tag write (`registered-models/set-tag`) is
one row upsert in the tracking store, so a reader sees a whole old value or a whole new one,
never a mix. MLflow has no conditional write: no version check, no ETag, no transaction across
calls. So a state change is one tag write (atomic), and compare-and-set is done by the writer:
read the generation, check it is the one the decision was made on, write generation + 1. In the
controller every write happens under one lock, so its decisions and admin calls never
interleave; between processes the check narrows the window to one read and one write (a second
controller needs a lease, not this check). The old separate tags (`canary.weight`, ...) are still
written after the state tag, for readers of the previous release; they are never read when the
state tag exists.
Plain REST calls (no mlflow import) so that the router stays lean and fast.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import requests

from canary_common.contracts import (  # the tag keys, re-exported: readers import them from here
    MODE_TAG,
    PHASE_TAG,
    REASON_TAG,
    ROLLOUT_TAG,
    SHADOW_TAG,
    STATE_TAG,
    UPDATED_TAG,
    WEIGHT_TAG,
)

REASON_MAX_CHARS = 2000  # the whole state must stay under MLflow's 5,000-character tag cap

MODES = ("auto", "manual")
PHASES = ("progressing", "rolled_back", "promoting", "promoted", "idle")
# Phases in which a canary weight above 0 is part of a rollout that the controller is judging.
ROLLING_PHASES = ("progressing", "promoting")


class RegistryError(RuntimeError):
    """The registry could not be reached or refused a call."""


class NotFound(RegistryError):
    """The registered model, version or alias does not exist."""


class StateConflict(RegistryError):
    """The state changed since the generation a write was based on (compare-and-set failed)."""


@dataclass(frozen=True)
class RolloutState:
    """A snapshot of the registered model's rollout state."""

    production_version: str | None
    canary_version: str | None
    weight: float  # percent, 0..100
    mode: str
    phase: str
    reason: str = ""
    updated_at: float = 0.0
    tags: dict = field(default_factory=dict)
    generation: int = 0  # bumped by every write; 0 before the first
    rollout: str | None = None  # `<version>@<epoch s>`: a new one starts a fresh analysis
    shadow_percentage: float = 0.0

    @property
    def weight_ratio(self) -> float:
        return self.weight / 100.0

    @property
    def shadow_live(self) -> bool:
        """Shadow copies flow only while the canary has no live traffic and was not rolled back."""
        return (
            bool(self.canary_version)
            and self.weight <= 0
            and self.shadow_percentage > 0
            and self.phase != "rolled_back"
        )

    def as_dict(self) -> dict:
        return {
            "production_version": self.production_version,
            "canary_version": self.canary_version,
            "canary_percentage": self.weight,
            "mode": self.mode,
            "phase": self.phase,
            "reason": self.reason,
            "updated_at": self.updated_at,
            "generation": self.generation,
        }


def _number(raw, default: float = 0.0) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return default
    return value if value == value else default


def _stored_state(tags: dict, default_weight: float) -> dict:
    """The state's fields from the state tag, else from the previous release's tags; a corrupt
    value falls back to what sends no traffic anywhere unexpected."""
    stored = None
    if STATE_TAG in tags:
        try:
            stored = json.loads(tags[STATE_TAG])
        except ValueError:
            stored = None
    if not isinstance(stored, dict):
        stored = {
            "weight": tags.get(WEIGHT_TAG, default_weight),
            "mode": tags.get(MODE_TAG),
            "phase": tags.get(PHASE_TAG),
            "reason": tags.get(REASON_TAG, ""),
            "updated_at": tags.get(UPDATED_TAG),
            "rollout": tags.get(ROLLOUT_TAG),
            "shadow_percentage": tags.get(SHADOW_TAG),
            "generation": 0,
        }
        if STATE_TAG in tags:
            stored["weight"] = 0.0  # a state tag that is not JSON: no canary traffic
    try:
        weight = parse_weight(stored.get("weight", default_weight))
    except ValueError:
        weight = 0.0
    try:
        shadow = parse_weight(stored.get("shadow_percentage") or 0)
    except ValueError:
        shadow = 0.0
    mode, phase = stored.get("mode"), stored.get("phase")
    generation = stored.get("generation")
    return {
        "weight": weight,
        "mode": mode if mode in MODES else "auto",
        "phase": phase if phase in PHASES else "idle",
        "reason": str(stored.get("reason") or ""),
        "updated_at": _number(stored.get("updated_at")),
        "rollout": str(stored["rollout"]) if stored.get("rollout") else None,
        "shadow_percentage": shadow,
        "generation": generation if isinstance(generation, int) and not isinstance(generation, bool) else 0,
    }


def has_rollout_state(tags: dict) -> bool:
    """A state was written (this release's tag, or the previous release's weight tag)."""
    return STATE_TAG in (tags or {}) or WEIGHT_TAG in (tags or {})


def parse_weight(value) -> float:
    """A weight in percent from user input or a tag; ValueError names what is wrong."""
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"canary percentage must be a number from 0 to 100, got {value!r}") from None
    if not 0.0 <= weight <= 100.0 or weight != weight:
        raise ValueError(f"canary percentage must be from 0 to 100, got {value!r}")
    return weight


class RegistryClient:
    """MLflow model-registry REST calls for one registered model."""

    def __init__(
        self,
        tracking_uri: str,
        model_name: str = "sentiment",
        timeout: float = 2.0,
        session: requests.Session | None = None,
    ):
        self.base = tracking_uri.rstrip("/") + "/api/2.0/mlflow"
        self.model_name = model_name
        self.timeout = timeout
        self.session = session or requests.Session()

    # -- plumbing -------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, params=None, body=None) -> dict:
        try:
            resp = self.session.request(method, f"{self.base}/{path}", params=params, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RegistryError(f"MLflow registry unreachable: {exc}") from exc
        # MLflow answers a missing alias with 400 INVALID_PARAMETER_VALUE "... alias canary not found".
        missing_alias = resp.status_code == 400 and "alias" in resp.text and "not found" in resp.text
        if (
            resp.status_code == 404
            or missing_alias
            or (resp.status_code >= 400 and "RESOURCE_DOES_NOT_EXIST" in resp.text)
        ):
            raise NotFound(f"{path}: {resp.text[:200]}")
        if resp.status_code >= 400:
            raise RegistryError(f"MLflow registry {method} {path}: HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            return resp.json() if resp.content else {}
        except ValueError as exc:
            raise RegistryError(f"MLflow registry {path}: not JSON") from exc

    # -- registered model -----------------------------------------------------------------
    def get_model(self) -> dict:
        return self._call("GET", "registered-models/get", params={"name": self.model_name})["registered_model"]

    def set_model_tags(self, tags: dict) -> None:
        for key, value in tags.items():
            self._call(
                "POST", "registered-models/set-tag", body={"name": self.model_name, "key": key, "value": str(value)}
            )

    def set_alias(self, alias: str, version: str) -> None:
        self._call(
            "POST", "registered-models/alias", body={"name": self.model_name, "alias": alias, "version": str(version)}
        )

    def delete_alias(self, alias: str) -> None:
        self._call("DELETE", "registered-models/alias", body={"name": self.model_name, "alias": alias})

    def alias_version(self, alias: str) -> str:
        data = self._call("GET", "registered-models/alias", params={"name": self.model_name, "alias": alias})
        return str(data["model_version"]["version"])

    # -- versions -------------------------------------------------------------------------
    def get_version(self, version: str) -> dict:
        return self._call("GET", "model-versions/get", params={"name": self.model_name, "version": str(version)})[
            "model_version"
        ]

    def list_versions(self) -> list[dict]:
        data = self._call(
            "GET", "model-versions/search", params={"filter": f"name='{self.model_name}'", "max_results": 1000}
        )
        return sorted(data.get("model_versions", []), key=lambda v: int(v["version"]))

    def set_version_tags(self, version: str, tags: dict) -> None:
        for key, value in tags.items():
            if not isinstance(value, str):
                value = json.dumps(value, sort_keys=True)
            self._call(
                "POST",
                "model-versions/set-tag",
                body={"name": self.model_name, "version": str(version), "key": key, "value": value},
            )

    def delete_version_tags(self, version: str, keys) -> None:
        for key in keys:
            try:
                self._call(
                    "DELETE",
                    "model-versions/delete-tag",
                    body={"name": self.model_name, "version": str(version), "key": key},
                )
            except NotFound:
                pass  # already gone

    # -- the rollout state ----------------------------------------------------------------
    def read_state(self, default_weight: float = 0.0) -> RolloutState:
        model = self.get_model()
        tags = {t["key"]: t["value"] for t in model.get("tags", [])}
        aliases = {a["alias"]: str(a["version"]) for a in model.get("aliases", [])}
        stored = _stored_state(tags, default_weight)
        if "canary" not in aliases:
            stored["weight"] = 0.0
        return RolloutState(
            production_version=aliases.get("production"), canary_version=aliases.get("canary"), tags=tags, **stored
        )

    def write_state(
        self,
        *,
        weight: float | None = None,
        mode: str | None = None,
        phase: str | None = None,
        reason: str | None,
        rollout: str | None = None,
        shadow_percentage: float | None = None,
        expected_generation: int | None = None,
    ) -> RolloutState:
        """Change the parts given, in one write of the state tag, and return the state written.
        A `reason` of None keeps the current one (it explains the phase). With
        `expected_generation`, refuse (StateConflict) if the state moved on since then."""
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if phase is not None and phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        current = self.read_state()
        if expected_generation is not None and current.generation != expected_generation:
            raise StateConflict(
                f"the rollout state moved from generation {expected_generation} to "
                f"{current.generation} ({current.reason!r}); not overwriting it"
            )
        stored = _stored_state(current.tags, 0.0)
        changes = {
            "weight": None if weight is None else parse_weight(weight),
            "mode": mode,
            "phase": phase,
            "rollout": rollout,
            "shadow_percentage": None if shadow_percentage is None else parse_weight(shadow_percentage),
        }
        stored.update({k: v for k, v in changes.items() if v is not None})
        if reason is not None:
            stored["reason"] = reason[:REASON_MAX_CHARS]
        stored.update(updated_at=round(time.time(), 3), generation=current.generation + 1)
        self.set_model_tags({STATE_TAG: json.dumps(stored, sort_keys=True)})
        self._mirror_old_tags(stored)
        return RolloutState(
            production_version=current.production_version,
            canary_version=current.canary_version,
            tags=current.tags,
            **stored,
        )

    def _mirror_old_tags(self, stored: dict) -> None:
        """The previous release's tags, for its readers during an upgrade, one call each: what
        explains the phase and the weight first, then the phase, the weight last."""
        tags = {
            REASON_TAG: stored["reason"],
            UPDATED_TAG: f"{stored['updated_at']:.3f}",
            SHADOW_TAG: f"{stored['shadow_percentage']:g}",
            MODE_TAG: stored["mode"],
        }
        if stored["rollout"]:
            tags[ROLLOUT_TAG] = stored["rollout"]
        tags[PHASE_TAG] = stored["phase"]
        tags[WEIGHT_TAG] = f"{stored['weight']:g}"
        try:
            self.set_model_tags(tags)
        except RegistryError:
            pass  # the state tag is written; old readers catch up on the next write

    def set_weight_by_hand(
        self,
        weight: float,
        reason: str,
        mode: str = "manual",
        fresh: bool = False,
        expected_generation: int | None = None,
    ) -> RolloutState:
        """A person's weight (`/set_canary`, `/reset`, through the controller). When nothing is
        rolling out (after a rollback or a promotion, or before any rollout), a weight above 0
        starts a manual rollout of the version under the `canary` alias with a fresh analysis,
        so the phase tells the truth about traffic and the canary is never unwatched. `fresh`
        always starts a new one. Returns the state read before the write."""
        weight = parse_weight(weight)
        state = self.read_state()
        if expected_generation is not None and state.generation != expected_generation:
            raise StateConflict(f"the rollout state moved from generation {expected_generation} to {state.generation}")
        if weight > 0 and state.canary_version and (fresh or state.phase not in ROLLING_PHASES):
            self.write_state(
                weight=weight,
                mode=mode,
                phase="progressing",
                reason=reason,
                rollout=new_rollout_id(state.canary_version),
                expected_generation=state.generation,
            )
        else:
            self.write_state(weight=weight, mode=mode, reason=reason, expected_generation=state.generation)
        return state


def new_rollout_id(version: str) -> str:
    return f"{version}@{time.time():.3f}"
