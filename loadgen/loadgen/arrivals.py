"""Arrival offsets (seconds from the start) of an open-loop schedule."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator


def offsets(rate: float, kind: str = "fixed", seed: int = 0) -> Iterator[float]:
    """Endless, increasing offsets: evenly spaced, or Poisson (exponential gaps, mean 1/rate).

    Offsets are computed from the index, not by adding gaps, for the fixed schedule so that
    rounding does not drift over a long run.
    """
    if kind == "fixed":
        return (i / rate for i in itertools.count())
    if kind == "poisson":
        rng = random.Random(seed)
        return itertools.accumulate(rng.expovariate(rate) for _ in itertools.count())
    raise ValueError(f"unknown arrivals kind {kind!r}")
