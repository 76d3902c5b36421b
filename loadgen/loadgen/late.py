"""Late labels: the true label goes to POST /feedback some time after the prediction, as it
would in production (a user's click, a review's rating arriving later). A class goes as
`actual_label`, a regression's true value as `actual_value` (`label_key`)."""

from __future__ import annotations

import heapq
import threading
import time
from collections import Counter

import requests


class LateLabeller:
    """One background thread sends due labels in order; at most `max_pending` wait (the rest are
    counted as dropped), so memory stays bounded whatever the rate and delay."""

    def __init__(
        self,
        target_url: str,
        delay_s: float,
        timeout_s: float = 5.0,
        max_pending: int = 100_000,
        clock=time.monotonic,
        label_key: str = "actual_label",
    ):
        self.url = target_url.rstrip("/") + "/feedback"
        self.label_key = label_key
        self.delay_s = delay_s
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.clock = clock
        self.results: Counter = Counter()
        self._heap: list = []
        self._seq = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="late-labels", daemon=True)
        self._thread.start()

    def submit(self, request_id: str, label) -> None:
        with self._cond:
            if len(self._heap) >= self.max_pending:
                self.results["dropped"] += 1
                return
            self._seq += 1
            heapq.heappush(self._heap, (self.clock() + self.delay_s, self._seq, request_id, label))
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > self.clock()):
                    wait = None if not self._heap else max(0.0, self._heap[0][0] - self.clock())
                    self._cond.wait(wait)
                if self._stopped and not self._heap:
                    return
                _, _, request_id, label = heapq.heappop(self._heap)
            self._send(request_id, label)

    def _send(self, request_id: str, label) -> None:
        try:
            resp = self._session.post(
                self.url, json={"request_id": request_id, self.label_key: label}, timeout=self.timeout_s
            )
            self.results["ok" if resp.status_code == 200 else f"http_{resp.status_code}"] += 1
        except requests.RequestException as exc:
            self.results[type(exc).__name__] += 1

    def flush(self, timeout_s: float) -> bool:
        """Send what is still waiting now (the run is over), within `timeout_s`; True if all sent."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._heap = [(0.0, seq, rid, label) for _, seq, rid, label in self._heap]
            heapq.heapify(self._heap)
            self._stopped = True
            self._cond.notify()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def summary(self) -> dict:
        return {
            "sent": sum(v for k, v in self.results.items() if k != "dropped"),
            **dict(self.results),
            "pending": self.pending(),
        }
