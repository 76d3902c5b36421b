"""Outlier ejection of a model server, in the manner of Envoy's outlier detection.

After one refused connection or timeout (the next request would wait the same), or `consecutive`
failures in a row of the other kinds (5xx, a cut or unusable answer), a worker stops sending live
traffic to that model server for a backoff: `base_s`, doubled for each ejection that follows a
short comeback (a flapping server), at most `max_s`; one that stays healthy for `max_s` has its
backoff start from `base_s` again. When the backoff ends, one probe (GET /ready, in
the background, so no client waits on it) decides: answered, the server takes traffic again; not
answered, it is probed again every `base_s` (a probe is cheap; traffic is not), so a server that
was down for long is let in within `base_s` of being back, not after a backoff grown meanwhile.

What happens to the requests meanwhile is predict.py's policy: the canary's share is answered by
production and counted as canary errors (so the analysis still sees a dead canary and rolls it
back); while production is out, clients get a fast 503 with Retry-After instead of a timeout.
State is per worker: each gunicorn worker learns on its own, as each Envoy does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from canary_router import metrics

CLOSED, EJECTED, PROBING = "closed", "ejected", "probing"


class Ejector:
    def __init__(
        self,
        probe: Callable[[], bool],
        arm: str = "canary",
        consecutive: int = 3,
        base_s: float = 1.0,
        max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
    ):
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
        """May a live request go to this server now? Never waits: while the server is out, a
        background prober (started at the ejection) decides when it is back."""
        if self._state == CLOSED:  # unlocked read: the common case costs nothing
            return True
        if self.background:
            return False
        with self._lock:  # inline probing (unit tests with a fake clock): when the backoff is over
            if self._state != EJECTED or self.clock() < self._until:
                return self._state == CLOSED
            self._state = PROBING
        self._probe()
        return self._state == CLOSED

    def success(self) -> None:
        if self._failures or self._state != CLOSED:
            with self._lock:
                self._failures = 0

    def failure(self, at_once: bool = False) -> None:
        """A failed request; `at_once` (refused, timed out) ejects without waiting for more."""
        if self.consecutive <= 0:
            return
        with self._lock:
            if self._state != CLOSED:
                return
            self._failures += 1
            if not (at_once or self._failures >= self.consecutive):
                return
            if self._streak and self.clock() - self._healthy_since >= self.max_s:
                self._streak = 0  # healthy long enough since it came back: forgiven
            self._eject()
            episode = self.ejections
        if self.background:
            threading.Thread(target=self._watch, args=(episode,), name=f"canary-probe-{self.arm}", daemon=True).start()

    # -- inside the lock ---------------------------------------------------------------------------
    def _eject(self) -> None:
        now = self.clock()
        backoff = min(self.max_s, self.base_s * 2**self._streak)
        self._streak += 1
        self._state, self._until, self._failures = EJECTED, now + backoff, 0
        self.ejections += 1
        metrics.child(metrics.EJECTIONS, self.arm).inc()
        metrics.child(metrics.EJECTED, self.arm).set(1)

    # -- the prober ------------------------------------------------------------------------------
    def _watch(self, episode: int) -> None:
        """One thread per ejection: probe when the backoff ends, then every base_s, until the
        server answers (or a reset lets it in). It runs whether or not requests come, so a worker
        that saw no traffic meanwhile does not turn its first client away once the server is back."""
        while True:
            with self._lock:
                if self._state == CLOSED or self.ejections != episode:
                    return  # back in, or a later ejection has its own prober
                wait = self._until - self.clock()
                if wait <= 0:
                    self._state = PROBING
            if wait > 0:
                time.sleep(min(wait, 0.05))
                continue
            self._probe()

    def _probe(self) -> None:
        try:
            healthy = bool(self.probe())
        except Exception:  # a probe that breaks says the server is not back
            healthy = False
        with self._lock:
            if self._state != PROBING:
                return  # reset meanwhile
            if healthy:
                self._state, self._failures, self._healthy_since = CLOSED, 0, self.clock()
                metrics.child(metrics.EJECTED, self.arm).set(0)
            else:  # still down: out, and probed again after base_s
                self._state, self._until = EJECTED, self.clock() + self.base_s

    def reset(self) -> None:
        """In again, with a clean slate (a new rollout: the old ejection is not its evidence)."""
        with self._lock:
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
            return {
                "state": self._state,
                "ejections": self.ejections,
                "consecutive_failures": self._failures,
                "ejected_for_s": round(left, 3),
            }
