"""The seed lab's rule behind the Analysis interface (mode: threshold).

Within the window (window_s) or, when it is null, everything since the stage started:
- roll back if canary accuracy < accuracy_threshold % (after >= min_samples labelled canary),
  or canary p95 latency > latency_threshold_ms (p95 interpolated inside the histogram buckets as
  histogram_quantile does; after >= min_samples timed canary requests), or canary error ratio >
  error_threshold_pct % (after >= min_samples canary requests);
- step up / promote once the stage is min_dwell_s old, has >= min_samples labelled canary
  requests and every check passes; inconclusive past max_stage_s.
A threshold set to null disables its check. The rule compares the canary with fixed numbers,
not with production, and re-checks a noisy ratio at every poll: kept as the lab's baseline.

Like the sequential engine it runs on a batch of B rollouts so the benchmark drives this code.
Histogram bounds grow as new `le` values appear; a bound absent from a poll had no increment
there (the controller drops zero increments), so earlier polls get 0 for it.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from .arms import COL, to_row
from .base import Decision, Poll, Verdict
from .config import AnalysisConfig
from .sequential import CODE_TO_DECISION, CONTINUE, INCONCLUSIVE, PROMOTE, ROLLBACK, STEP_UP, _f, _share
from .stats import histogram_quantile


class ThresholdEngine:
    """The threshold rule for B rollouts; only the canary arm matters to it."""

    def __init__(self, config: AnalysisConfig, size: int = 1):
        self.config = config
        self.size = size
        self.bounds: list[float] = []
        self.start_stage(0.0, math.nan, False)

    def start_stage(self, weight, at, final, mask=None) -> None:
        if mask is not None and not np.all(mask):
            raise ValueError("ThresholdEngine stages start for all runs together")
        self.stage_start = float(at)
        self.stage_weight = float(_share(weight))
        self.final = bool(final)
        self.polls: deque = deque()  # (at, (B, 6) canary increments, (B, n_bounds) buckets)
        self.sums = np.zeros((self.size, 6))
        self.bucket_sums = np.zeros((self.size, len(self.bounds)))

    def _align(self, buckets: dict[float, np.ndarray] | None) -> np.ndarray:
        """Bucket increments as (B, n_bounds) on the known bounds, adding new bounds."""
        buckets = buckets or {}
        new = sorted(set(buckets) - set(self.bounds))
        if new:
            merged = sorted(set(self.bounds) | set(new))
            idx = [merged.index(b) for b in self.bounds]

            def widen(a: np.ndarray) -> np.ndarray:
                out = np.zeros((a.shape[0], len(merged)))
                out[:, idx] = a
                return out

            self.polls = deque((at, inc, widen(b)) for at, inc, b in self.polls)
            self.bucket_sums = widen(self.bucket_sums)
            self.bounds = merged
        out = np.zeros((self.size, len(self.bounds)))
        for le, v in buckets.items():
            out[:, self.bounds.index(le)] = v
        return out

    def observe(self, at, canary, buckets: dict[float, np.ndarray] | None = None) -> None:
        canary = np.maximum(np.asarray(canary, float), 0.0)
        b = self._align(buckets)
        self.sums += canary
        self.bucket_sums += b
        if self.config.threshold.window_s is not None:
            self.polls.append((float(at), canary, b))

    def _window(self, at: float) -> tuple[np.ndarray, np.ndarray]:
        window = self.config.threshold.window_s
        if window is None:
            return self.sums, self.bucket_sums
        while self.polls and self.polls[0][0] <= at - window:
            _, inc, b = self.polls.popleft()
            self.sums -= inc
            self.bucket_sums -= b
        return self.sums, self.bucket_sums

    def evaluate(self, at: float) -> dict:
        cfg, th = self.config, self.config.threshold
        sums, bsum = self._window(at)
        labelled, correct = sums[:, COL["labelled"]], sums[:, COL["correct"]]
        requests, errors = sums[:, COL["requests"]], sums[:, COL["errors"]]
        timed = sums[:, COL["latency_count"]]
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracy = np.where(labelled > 0, correct / labelled, np.nan)
            error_ratio = np.where(requests > 0, errors / requests, np.nan)
        if self.bounds and np.isinf(self.bounds[-1]):
            p95 = histogram_quantile(0.95, self.bounds, bsum)
        else:
            p95 = np.full(self.size, np.nan)
        enough_acc = labelled >= th.min_samples
        enough_req = requests >= th.min_samples
        enough_lat = timed >= th.min_samples
        acc_bad = (
            enough_acc & (accuracy < th.accuracy_threshold / 100.0)
            if th.accuracy_threshold is not None
            else np.zeros(self.size, bool)
        )
        lat_bad = (
            enough_lat & (p95 > th.latency_threshold_ms / 1000.0)
            if th.latency_threshold_ms is not None
            else np.zeros(self.size, bool)
        )
        err_bad = (
            enough_req & (error_ratio > th.error_threshold_pct / 100.0)
            if th.error_threshold_pct is not None
            else np.zeros(self.size, bool)
        )
        age = at - self.stage_start
        rollback = acc_bad | lat_bad | err_bad
        ready = (age >= cfg.min_dwell_s - 1e-9) & enough_acc & ~rollback
        over_max = age > cfg.max_stage_s if cfg.max_stage_s is not None else False
        decision = np.full(self.size, CONTINUE)
        decision = np.where(over_max, INCONCLUSIVE, decision)
        decision = np.where(ready, PROMOTE if self.final else STEP_UP, decision)
        decision = np.where(rollback, ROLLBACK, decision)
        return {
            "accuracy": accuracy,
            "error_ratio": error_ratio,
            "p95_s": p95,
            "labelled": labelled,
            "requests": requests,
            "timed": timed,
            "correct": correct,
            "errors": errors,
            "accuracy_bad": acc_bad,
            "latency_bad": lat_bad,
            "error_bad": err_bad,
            "age": age,
            "decision": decision,
        }


class ThresholdAnalysis:
    """The Analysis protocol for the threshold rule over one rollout."""

    def __init__(self, config: AnalysisConfig):
        self.config = config
        self.on_inconclusive = config.on_inconclusive
        self.engine = ThresholdEngine(config, 1)
        self.started = False

    def start_stage(self, weight: float, at: float, final: bool) -> None:
        self.engine.start_stage(weight, at, final)
        self.started = True

    def observe(self, poll: Poll) -> None:
        if not self.started:
            self.start_stage(poll.weight, poll.at, False)
        buckets = {float(le): np.array([max(float(n), 0.0)]) for le, n in poll.canary.latency_buckets}
        self.engine.observe(poll.at, to_row(poll.canary), buckets)

    def verdict(self, at: float) -> Verdict:
        # Long on purpose: the lab's rule, one check per metric in the order the lab states them.
        if not self.started:
            return Verdict(Decision.CONTINUE, "No stage started yet: nothing to judge.")
        th, cfg = self.config.threshold, self.config
        ev = self.engine.evaluate(at)
        one = {k: (v[0] if isinstance(v, np.ndarray) else v) for k, v in ev.items()}
        scope = f"last {th.window_s:g} s" if th.window_s is not None else "this stage"
        n = th.min_samples
        rows = [
            (
                "accuracy",
                th.accuracy_threshold,
                one["accuracy"],
                one["labelled"],
                one["accuracy_bad"],
                "labelled canary requests",
                lambda v: f"{100 * v:.1f} %",
                lambda t: f"{t:g} %",
                "<",
            ),
            (
                "latency_p95",
                th.latency_threshold_ms,
                one["p95_s"],
                one["timed"],
                one["latency_bad"],
                "timed canary requests",
                lambda v: f"{1000 * v:.0f} ms",
                lambda t: f"{t:g} ms",
                ">",
            ),
            (
                "error_ratio",
                th.error_threshold_pct,
                one["error_ratio"],
                one["requests"],
                one["error_bad"],
                "canary requests",
                lambda v: f"{100 * v:.2f} %",
                lambda t: f"{t:g} %",
                ">",
            ),
        ]
        metrics = []
        for name, limit, value, count, bad, unit, fmt, fmt_t, op in rows:
            if limit is None:
                text = f"{name}: check disabled"
            elif count < n:
                text = f"{name}: {count:.0f} of {n} {unit} needed before the check applies"
            elif bad:
                text = f"canary {name} {fmt(value)} {op} {fmt_t(limit)} over {scope} ({count:.0f} {unit})"
            else:
                text = f"{name}: {fmt(value)} passes {fmt_t(limit)} over {scope} ({count:.0f} {unit})"
            metrics.append(
                {
                    "name": name,
                    "kind": "threshold",
                    "scope": scope,
                    "threshold": limit,
                    "value": _f(value),
                    "n": {"canary": _f(count, 3)},
                    "min_samples": n,
                    "failed": bool(bad),
                    "explanation": text,
                }
            )
        code = int(one["decision"])
        decision = CODE_TO_DECISION[code]
        pct = f"{100 * self.engine.stage_weight:g} %"
        age = float(one["age"])
        if code == ROLLBACK:
            summary = "Roll back: " + "; ".join(m["explanation"] for m in metrics if m["failed"]) + "."
        elif code in (STEP_UP, PROMOTE):
            summary = f"Every check passes after {age:.0f} s at {pct}: {'promote' if code == PROMOTE else 'step up'}."
        else:
            waiting = []
            if age < cfg.min_dwell_s:
                waiting.append(f"minimum dwell, {cfg.min_dwell_s - age:.0f} s left")
            if one["labelled"] < n:
                waiting.append(metrics[0]["explanation"])
            prefix = (
                f"Inconclusive: stage at {pct} ran past max_stage_s ({cfg.max_stage_s:g} s); "
                f"policy: {cfg.on_inconclusive}"
                if code == INCONCLUSIVE
                else f"Holding at {pct}"
            )
            summary = prefix + (": " + "; ".join(waiting) if waiting else "") + "."
        return Verdict(decision, summary, metrics, [])
