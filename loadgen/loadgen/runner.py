"""The open-loop scheduler: requests leave on their arrival times whatever the server does.

A fixed pool of worker threads sends them. When every worker is busy at a request's time, or
the scheduler itself woke too late, the request is counted as late and dropped: it is never
queued, so a slow server cannot stretch the schedule or grow a backlog.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from loadgen.tally import Outcome, Tally


class OpenLoopRunner:
    def __init__(
        self,
        job: Callable[[object], Outcome],
        tally: Tally,
        pool_size: int,
        late_after_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.job = job
        self.tally = tally
        self.pool_size = pool_size
        self.late_after_s = late_after_s
        self.clock = clock
        self._jobs: queue.Queue = queue.Queue()
        self._busy = 0  # handed to the pool and not finished yet
        self._cond = threading.Condition()
        self._workers = [
            threading.Thread(target=self._work, name=f"loadgen-worker-{i}", daemon=True) for i in range(pool_size)
        ]
        for worker in self._workers:
            worker.start()

    def _work(self) -> None:
        for payload in iter(self._jobs.get, None):  # None is the stop sentinel
            try:
                outcome = self.job(payload)
            except Exception as exc:  # a bug in one request must not kill the worker
                outcome = Outcome(ok=False, error=f"client_{type(exc).__name__}")
            self.tally.record(outcome)
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    def _dispatch(self, payload) -> bool:
        with self._cond:
            if self._busy >= self.pool_size:
                return False
            self._busy += 1
        self._jobs.put(payload)
        return True

    def run(
        self,
        offsets: Iterable[float],
        payloads: Iterator,
        duration_s: float,
        stop: threading.Event,
        progress_s: float = 0.0,
        on_progress: Callable[[float], None] | None = None,
    ) -> None:
        """Send until `duration_s` has passed (0: until `stop` is set)."""
        start = self.tally.started_at
        deadline = start + duration_s if duration_s > 0 else None
        self._next_progress = start + progress_s if progress_s > 0 and on_progress else None
        self._progress_s, self._on_progress = progress_s, on_progress
        for offset in offsets:
            due = start + offset
            if deadline is not None and due >= deadline:
                break
            now = self._sleep_until(due, stop)
            if now is None:
                return
            payload = next(payloads)
            if now - due > self.late_after_s or not self._dispatch(payload):
                self.tally.count_late()
            else:
                self.tally.count_sent()
        if deadline is not None:  # the last slot has passed; the run still lasts its duration
            self._sleep_until(deadline, stop)

    def _sleep_until(self, when: float, stop: threading.Event) -> float | None:
        """Wait until `when`, printing progress lines on the way; the time, or None on stop."""
        while True:
            now = self.clock()
            if self._next_progress is not None and now >= self._next_progress:
                self._on_progress(now)
                while self._next_progress <= now:
                    self._next_progress += self._progress_s
            if stop.is_set():
                return None
            if now >= when:
                return now
            wake = when if self._next_progress is None else min(when, self._next_progress)
            stop.wait(max(0.0, wake - now))

    def drain(self, timeout_s: float) -> bool:
        """Wait for requests in flight; True when none is left. Then stop the workers."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            idle = self._cond.wait_for(lambda: self._busy == 0, max(0.0, deadline - time.monotonic()))
        for _ in self._workers:
            self._jobs.put(None)
        return idle
