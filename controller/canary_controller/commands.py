"""People's changes to the rollout state, made by the controller as its one writer.

The routers forward `/set_canary`, `/reset` and `/shadow` here. Each change is made under the
control loop's lock, so it never interleaves with a decision, and is one compare-and-set write
of the state (canary_common.registry): it is based on the state read just before, under the lock.
"""

from __future__ import annotations

from canary_common.registry import ROLLING_PHASES, parse_weight

from .loop import Controller


def parse_request(body: dict, field: str) -> float:
    """A percentage from a JSON body; ValueError names the field."""
    if field not in body or isinstance(body[field], bool):
        raise ValueError(f"'{field}' is required: a number from 0 to 100")
    try:
        return parse_weight(body[field])
    except ValueError as exc:
        raise ValueError(f"'{field}': {exc}") from None


def set_weight(controller: Controller, weight: float, fresh: bool, reason: str) -> dict:
    """A weight set by hand: manual mode (judged, never stepped); a new manual rollout when
    nothing is rolling out, or always with `fresh` (the lab's /reset)."""
    with controller.lock:
        before = controller.registry.set_weight_by_hand(weight, reason=reason, fresh=fresh)
        started = bool(weight > 0 and before.canary_version and (fresh or before.phase not in ROLLING_PHASES))
        controller.record(
            "set_by_hand",
            f"{reason}"
            + (
                f"; a manual rollout of version {before.canary_version} started with a fresh analysis"
                if started
                else ""
            ),
        )
        after = controller.registry.read_state()
    return {
        "canary_percentage": after.weight,
        "mode": after.mode,
        "phase": after.phase,
        "phase_before": before.phase,
        "canary_version": after.canary_version,
        "started_rollout": started,
        "generation": after.generation,
    }


def set_shadow(controller: Controller, share: float, reason: str) -> dict:
    with controller.lock:
        state = controller.registry.read_state()
        # The reason stays: it explains the phase (a rollback's, say), which a share does not change.
        after = controller.registry.write_state(
            shadow_percentage=share, reason=None, expected_generation=state.generation
        )
        controller.record("set_by_hand", reason)
    return {"shadow_percentage": after.shadow_percentage, "generation": after.generation}
