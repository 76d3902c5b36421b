"""The per-request random split."""

import math
import random

import pytest

from canary_router.datapath.split import choose_arm


def test_edges():
    rng = random.Random(1)
    assert {choose_arm(0, rng) for _ in range(1000)} == {"production"}
    assert {choose_arm(-5, rng) for _ in range(100)} == {"production"}
    assert {choose_arm(100, rng) for _ in range(1000)} == {"canary"}


@pytest.mark.parametrize("weight", [0.5, 5, 20, 50, 87.5])
def test_share_within_binomial_band(weight):
    rng = random.Random(weight)
    n = 20000
    k = sum(choose_arm(weight, rng) == "canary" for _ in range(n))
    p = weight / 100
    assert abs(k - n * p) <= 4 * math.sqrt(n * p * (1 - p)) + 1
