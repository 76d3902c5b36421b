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

from canary_common.payload import TASKS
from canary_router.datapath.httpclient import ConnectFailed, HTTPFailure, KeepAlivePool, ReadTimeout


class BackendError(RuntimeError):
    """A model server failed: unreachable, timed out, 5xx, or an answer we cannot use."""

    def __init__(self, message: str, kind: str = "error", status: int | None = None):
        super().__init__(message)
        self.kind = kind  # unreachable | timeout | broken | http | bad_answer | ejected (not tried)
        self.status = status


class BackendRejected(RuntimeError):
    """The model server refused the input itself (4xx): the client's problem, not an outage."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Prediction:
    predictions: list  # one per row (the text shorthand: one)
    version: str | None
    classes: tuple | None
    latency_s: float
    task: str | None = None  # classification | regression, as the model server says

    @property
    def prediction(self):
        return self.predictions[0]


@dataclass(frozen=True)
class Profile:
    """What a model server said about the version it serves."""

    version: str | None
    classes: tuple | None
    task: str | None


class Backends:
    def __init__(
        self, urls: dict[str, str], timeout_s: float = 2.0, pool_size: int = 32, connect_timeout_s: float | None = None
    ):
        self.urls = dict(urls)
        self.timeout_s = timeout_s
        self.pool_size = pool_size
        # A dead server is seen at connect time: no need to wait the whole read timeout for it.
        self.timeouts = (min(connect_timeout_s or timeout_s, timeout_s), timeout_s)
        self._local = threading.local()
        self._profiles: dict[str, Profile] = {}  # per arm: what its last answer said
        self._pools = {
            arm: KeepAlivePool(url, self.timeouts[0], self.timeouts[1], max_idle=pool_size)
            for arm, url in self.urls.items()
        }

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
        """The lab's shorthand: one text, to the model server's /predict."""
        return self._call(arm, "/predict", json.dumps({"text": text}).encode(), "prediction")

    def invoke(self, arm: str, payload: bytes) -> Prediction:
        """An MLflow scoring payload, as the client sent it, to the model server's /invocations."""
        return self._call(arm, "/invocations", payload, "predictions")

    def score(self, arm: str, text: str | None, payload: bytes | None) -> Prediction:
        return self.predict(arm, text) if payload is None else self.invoke(arm, payload)

    def _call(self, arm: str, path: str, payload: bytes, field: str) -> Prediction:
        began = time.perf_counter()
        try:
            resp = self._pools[arm].post_json(path, payload)
        except ConnectFailed as exc:
            raise BackendError(f"{arm} model server unreachable: {exc}", "unreachable") from None
        except ReadTimeout:
            raise BackendError(f"{arm} model server timed out after {self.timeout_s:g}s", "timeout") from None
        except HTTPFailure as exc:
            raise BackendError(f"{arm} model server broke the connection: {exc}", "broken") from None
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
        if not isinstance(body, dict) or field not in body:
            raise BackendError(f"{arm} model server answer has no '{field}'", "bad_answer")
        predictions = [body[field]] if field == "prediction" else body[field]
        if not isinstance(predictions, list) or not predictions:
            raise BackendError(f"{arm} model server answer has no list of predictions", "bad_answer")
        version = body.get("version")
        self._remember(arm, version, body.get("classes"), body.get("task"))
        known = self._profiles[arm]
        return Prediction(predictions, known.version, known.classes, elapsed, known.task)

    # -- what the model is (to check the truth sent with a request) ------------------------------
    def profile(self, arm: str, version: str | None, ask: bool = False) -> Profile | None:
        """The classes and task of `version` behind `arm`, as its last answer (or, with `ask`,
        its /ready) told; None when what is known is about another version."""
        known = self._profiles.get(arm)
        if (known is None or known.version != version) and ask:
            self._ask_ready(arm)
            known = self._profiles.get(arm)
        return known if known is not None and (version is None or known.version == version) else None

    def _remember(self, arm: str, version, classes, task) -> None:
        self._profiles[arm] = Profile(
            None if version is None else str(version), _classes(classes), task if task in TASKS else None
        )

    def _ask_ready(self, arm: str) -> None:
        try:
            resp = self.session.get(self.urls[arm] + "/ready", timeout=min(self.timeout_s, 1.0))
            body = resp.json() if resp.status_code == 200 else {}
        except (requests.RequestException, ValueError):
            return
        if isinstance(body, dict) and body.get("version") is not None:
            self._remember(arm, body["version"], body.get("classes"), body.get("task"))

    # -- fault injection on the canary ---------------------------------------------------------
    def set_faults(self, arm: str, faults: dict) -> dict:
        try:
            resp = self.session.post(self.urls[arm] + "/faults", json=faults, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise BackendError(f"{arm} model server unreachable: {type(exc).__name__}", "unreachable") from None
        if resp.status_code != 200:
            raise BackendError(
                f"{arm} model server refused faults: HTTP {resp.status_code}: {_error_text(resp)}",
                "http",
                resp.status_code,
            )
        try:
            return resp.json()
        except ValueError:
            return {}


def _classes(value) -> tuple | None:
    """The model's class labels, if they are labels a client can send (integers or strings)."""
    if isinstance(value, list) and value and all(isinstance(c, (int, str)) and not isinstance(c, bool) for c in value):
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
