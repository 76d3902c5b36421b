"""Decisions reach people: every decision but "hold" is POSTed as JSON to a webhook.

`publish` (what `Controller.record` calls) only appends to a bounded in-memory queue, so a slow
or dead receiver never slows the control loop; when the queue is full the oldest waiting delivery
is dropped and counted. One background thread POSTs the queue in order, retrying connection
errors, timeouts, 5xx and 429 with exponential backoff (1 s, 2 s, 4 s, ...) up to `max_attempts`;
any other status is final. A delivery keeps its id over its retries (`delivery_id` in the body, the
`X-Canary-Delivery` header), so a receiver can drop duplicates.
Metric: `canary_controller_webhook_deliveries_total{result="delivered"|"failed"|"dropped"}`.
"""

from __future__ import annotations

import collections
import logging
import threading
import uuid
from datetime import UTC, datetime

import requests

from canary_common.contracts import DELIVERY_HEADER

from . import telemetry

log = logging.getLogger("canary.controller.notify")
QUIET = frozenset({"hold"})  # repeats every poll while holding: not worth a message
RESULTS = ("delivered", "failed", "dropped")


def backoff_delay(attempt: int, base_s: float, max_s: float) -> float:
    """Seconds to wait after failed attempt `attempt` (1, 2, ...): base, 2 base, 4 base, ... capped."""
    return min(base_s * 2 ** (attempt - 1), max_s)


def decision_payload(decision: str, summary: str, at: float, model_name: str, state) -> dict:
    """The webhook body. `state`: the RolloutState after the decision's action (for a rollback:
    weight 0, phase rolled_back)."""
    return {
        "delivery_id": uuid.uuid4().hex,
        "decision": decision,
        "model_name": model_name,
        "production_version": getattr(state, "production_version", None),
        "canary_version": getattr(state, "canary_version", None),
        "weight": getattr(state, "weight", None),
        "phase": getattr(state, "phase", None),
        "mode": getattr(state, "mode", None),
        "summary": summary,
        "at": at,
        "time": datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


class Notifier:
    """A webhook sender: a bounded queue and one daemon thread that delivers it."""

    def __init__(
        self,
        url: str,
        token: str = "",
        max_attempts: int = 5,
        timeout_s: float = 5.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        queue_size: int = 100,
    ):
        self.url, self.token = url, token
        self.max_attempts, self.timeout_s = max(1, max_attempts), timeout_s
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.counts = dict.fromkeys(RESULTS, 0)  # this sender's share of the metric (tests read it)
        self._queue: collections.deque = collections.deque()
        self._queue_size = queue_size
        self._cond = threading.Condition()
        self._busy = False
        self._stop = threading.Event()
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="decision-webhook", daemon=True)
        self._thread.start()

    def send(self, payload: dict) -> None:
        """Queue one delivery; never blocks on the network."""
        with self._cond:
            if len(self._queue) >= self._queue_size:
                dropped = self._queue.popleft()
                self._count("dropped")
                log.warning("decision webhook queue full: dropped delivery %s", dropped.get("delivery_id"))
            self._queue.append(payload)
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """True once the queue is empty and nothing is in flight (within `timeout` seconds)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread: waiting deliveries are abandoned, a backoff wait is cut short."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout)

    def _count(self, result: str) -> None:
        self.counts[result] += 1
        telemetry.WEBHOOK_DELIVERIES.labels(result=result).inc()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._stop.is_set())
                if self._stop.is_set():
                    return
                payload, self._busy = self._queue.popleft(), True
            result = "failed"
            try:
                result = self._deliver(payload)
            except Exception:  # the thread must outlive any one delivery
                log.exception("decision webhook: delivery %s crashed", payload.get("delivery_id"))
            with self._cond:
                self._count(result)
                self._busy = False
                self._cond.notify_all()

    def _deliver(self, payload: dict) -> str:
        delivery = payload.get("delivery_id")
        for attempt in range(1, self.max_attempts + 1):
            retry, why = self._attempt(payload)
            if not retry:
                if why is None:
                    return "delivered"
                log.warning("decision webhook: delivery %s refused (%s), not retried", delivery, why)
                return "failed"
            if attempt == self.max_attempts:
                break
            delay = backoff_delay(attempt, self.backoff_s, self.max_backoff_s)
            log.info(
                "decision webhook: delivery %s attempt %d failed (%s), retry in %gs", delivery, attempt, why, delay
            )
            if self._stop.wait(delay):
                return "failed"
        log.warning("decision webhook: delivery %s failed after %d attempts (%s)", delivery, self.max_attempts, why)
        return "failed"

    def _attempt(self, payload: dict) -> tuple[bool, str | None]:
        """One POST: (retry?, what went wrong or None when delivered)."""
        headers = {DELIVERY_HEADER: str(payload.get("delivery_id"))}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            resp = self._session.post(self.url, json=payload, headers=headers, timeout=self.timeout_s)
        except requests.RequestException as exc:  # connection refused or reset, timeout
            return True, type(exc).__name__
        if resp.status_code < 300:
            return False, None
        return resp.status_code >= 500 or resp.status_code == 429, f"HTTP {resp.status_code}"


_notifiers: dict[tuple, Notifier] = {}
_notifiers_lock = threading.Lock()


def notifier_for(settings) -> Notifier | None:
    """The one sender per webhook configuration, started on first use (after gunicorn forks)."""
    if not settings.decision_webhook_url:
        return None
    key = (
        settings.decision_webhook_url,
        settings.decision_webhook_token,
        settings.decision_webhook_max_attempts,
        settings.decision_webhook_timeout_s,
    )
    with _notifiers_lock:
        if key not in _notifiers:
            _notifiers[key] = Notifier(*key)
        return _notifiers[key]


def close_all(timeout: float = 5.0) -> None:
    """Stop every sender `notifier_for` started (tests; a process exiting needs nothing)."""
    with _notifiers_lock:
        notifiers = list(_notifiers.values())
        _notifiers.clear()
    for notifier in notifiers:
        notifier.close(timeout)


def publish(settings, state, entry: dict) -> dict | None:
    """Send a recorded decision (`entry`: at, decision, summary); the payload, or None if not sent."""
    notifier = notifier_for(settings)
    if notifier is None or entry["decision"] in QUIET:
        return None
    payload = decision_payload(entry["decision"], entry["summary"], entry["at"], settings.model_name, state)
    notifier.send(payload)
    return payload
