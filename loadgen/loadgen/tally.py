"""Counting outcomes: cumulative totals, a window for the progress line, the exit summary."""

from __future__ import annotations

import math
import random
import threading
from collections import Counter
from dataclasses import dataclass

from canary_common.contracts import ARMS


@dataclass(frozen=True)
class Outcome:
    """What one request came to."""

    ok: bool
    arm: str | None = None  # "production" | "canary", from the router's model_version
    version: str | None = None
    correct: bool | None = None  # one labelled class: None when the answer carried no usable prediction
    latency_ms: float = 0.0  # client-side round trip
    error: str | None = None  # kind when not ok: "http_503", "timeout", "connection", ...
    judged: int = 0  # k rows of classes: predictions compared with their labels, and how many were right
    n_correct: int = 0
    abs_errors: tuple[float, ...] = ()  # regression: |prediction - actual_value| per labelled row


class Reservoir:
    """A uniform sample of at most `size` values (exact below that), so memory stays bounded
    when the generator runs for days."""

    def __init__(self, size: int = 20000, seed: int = 0):
        self.size = size
        self.seen = 0
        self.values: list[float] = []
        self._rng = random.Random(seed)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.size:
            self.values.append(value)
            return
        slot = self._rng.randrange(self.seen)
        if slot < self.size:
            self.values[slot] = value

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile (q in 0..100), None when empty."""
        if not self.values:
            return None
        ordered = sorted(self.values)
        rank = max(1, math.ceil(q / 100.0 * len(ordered)))
        return ordered[rank - 1]


class ArmTally:
    def __init__(self):
        self.answered = 0
        self.judged = 0  # answers whose prediction could be compared with the label
        self.correct = 0
        self.valued = 0  # regression rows with a usable prediction, and the sum of their errors
        self.abs_error_sum = 0.0
        self.versions: Counter = Counter()
        self.latency = Reservoir()

    def add(self, outcome: Outcome) -> None:
        self.answered += 1
        if outcome.version is not None:
            self.versions[str(outcome.version)] += 1
        if outcome.correct is not None:
            self.judged += 1
            self.correct += int(outcome.correct)
        self.judged += outcome.judged
        self.correct += outcome.n_correct
        self.valued += len(outcome.abs_errors)
        self.abs_error_sum += sum(outcome.abs_errors)
        self.latency.add(outcome.latency_ms)

    def accuracy_pct(self) -> float | None:
        return 100.0 * self.correct / self.judged if self.judged else None

    def mae(self) -> float | None:
        return self.abs_error_sum / self.valued if self.valued else None

    def quality(self) -> str:
        """Accuracy for classes; the mean absolute error once values were labelled."""
        if self.valued and not self.judged:
            return f"mae {self.mae():.3g}"
        return f"acc {_fmt(self.accuracy_pct(), '{:.1f}%')}"


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def _share(arms: dict, arm: str) -> float | None:
    total = sum(a.answered for a in arms.values())
    return 100.0 * arms[arm].answered / total if total else None


class Tally:
    """Thread-safe counters; `sent` and `late` come from the scheduler, outcomes from workers."""

    def __init__(self, started_at: float):
        self._lock = threading.Lock()
        self.started_at = started_at
        self.sent = 0
        self.late = 0
        self.ok = 0
        self.errors = 0
        self.error_kinds: Counter = Counter()
        self.arms = {arm: ArmTally() for arm in ARMS}
        self._window = {arm: ArmTally() for arm in ARMS}
        self._window_start = started_at
        self.events: list[dict] = []

    def count_sent(self) -> None:
        with self._lock:
            self.sent += 1

    def count_late(self) -> None:
        with self._lock:
            self.late += 1

    def note(self, event: dict) -> None:
        with self._lock:
            self.events.append(event)

    def record(self, outcome: Outcome) -> None:
        with self._lock:
            if not outcome.ok or outcome.arm not in self.arms:
                self.errors += 1
                self.error_kinds[outcome.error or f"unknown_arm_{outcome.arm}"] += 1
                return
            self.ok += 1
            self.arms[outcome.arm].add(outcome)
            self._window[outcome.arm].add(outcome)

    def progress_line(self, now: float) -> str:
        """Cumulative counts, then split, accuracy and latency over the window since the last
        line (so a rollback shows as the canary's share falling); starts a new window."""
        with self._lock:
            window, self._window = self._window, {arm: ArmTally() for arm in ARMS}
            span = now - self._window_start
            self._window_start = now
            head = (
                f"t={now - self.started_at:.0f}s sent={self.sent} ok={self.ok} err={self.errors} "
                f"late={self.late} in_flight={self.sent - self.ok - self.errors}"
            )
        parts = []
        for arm in ARMS:
            tally = window[arm]
            version = f" v{tally.versions.most_common(1)[0][0]}" if tally.versions else ""
            parts.append(
                f"{arm}{version} {_fmt(_share(window, arm), '{:.1f}%')} {tally.quality()} "
                f"p50 {_fmt(tally.latency.percentile(50), '{:.0f}ms')} "
                f"p95 {_fmt(tally.latency.percentile(95), '{:.0f}ms')}"
            )
        return f"{head} | last {span:.0f}s: " + ", ".join(parts)

    def summary(self, now: float) -> dict:
        with self._lock:
            elapsed = max(now - self.started_at, 0.0)
            models = {}
            for arm in ARMS:
                tally = self.arms[arm]
                share = _share(self.arms, arm)
                acc = tally.accuracy_pct()
                p50, p95 = tally.latency.percentile(50), tally.latency.percentile(95)
                models[arm] = {
                    "requests": tally.answered,
                    "share_pct": None if share is None else round(share, 2),
                    "accuracy_pct": None if acc is None else round(acc, 2),
                    "latency_ms": {
                        "p50": None if p50 is None else round(p50, 2),
                        "p95": None if p95 is None else round(p95, 2),
                    },
                    "versions": dict(tally.versions),
                }
                if tally.valued:
                    models[arm].update(mae=round(tally.mae(), 4), valued=tally.valued)
            return {
                "event": "summary",
                "elapsed_s": round(elapsed, 3),
                "scheduled": self.sent + self.late,
                "sent": self.sent,
                "ok": self.ok,
                "errors": self.errors,
                "late": self.late,
                "in_flight": self.sent - self.ok - self.errors,
                "achieved_rps": round(self.sent / elapsed, 3) if elapsed > 0 else 0.0,
                "errors_by_kind": dict(self.error_kinds),
                "models": models,
                "events": list(self.events),
            }
