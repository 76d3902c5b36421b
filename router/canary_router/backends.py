"""Calls to the model servers (and the controller): pooled connections, hard timeouts.

The prediction path, which every request crosses, goes through the small keep-alive client in
httpclient.py (profiling showed requests, then urllib3, as a third of the router's CPU). The rare
calls (faults, /ready) keep a requests session per worker thread, since requests.Session is not
promised to be thread-safe.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

from .httpclient import ConnectFailed, HTTPFailure, KeepAlivePool, ReadTimeout

class BackendError(RuntimeError):
    """A model server failed: unreachable, timed out, 5xx, or an answer we cannot use."""

    def __init__(self, message: str, kind: str = "error", status: int | None = None):
        super().__init__(message)
        self.kind = kind  # unreachable | timeout | http | bad_answer
        self.status = status


class BackendRejected(RuntimeError):
    """The model server refused the input itself (4xx): the client's problem, not an outage."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Prediction:
    prediction: object
    version: str | None
    classes: tuple | None
    latency_s: float


class Backends:
    def __init__(self, urls: dict[str, str], timeout_s: float = 2.0, pool_size: int = 32,
                 connect_timeout_s: float | None = None):
        self.urls = dict(urls)
        self.timeout_s = timeout_s
        self.pool_size = pool_size
        # A dead server is seen at connect time: no need to wait the whole read timeout for it.
        self.timeouts = (min(connect_timeout_s or timeout_s, timeout_s), timeout_s)
        self._local = threading.local()
        self._classes: dict[str, tuple] = {}
        self._pools = {arm: KeepAlivePool(url, self.timeouts[0], self.timeouts[1], max_idle=pool_size)
                       for arm, url in self.urls.items()}

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self.pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    # -- predictions ----------------------------------------------------------------------
    def predict(self, arm: str, text: str) -> Prediction:
        payload = json.dumps({"text": text}).encode()
        began = time.perf_counter()
        try:
            resp = self._pools[arm].post_json("/predict", payload)
        except ConnectFailed as exc:
            raise BackendError(f"{arm} model server unreachable: {exc}", "unreachable") from None
        except ReadTimeout:
            raise BackendError(f"{arm} model server timed out after {self.timeout_s:g}s", "timeout") from None
        except HTTPFailure as exc:
            raise BackendError(f"{arm} model server unreachable: {exc}", "unreachable") from None
        elapsed = time.perf_counter() - began
        status = resp.status
        if status >= 500:
            raise BackendError(f"{arm} model server answered HTTP {status}", "http", status)
        if status in (400, 413, 422):
            raise BackendRejected(_error_text_of(resp.body), status)
        if status != 200:
            raise BackendError(f"{arm} model server answered HTTP {status}", "http", status)
        try:
            body = json.loads(resp.body)
        except ValueError:
            raise BackendError(f"{arm} model server answered with invalid JSON", "bad_answer") from None
        if not isinstance(body, dict) or "prediction" not in body:
            raise BackendError(f"{arm} model server answer has no 'prediction'", "bad_answer")
        classes = _classes(body.get("classes"))
        if classes:
            self._classes[arm] = classes
        version = body.get("version")
        return Prediction(body["prediction"], None if version is None else str(version), classes, elapsed)

    # -- class labels (to validate actual_label) ---------------------------------------------
    def cached_classes(self, arm: str) -> tuple | None:
        return self._classes.get(arm)

    def classes(self, arm: str) -> tuple | None:
        """The arm's class labels: cached from its answers, else asked once from GET /ready."""
        if arm in self._classes:
            return self._classes[arm]
        try:
            resp = self.session.get(self.urls[arm] + "/ready", timeout=min(self.timeout_s, 1.0))
            classes = _classes(resp.json().get("classes")) if resp.status_code == 200 else None
        except (requests.RequestException, ValueError, AttributeError):
            classes = None
        if classes:
            self._classes[arm] = classes
        return classes

    # -- fault injection on the canary ---------------------------------------------------------
    def set_faults(self, arm: str, faults: dict) -> dict:
        try:
            resp = self.session.post(self.urls[arm] + "/faults", json=faults, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise BackendError(f"{arm} model server unreachable: {type(exc).__name__}", "unreachable") from None
        if resp.status_code != 200:
            raise BackendError(f"{arm} model server refused faults: HTTP {resp.status_code}: {_error_text(resp)}",
                               "http", resp.status_code)
        try:
            return resp.json()
        except ValueError:
            return {}


def _classes(value) -> tuple | None:
    if isinstance(value, list) and value and all(isinstance(c, int) and not isinstance(c, bool) for c in value):
        return tuple(value)
    return None


def _error_text(resp: requests.Response) -> str:
    return _error_text_of(resp.content)


def _error_text_of(data: bytes) -> str:
    try:
        body = json.loads(data)
        if isinstance(body, dict) and "error" in body:
            return str(body["error"])[:500]
    except ValueError:
        pass
    return data[:500].decode("utf-8", "replace")
