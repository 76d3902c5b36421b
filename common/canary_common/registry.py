"""The rollout state, kept in the MLflow model registry.

The registry is the one source of truth: aliases say which version serves where, tags on the
registered model hold the canary weight, the mode and the phase. Every router worker, the
controller and the model servers read it; only the controller and the routers' admin paths write
it. Plain REST calls (no mlflow import) so that the router stays lean and fast.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import requests

WEIGHT_TAG = "canary.weight"
MODE_TAG = "canary.mode"
PHASE_TAG = "canary.phase"
REASON_TAG = "canary.reason"
UPDATED_TAG = "canary.updated_at"
# `<version>@<epoch s>`, new for every rollout: the controller starts a fresh analysis when it changes.
ROLLOUT_TAG = "canary.rollout"
# Percent of production's requests copied to the canary while its live weight is 0.
SHADOW_TAG = "canary.shadow_percentage"

MODES = ("auto", "manual")
PHASES = ("progressing", "rolled_back", "promoting", "promoted", "idle")
# Phases in which a canary weight above 0 is part of a rollout that the controller is judging.
ROLLING_PHASES = ("progressing", "promoting")


class RegistryError(RuntimeError):
    """The registry could not be reached or refused a call."""


class NotFound(RegistryError):
    """The registered model, version or alias does not exist."""


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

    @property
    def weight_ratio(self) -> float:
        return self.weight / 100.0

    @property
    def shadow_percentage(self) -> float:
        """The shadow tag in percent; a missing or corrupt tag means no shadow."""
        raw = (self.tags or {}).get(SHADOW_TAG)
        try:
            return parse_weight(raw) if raw not in (None, "") else 0.0
        except ValueError:
            return 0.0

    @property
    def shadow_live(self) -> bool:
        """Shadow copies flow only while the canary has no live traffic and was not rolled back."""
        return (bool(self.canary_version) and self.weight <= 0 and self.shadow_percentage > 0
                and self.phase != "rolled_back")

    def as_dict(self) -> dict:
        return {
            "production_version": self.production_version,
            "canary_version": self.canary_version,
            "canary_percentage": self.weight,
            "mode": self.mode,
            "phase": self.phase,
            "reason": self.reason,
            "updated_at": self.updated_at,
        }


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

    def __init__(self, tracking_uri: str, model_name: str = "sentiment", timeout: float = 2.0,
                 session: requests.Session | None = None):
        self.base = tracking_uri.rstrip("/") + "/api/2.0/mlflow"
        self.model_name = model_name
        self.timeout = timeout
        self.session = session or requests.Session()

    # -- plumbing -------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, params=None, body=None) -> dict:
        try:
            resp = self.session.request(method, f"{self.base}/{path}", params=params, json=body,
                                        timeout=self.timeout)
        except requests.RequestException as exc:
            raise RegistryError(f"MLflow registry unreachable: {exc}") from exc
        # MLflow answers a missing alias with 400 INVALID_PARAMETER_VALUE "... alias canary not found".
        missing_alias = resp.status_code == 400 and "alias" in resp.text and "not found" in resp.text
        if resp.status_code == 404 or missing_alias or (resp.status_code >= 400 and "RESOURCE_DOES_NOT_EXIST" in resp.text):
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
            self._call("POST", "registered-models/set-tag",
                       body={"name": self.model_name, "key": key, "value": str(value)})

    def set_alias(self, alias: str, version: str) -> None:
        self._call("POST", "registered-models/alias",
                   body={"name": self.model_name, "alias": alias, "version": str(version)})

    def delete_alias(self, alias: str) -> None:
        self._call("DELETE", "registered-models/alias", body={"name": self.model_name, "alias": alias})

    def alias_version(self, alias: str) -> str:
        data = self._call("GET", "registered-models/alias", params={"name": self.model_name, "alias": alias})
        return str(data["model_version"]["version"])

    # -- versions -------------------------------------------------------------------------
    def get_version(self, version: str) -> dict:
        return self._call("GET", "model-versions/get",
                          params={"name": self.model_name, "version": str(version)})["model_version"]

    def list_versions(self) -> list[dict]:
        data = self._call("GET", "model-versions/search",
                          params={"filter": f"name='{self.model_name}'", "max_results": 1000})
        return sorted(data.get("model_versions", []), key=lambda v: int(v["version"]))

    def set_version_tags(self, version: str, tags: dict) -> None:
        for key, value in tags.items():
            if not isinstance(value, str):
                value = json.dumps(value, sort_keys=True)
            self._call("POST", "model-versions/set-tag",
                       body={"name": self.model_name, "version": str(version), "key": key, "value": value})

    # -- the rollout state ----------------------------------------------------------------
    def read_state(self, default_weight: float = 0.0) -> RolloutState:
        model = self.get_model()
        tags = {t["key"]: t["value"] for t in model.get("tags", [])}
        aliases = {a["alias"]: str(a["version"]) for a in model.get("aliases", [])}
        try:
            weight = parse_weight(tags.get(WEIGHT_TAG, default_weight))
        except ValueError:
            weight = 0.0  # a corrupt tag must not send traffic anywhere unexpected
        if "canary" not in aliases:
            weight = 0.0
        mode = tags.get(MODE_TAG, "auto")
        try:
            updated = float(tags.get(UPDATED_TAG, 0) or 0)
        except ValueError:
            updated = 0.0
        return RolloutState(
            production_version=aliases.get("production"),
            canary_version=aliases.get("canary"),
            weight=weight,
            mode=mode if mode in MODES else "auto",
            phase=tags.get(PHASE_TAG, "idle"),
            reason=tags.get(REASON_TAG, ""),
            updated_at=updated,
            tags=tags,
        )

    def write_state(self, *, weight: float | None = None, mode: str | None = None,
                    phase: str | None = None, reason: str) -> None:
        """Write the parts given. The weight goes last, so a reader that sees the new weight
        also sees the mode and phase that explain it."""
        tags: dict = {}
        if mode is not None:
            if mode not in MODES:
                raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
            tags[MODE_TAG] = mode
        if phase is not None:
            if phase not in PHASES:
                raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
            tags[PHASE_TAG] = phase
        tags[REASON_TAG] = reason[:4000]
        tags[UPDATED_TAG] = f"{time.time():.3f}"
        if weight is not None:
            tags[WEIGHT_TAG] = f"{parse_weight(weight):g}"
        self.set_model_tags(tags)

    def set_weight_by_hand(self, weight: float, reason: str, mode: str = "manual",
                           fresh: bool = False) -> RolloutState:
        """A person's weight (`/set_canary`, `/reset`). When nothing is rolling out (after a
        rollback or a promotion, or before any rollout), a weight above 0 starts a manual rollout
        of the version under the `canary` alias with a fresh analysis, so the phase tells the
        truth about traffic and the canary is never unwatched. `fresh` always starts a new one.
        Returns the state read before the write."""
        weight = parse_weight(weight)
        state = self.read_state()
        if weight > 0 and state.canary_version and (fresh or state.phase not in ROLLING_PHASES):
            self.set_model_tags({ROLLOUT_TAG: new_rollout_id(state.canary_version)})
            self.write_state(weight=weight, mode=mode, phase="progressing", reason=reason)
        else:
            self.write_state(weight=weight, mode=mode, reason=reason)
        return state


def new_rollout_id(version: str) -> str:
    return f"{version}@{time.time():.3f}"
