"""Follows the rollout state in the MLflow registry, the one source of truth.

Each gunicorn worker runs one daemon thread that re-reads the state every STATE_POLL_S, so a
weight written by anyone (controller, another replica's admin call) reaches every worker within
about one poll, and a restarted router picks the state up again. When the state cannot be
confirmed for FAIL_CLOSED_AFTER_S, the worker fails closed: all traffic to production.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from canary_common.registry import RegistryClient, RegistryError, RolloutState
from canary_router import metrics

log = logging.getLogger(__name__)


class StateFollower:
    def __init__(
        self,
        client: RegistryClient,
        poll_s: float = 1.0,
        fail_closed_after_s: float = 30.0,
        default_weight: float = 20.0,
        clock=time.monotonic,
    ):
        self.client = client
        self.poll_s = max(0.05, poll_s)
        self.fail_closed_after_s = fail_closed_after_s
        self.default_weight = default_weight
        self.clock = clock
        self._state: RolloutState | None = None
        self._last_ok: float | None = None
        self._started_at = clock()
        self._last_error = ""
        self._was_closed = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._thread_pid: int | None = None
        self._stop = threading.Event()
        self.on_publish = None  # called after each poll, e.g. to export settings derived from the state

    # -- reading ------------------------------------------------------------------------
    def refresh(self) -> bool:
        """One read of the registry; True if the state was confirmed."""
        try:
            state = self.client.read_state(default_weight=self.default_weight)
        except RegistryError as exc:
            self._last_error = str(exc)
            self._publish()
            return False
        except Exception as exc:  # a poll must never kill the thread
            self._last_error = f"{type(exc).__name__}: {exc}"
            self._publish()
            return False
        self.apply(state)
        return True

    def apply(self, state: RolloutState) -> None:
        with self._lock:
            self._state = state
            self._last_ok = self.clock()
            self._last_error = ""
        self._publish()

    def _publish(self) -> None:
        closed = self.fail_closed
        if closed != self._was_closed:  # log the transitions only, not every poll
            self._was_closed = closed
            if closed:
                log.warning(
                    "failing closed: rollout state unconfirmed for %.0fs (%s); all traffic to production",
                    self.fail_closed_after_s,
                    self._last_error,
                )
            else:
                log.warning("rollout state confirmed again; canary weight %.4g%% applies", self.effective_weight())
        metrics.FAIL_CLOSED.set(1 if closed else 0)
        metrics.WEIGHT.set(self.effective_weight() / 100.0)
        if self.on_publish is not None:
            self.on_publish()

    # -- the thread (started in the worker, after the fork) -------------------------------
    def start(self) -> None:
        """Idempotent per process: a thread that came over a fork is not running here."""
        if self._thread_pid == os.getpid():  # fast path, taken on every request
            return
        with self._lock:
            if self._thread is not None and self._thread_pid == os.getpid() and self._thread.is_alive():
                return
            self._started_at = self.clock()
            self._thread_pid = os.getpid()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="state-follower", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            began = self.clock()
            try:
                self.refresh()
            except Exception:  # publishing the state failed: log it, and the next poll still happens
                log.exception("state follower: poll failed")
            self._stop.wait(max(0.0, self.poll_s - (self.clock() - began)))

    # -- what the request path asks ---------------------------------------------------------
    @property
    def state(self) -> RolloutState | None:
        return self._state

    @property
    def ready(self) -> bool:
        return self._state is not None

    @property
    def fail_closed(self) -> bool:
        since = self._last_ok if self._last_ok is not None else self._started_at
        return self.clock() - since > self.fail_closed_after_s

    @property
    def state_age_s(self) -> float | None:
        return None if self._last_ok is None else self.clock() - self._last_ok

    @property
    def last_error(self) -> str:
        return self._last_error

    def effective_weight(self) -> float:
        """The canary share to apply now: 0 without a confirmed state or a canary alias."""
        state = self._state
        if state is None or self.fail_closed or not state.canary_version:
            return 0.0
        return state.weight
