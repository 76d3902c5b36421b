"""Open-loop labelled traffic for the fault suite: requests leave on a fixed schedule whatever the
answers do, so a slow stack shows as latency (measured from each request's scheduled time, queueing
in the client included) rather than as fewer requests.

The client behaves as a careful production client does (README, "Clients: what to retry"): it keeps
connections alive, and it retries a request only when nothing was answered on the connection (refused,
reset, or closed before any byte of an answer), within the request's deadline, with backoff. Every
retry is counted. A timeout after the request was sent, or any HTTP error status, is not retried.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from loadgen import arrivals, payloads
from loadgen.payloads import Sample

CONNECT_TIMEOUT_S = 1.0
FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 1.0


@dataclass
class Result:
    scheduled: float  # time.monotonic() at which the request was due to leave
    latency_s: float  # from `scheduled` to the end of the answer (or of the last failure)
    status: int | None  # HTTP status of the answer, None when none came
    error: str | None  # None for a 200 with a usable answer
    retries: int
    arm: str | None = None
    request_id: str | None = None
    label: object = None


class Client:
    """POSTs with keep-alive (one Session per thread) and the retry rule above."""

    def __init__(self, base_url: str, deadline_s: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.deadline_s = deadline_s
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def post(self, path: str, body: dict, scheduled: float) -> tuple[requests.Response | None, str | None, int]:
        """(answer, error, retries); error is None when an answer came, whatever its status."""
        deadline = scheduled + self.deadline_s
        retries, backoff = 0, FIRST_BACKOFF_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, "deadline", retries
            try:
                return (
                    self._session().post(self.base_url + path, json=body, timeout=(min(CONNECT_TIMEOUT_S, left), left)),
                    None,
                    retries,
                )
            except requests.ConnectTimeout:
                kind = "connect_timeout"  # nothing was sent: safe to retry
            except requests.ConnectionError as exc:
                if isinstance(exc, requests.ReadTimeout):
                    return None, "read_timeout", retries
                kind = "connection"  # refused, reset, or closed before an answer
            except requests.Timeout:
                return None, "read_timeout", retries
            if time.monotonic() + backoff >= deadline:
                return None, kind, retries
            time.sleep(backoff)
            retries, backoff = retries + 1, min(backoff * 2, MAX_BACKOFF_S)


class OpenLoop:
    """POST /predict at `rate` per second from start() to stop(), cycling through `data`."""

    def __init__(self, client: Client, data: payloads.DataSet, rate: float, workers: int = 128):
        self.client = client
        self.data = data
        self.rate = rate
        self.results: list[Result] = []
        self._lock = threading.Lock()
        self._pending: collections.Counter = collections.Counter()  # scheduled time -> in flight
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openloop")
        self._thread = threading.Thread(target=self._dispatch, name="openloop-dispatch", daemon=True)

    def start(self) -> OpenLoop:
        self._thread.start()
        return self

    def stop(self) -> list[Result]:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)
        with self._lock:
            return sorted(self.results, key=lambda r: r.scheduled)

    def between(self, start: float, end: float) -> list[Result]:
        """The results of the requests scheduled in [start, end), once all of them are done."""
        deadline = time.monotonic() + self.client.deadline_s + 5
        while time.monotonic() < deadline:
            with self._lock:
                if not any(s < end for s in self._pending):
                    break
            time.sleep(0.1)
        with self._lock:
            return sorted((r for r in self.results if start <= r.scheduled < end), key=lambda r: r.scheduled)

    def _dispatch(self) -> None:
        t0 = time.monotonic()
        samples = self.data.samples
        for i, offset in enumerate(arrivals.offsets(self.rate)):
            due = t0 + offset
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            features, label = samples[i % len(samples)]
            with self._lock:
                self._pending[due] += 1
            self._pool.submit(self._one, Sample(features, label), due)

    def _one(self, sample: Sample, scheduled: float) -> None:
        body = payloads.body(self.data, sample, with_label=True)
        resp, error, retries = self.client.post("/predict", body, scheduled)
        result = Result(scheduled, 0.0, None if resp is None else resp.status_code, error, retries, label=sample.label)
        if resp is not None:
            try:
                answer = resp.json()
            except ValueError:
                answer = {}
            if resp.status_code != 200:
                result.error = f"http_{resp.status_code}"
            elif not isinstance(answer, dict) or "prediction" not in answer:
                result.error = "bad_answer"
            else:
                result.arm, result.request_id = answer.get("model_version"), answer.get("request_id")
        result.latency_s = time.monotonic() - scheduled
        with self._lock:
            self.results.append(result)
            self._pending[scheduled] -= 1
            if not self._pending[scheduled]:
                del self._pending[scheduled]


def summary(results: list[Result]) -> dict:
    """Counts, errors by kind, and latency percentiles (ms) of a list of results."""
    latencies = sorted(r.latency_s * 1000 for r in results)
    errors: dict[str, int] = {}
    for r in results:
        if r.error:
            errors[r.error] = errors.get(r.error, 0) + 1
    arms: dict[str, int] = {}
    for r in results:
        if r.arm:
            arms[r.arm] = arms.get(r.arm, 0) + 1

    def pct(q: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[max(0, math.ceil(q * len(latencies)) - 1)], 1)  # nearest rank

    return {
        "requests": len(results),
        "client_errors": sum(errors.values()),
        "errors_by_kind": errors,
        "retried": sum(1 for r in results if r.retries),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1], 1) if latencies else None,
        "answered_by": arms,
    }
