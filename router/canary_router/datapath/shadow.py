"""Shadow traffic: the canary sees copies of production requests and answers no one.

Rule (docs): shadow runs only while the canary gets no live traffic — a canary alias exists, the
applied weight is 0, the state is confirmed (not failing closed) and the phase is not
`rolled_back`. Then the state's `shadow_percentage` (in the registry, so every replica follows
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
from collections import Counter

from canary_common.payload import CLASSIFICATION, REGRESSION
from canary_router import metrics
from canary_router.datapath.backends import BackendError, BackendRejected
from canary_router.datapath.split import CANARY
from canary_router.labels import truth

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

    def offer(self, request, version: str, production_predictions: list) -> bool:
        """Queue one copy of `request` (a PredictRequest); False (and counted) when the queue is full."""
        try:
            self._ensure_started().put_nowait((request, version, production_predictions))
            return True
        except queue.Full:
            metrics.SHADOW_DROPPED.labels(version).inc()
            return False

    def pending(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def _run(self, q: queue.Queue) -> None:
        while True:
            request, version, production_predictions = q.get()
            try:
                self._shadow_one(request, version, production_predictions)
            except Exception:  # one bad copy must not stop the thread
                log.exception("shadow call failed unexpectedly")

    def _shadow_one(self, request, version: str, production_predictions: list) -> None:
        try:
            pred = self.backends.score(CANARY, request.text, request.payload)
        except (BackendError, BackendRejected):
            metrics.SHADOW_REQUESTS.labels(version, "error").inc(request.rows or 1)
            return
        # The canary's own word on its version, as for live traffic.
        served = pred.version or version
        rows = len(pred.predictions)
        metrics.SHADOW_REQUESTS.labels(served, "ok").inc(rows)
        metrics.SHADOW_DURATION.labels(served).observe(pred.latency_s)
        if rows != len(production_predictions):
            return  # not the same rows as production scored: nothing to compare
        if pred.task != REGRESSION:
            agree = sum(truth.same_label(a, b) for a, b in zip(pred.predictions, production_predictions))
            if agree:
                metrics.SHADOW_AGREEMENT.labels(served, "agree").inc(agree)
            if rows - agree:
                metrics.SHADOW_AGREEMENT.labels(served, "disagree").inc(rows - agree)
            for label, n in Counter(class_label(p) for p in pred.predictions).items():
                metrics.PREDICTED_CLASS.labels("shadow", served, label).inc(n)
        # The user's truth judges the copy too: the controller's tests in shadow.
        if request.labels is not None and pred.task != REGRESSION:
            for outcome, n in truth.outcomes(pred.predictions, request.labels, pred.classes).items():
                metrics.SHADOW_LABELLED.labels(served, outcome).inc(n)
        elif request.values is not None and pred.task != CLASSIFICATION:
            histogram = metrics.SHADOW_ABS_ERROR.labels(served)
            for p, v in zip(pred.predictions, request.values):
                histogram.observe(truth.abs_error(p, v))
