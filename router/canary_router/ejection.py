"""Outlier ejection of a model server, in the manner of Envoy's outlier detection.

After `consecutive` failures in a row (unreachable, timed out, 5xx, an unusable answer), a worker
stops sending live traffic to that model server for a backoff: `base_s`, doubled for each ejection in a
row, at most `max_s`. When the backoff ends, one probe (GET /ready, in the background, so no
client waits on it) decides: answered, the server takes traffic again; not answered, it stays
out for the next, longer backoff. A server that fails again soon after coming back is ejected
for longer; one that stays healthy for `max_s` has its backoff start from `base_s` again.

What happens to the requests meanwhile is predict.py's policy: the canary's share is answered by
production and counted as canary errors (so the analysis still sees a dead canary and rolls it
back); while production is out, clients get a fast 503 with Retry-After instead of a timeout.
State is per worker: each gunicorn worker learns on its own, as each Envoy does.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from . import metrics

CLOSED, EJECTED, PROBING = "closed", "ejected", "probing"


class Ejector:
    def __init__(self, probe: Callable[[], bool], arm: str = "canary", consecutive: int = 3, base_s: float = 1.0,
                 max_s: float = 30.0, clock: Callable[[], float] = time.monotonic, background: bool = True):
        self.probe = probe  # True when the server answers its health check
        self.arm = arm
        self.consecutive = consecutive  # 0: never eject
        self.base_s = base_s
        self.max_s = max(max_s, base_s)
        self.clock = clock
        self.background = background  # False runs the probe inline (unit tests with a fake clock)
        self._lock = threading.Lock()
        self._failures = 0
        self._state = CLOSED
        self._until = 0.0
        self._streak = 0  # ejections in a row, without max_s of health between them
        self._healthy_since = 0.0
        self.ejections = 0

    # -- the request path ----------------------------------------------------------------------
    def allow(self) -> bool:
        """May a live request go to this server now? Starts the probe when the backoff is over."""
        if self._state == CLOSED:  # unlocked read: the common case costs nothing
            return True
        with self._lock:
            if self._state != EJECTED or self.clock() < self._until:
                return self._state == CLOSED
            self._state = PROBING
        if self.background:
            threading.Thread(target=self._probe, name="canary-probe", daemon=True).start()
        else:
            self._probe()
        return self._state == CLOSED

    def success(self) -> None:
        if self._failures or self._state != CLOSED:
            with self._lock:
                self._failures = 0

    def failure(self) -> None:
        if self.consecutive <= 0:
            return
        with self._lock:
            if self._state != CLOSED:
                return
            self._failures += 1
            if self._failures >= self.consecutive:
                if self._streak and self.clock() - self._healthy_since >= self.max_s:
                    self._streak = 0  # healthy long enough since it came back: forgiven
                self._eject()

    # -- inside the lock ---------------------------------------------------------------------------
    def _eject(self) -> None:
        now = self.clock()
        backoff = min(self.max_s, self.base_s * 2 ** self._streak)
        self._streak += 1
        self._state, self._until, self._failures = EJECTED, now + backoff, 0
        self.ejections += 1
        metrics.child(metrics.EJECTIONS, self.arm).inc()
        metrics.child(metrics.EJECTED, self.arm).set(1)

    def _probe(self) -> None:
        try:
            healthy = bool(self.probe())
        except Exception:  # a probe that breaks says the server is not back
            healthy = False
        with self._lock:
            if healthy:
                self._state, self._failures, self._healthy_since = CLOSED, 0, self.clock()
                metrics.child(metrics.EJECTED, self.arm).set(0)
            else:
                self._eject()

    def reset(self) -> None:
        """In again, with a clean slate (a new rollout: the old ejection is not its evidence)."""
        with self._lock:
            if self._state == PROBING:
                return  # the probe in flight finishes the job
            self._state, self._failures, self._streak = CLOSED, 0, 0
            metrics.child(metrics.EJECTED, self.arm).set(0)

    # -- for /stats ----------------------------------------------------------------------------
    def retry_after_s(self) -> float:
        """Seconds until the probe may bring the server back (for Retry-After)."""
        with self._lock:
            return max(0.0, self._until - self.clock()) if self._state == EJECTED else 0.0

    def describe(self) -> dict:
        with self._lock:
            left = max(0.0, self._until - self.clock()) if self._state == EJECTED else 0.0
            return {"state": self._state, "ejections": self.ejections, "consecutive_failures": self._failures,
                    "ejected_for_s": round(left, 3)}
