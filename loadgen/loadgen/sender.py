"""One labelled POST /predict and what came of it."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests

from loadgen.tally import Outcome


@dataclass(frozen=True)
class Sample:
    text: str
    label: int
    send_label: bool = True  # False: the router gets no actual_label (a label that never arrives)


class PredictSender:
    """Callable by many worker threads; each keeps its own Session (Sessions are not thread-safe)."""

    def __init__(self, target_url: str, timeout_s: float, late=None):
        self.url = target_url.rstrip("/") + "/predict"
        self.timeout_s = timeout_s
        self.late = late  # a LateLabeller: labels go to /feedback later instead of inline
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def __call__(self, sample: Sample) -> Outcome:
        body = {"text": sample.text}
        if sample.send_label and self.late is None:
            body["actual_label"] = sample.label
        started = time.monotonic()
        try:
            resp = self._session().post(self.url, json=body, timeout=self.timeout_s)
        except requests.Timeout:
            return Outcome(ok=False, error="timeout", latency_ms=(time.monotonic() - started) * 1000)
        except requests.ConnectionError:
            return Outcome(ok=False, error="connection", latency_ms=(time.monotonic() - started) * 1000)
        except requests.RequestException as exc:
            return Outcome(ok=False, error=type(exc).__name__)
        latency_ms = (time.monotonic() - started) * 1000
        if resp.status_code != 200:
            return Outcome(ok=False, error=f"http_{resp.status_code}", latency_ms=latency_ms)
        try:
            answer = resp.json()
            arm = answer["model_version"]
        except (ValueError, KeyError, TypeError):
            return Outcome(ok=False, error="bad_answer", latency_ms=latency_ms)
        prediction = answer.get("prediction")
        correct = None if prediction is None else prediction == sample.label
        version = answer.get("version")
        if sample.send_label and self.late is not None and isinstance(answer.get("request_id"), str):
            self.late.submit(answer["request_id"], sample.label)
        return Outcome(ok=True, arm=arm, version=None if version is None else str(version),
                       correct=correct, latency_ms=latency_ms)
