"""Chooses the arm for one request: an independent random draw per request, as in the seed."""
from __future__ import annotations

import random

PRODUCTION = "production"
CANARY = "canary"
ARMS = (PRODUCTION, CANARY)


def choose_arm(weight_percent: float, rng: random.Random | None = None) -> str:
    """`canary` with probability weight/100, else `production`. 0 never and 100 always canary."""
    if weight_percent <= 0:
        return PRODUCTION
    if weight_percent >= 100:
        return CANARY
    draw = (rng or random).random() * 100.0
    return CANARY if draw < weight_percent else PRODUCTION
