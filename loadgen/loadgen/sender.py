"""One labelled POST /predict and what came of it."""

from __future__ import annotations

import threading
import time

import requests

from loadgen import payloads
from loadgen.payloads import Batch, DataSet, Sample
from loadgen.tally import Outcome

__all__ = ["Batch", "PredictSender", "Sample"]


class PredictSender:
    """Callable by many worker threads; each keeps its own Session (Sessions are not thread-safe)."""

    def __init__(self, target_url: str, timeout_s: float, late=None, data: DataSet | None = None):
        self.url = target_url.rstrip("/") + "/predict"
        self.timeout_s = timeout_s
        self.late = late  # a LateLabeller: labels go to /feedback later instead of inline
        self.data = data if data is not None else payloads.sentiment()
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def __call__(self, item: Sample | Batch) -> Outcome:
        body = payloads.body(self.data, item, with_label=item.send_label and self.late is None)
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
        samples = payloads.samples_of(item)
        predictions, request_ids = payloads.answered(answer, len(samples))
        if item.send_label and self.late is not None:
            for request_id, sample in zip(request_ids, samples, strict=False):
                if isinstance(request_id, str):
                    self.late.submit(request_id, sample.label)
        version = answer.get("version")
        return Outcome(
            ok=True,
            arm=arm,
            version=None if version is None else str(version),
            latency_ms=latency_ms,
            **self._judged(predictions, samples),
        )

    def _judged(self, predictions: list, samples: tuple[Sample, ...]) -> dict:
        """The Outcome's fields comparing predictions with labels: `correct` for one labelled
        class, counts for k rows, absolute errors for values."""
        pairs = [(p, s.label) for p, s in zip(predictions, samples, strict=False) if p is not None]
        if self.data.task == "regression":
            errors = (payloads.abs_error(p, value) for p, value in pairs)
            return {"abs_errors": tuple(e for e in errors if e is not None)}
        if len(samples) == 1:
            return {"correct": payloads.same_label(*pairs[0]) if pairs else None}
        return {"judged": len(pairs), "n_correct": sum(payloads.same_label(p, y) for p, y in pairs)}
