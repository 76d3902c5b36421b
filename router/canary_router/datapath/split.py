"""Chooses the arm for one request: a random draw per request (as in the seed), or by a sticky key."""

from __future__ import annotations

import hashlib
import random

from canary_common.contracts import ARMS, CANARY, PRODUCTION

__all__ = ["ARMS", "CANARY", "PRODUCTION", "choose_arm"]


def choose_arm(weight_percent: float, rng: random.Random | None = None) -> str:
    """`canary` with probability weight/100, else `production`. 0 never and 100 always canary."""
    if weight_percent <= 0:
        return PRODUCTION
    if weight_percent >= 100:
        return CANARY
    draw = (rng or random).random() * 100.0
    return CANARY if draw < weight_percent else PRODUCTION


def sticky_bucket(key: str, salt: str) -> float:
    """The key's fixed place in [0, 100): the same on every replica and after restarts
    (sha256, not Python's per-process hash()). The salt (the canary version) reshuffles the
    keys for each rollout, so the same users are not always the first canaries."""
    digest = hashlib.sha256(f"{salt}\x1f{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") * 100.0 / 2**64


def choose_sticky(weight_percent: float, key: str, salt: str) -> str:
    """`canary` iff the key's bucket is below the weight: raising the weight only ever moves
    keys from production to the canary, and every replica agrees."""
    if weight_percent <= 0:
        return PRODUCTION
    if weight_percent >= 100:
        return CANARY
    return CANARY if sticky_bucket(key, salt) < weight_percent else PRODUCTION
