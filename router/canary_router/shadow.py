"""Shadow traffic: the canary sees copies of production requests and answers no one.

Rule (docs): shadow runs only while the canary gets no live traffic — a canary alias exists, the
applied weight is 0, the state is confirmed (not failing closed) and the phase is not
`rolled_back`. Then `canary.shadow_percentage` (registered-model tag, so every replica follows
it) of the requests production answered are copied to the canary in the background. Once the
weight is above 0 the live split measures the canary and shadow stops.

Each worker has a small queue and a few threads. The request thread only does a non-blocking
put: when the queue is full the copy is dropped and counted, so the client never waits for it.
"""
from __future__ import annotations

import logging
import os
import queue
import threading

from canary_common.registry import SHADOW_TAG  # noqa: F401  (re-exported for the admin routes)

from . import metrics
from .backends import BackendError, BackendRejected
from .split import CANARY

log = logging.getLogger(__name__)

def shadow_percentage(state) -> float:
    """The tag's value in percent; no state or a missing or corrupt tag means no shadow."""
    return 0.0 if state is None else state.shadow_percentage


def class_label(prediction) -> str:
    """A bounded label value for the class mix."""
    if isinstance(prediction, (bool, int, str)) and len(str(prediction)) <= 32:
        return str(prediction)
    return "other"


class ShadowPool:
    def __init__(self, backends, workers: int = 2, queue_max: int = 64):
        self.backends = backends
        self.workers = workers
        self.queue_max = queue_max
        self._queue: queue.Queue | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def _ensure_started(self) -> queue.Queue:
        # Threads do not survive gunicorn's fork: start them in the worker that uses them.
        if self._pid == os.getpid():
            return self._queue
        with self._lock:
            if self._pid != os.getpid():
                q: queue.Queue = queue.Queue(maxsize=self.queue_max)
                for i in range(self.workers):
                    threading.Thread(target=self._run, args=(q,), name=f"shadow-{i}", daemon=True).start()
                self._queue, self._pid = q, os.getpid()
        return self._queue

    def offer(self, text: str, version: str, production_prediction, actual_label=None) -> bool:
        """Queue one copy; False (and counted) when the queue is full."""
        try:
            self._ensure_started().put_nowait((text, version, production_prediction, actual_label))
            return True
        except queue.Full:
            metrics.SHADOW_DROPPED.labels(version).inc()
            return False

    def pending(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def _run(self, q: queue.Queue) -> None:
        while True:
            text, version, production_prediction, actual_label = q.get()
            try:
                self._shadow_one(text, version, production_prediction, actual_label)
            except Exception:  # one bad copy must not stop the thread
                log.exception("shadow call failed unexpectedly")

    def _shadow_one(self, text: str, version: str, production_prediction, actual_label=None) -> None:
        try:
            pred = self.backends.predict(CANARY, text)
        except (BackendError, BackendRejected):
            metrics.SHADOW_REQUESTS.labels(version, "error").inc()
            return
        # The canary's own word on its version, as for live traffic.
        served = pred.version or version
        metrics.SHADOW_REQUESTS.labels(served, "ok").inc()
        metrics.SHADOW_DURATION.labels(served).observe(pred.latency_s)
        metrics.SHADOW_AGREEMENT.labels(served, "agree" if pred.prediction == production_prediction
                                        else "disagree").inc()
        metrics.PREDICTED_CLASS.labels("shadow", served, class_label(pred.prediction)).inc()
        if actual_label is not None and (not pred.classes or actual_label in pred.classes):
            # The user's label judges the copy too: the controller's accuracy test in shadow.
            outcome = "correct" if pred.prediction == actual_label else "incorrect"
            metrics.SHADOW_LABELLED.labels(served, outcome).inc()
