"""Sticky assignment: properties of the split by key (hypothesis)."""

import math
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from canary_router.datapath.split import choose_sticky, sticky_bucket

keys = st.text(min_size=1, max_size=64)
salts = st.text(max_size=8)
weights = st.floats(min_value=0, max_value=100, allow_nan=False)


@given(keys, salts, weights)
def test_same_key_same_arm(key, salt, weight):
    assert choose_sticky(weight, key, salt) == choose_sticky(weight, key, salt)
    assert 0.0 <= sticky_bucket(key, salt) < 100.0


@given(keys, salts, weights, weights)
def test_raising_the_weight_only_moves_keys_to_the_canary(key, salt, w1, w2):
    low, high = sorted((w1, w2))
    if choose_sticky(low, key, salt) == "canary":
        assert choose_sticky(high, key, salt) == "canary"


@given(keys, salts)
def test_edges(key, salt):
    assert choose_sticky(0, key, salt) == "production"
    assert choose_sticky(100, key, salt) == "canary"


@settings(max_examples=20)
@given(st.sampled_from([1, 5, 20, 50, 90]))
def test_share_of_keys_matches_the_weight(weight):
    n = 20000
    k = sum(choose_sticky(weight, f"user-{i}", "2") == "canary" for i in range(n))
    p = weight / 100
    assert abs(k - n * p) <= 4 * math.sqrt(n * p * (1 - p)) + 1


def test_a_new_rollout_reshuffles_the_keys():
    first = {f"u{i}" for i in range(5000) if choose_sticky(20, f"u{i}", "2") == "canary"}
    second = {f"u{i}" for i in range(5000) if choose_sticky(20, f"u{i}", "3") == "canary"}
    overlap = len(first & second) / len(first)
    assert 0.1 < overlap < 0.3  # independent draws: about 20 % of the first canaries again


def test_stable_across_processes():
    """Another interpreter (another hash seed) puts the key in the same bucket."""
    code = "from canary_router.datapath.split import sticky_bucket; print(repr(sticky_bucket('alice', '2')))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123"},
    ).stdout.strip()
    assert float(out) == sticky_bucket("alice", "2")
