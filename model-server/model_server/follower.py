"""Keeps the version behind the alias loaded, in the background.

The served model is one reference (`ModelFollower.current`); a new version is loaded completely
before that reference is replaced, so a request sees either the old or the new model, never a
half-loaded one, and never waits for a load.
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass

from canary_common.dataset import CLASSES
from canary_common.registry import NotFound, RegistryClient
from model_server import metrics

log = logging.getLogger("model_server.follower")

# MLflow's own HTTP retries would stall a failed load for minutes; this loop retries instead.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


@dataclass(frozen=True)
class LoadedModel:
    version: str
    model: object  # an mlflow.pyfunc.PyFuncModel (or a stand-in with .predict in tests)
    classes: tuple
    loaded_at: float

    def predict(self, texts: list[str]) -> list[int]:
        import pandas as pd

        return [int(p) for p in self.model.predict(pd.DataFrame({"text": texts}))]


def load_from_registry(tracking_uri: str, model_name: str, version: str) -> LoadedModel:
    """Download and load one version; the download folder is removed once it is in memory."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="model-") as tmp:
        model = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}", dst_path=tmp)
    try:
        classes = tuple(int(c) for c in model.get_raw_model().classes_)
    except Exception:  # a flavour without classes_: the dataset's classes
        classes = CLASSES
    return LoadedModel(version=str(version), model=model, classes=classes, loaded_at=time.time())


class ModelFollower:
    def __init__(self, settings, registry: RegistryClient | None = None, loader=None):
        self.settings = settings
        self.alias = settings.alias
        self.registry = registry or RegistryClient(settings.tracking_uri, settings.model_name, timeout=5.0)
        self.loader = loader or (lambda version: load_from_registry(
            settings.tracking_uri, settings.model_name, version))
        self.current: LoadedModel | None = None
        self.last_error: str = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"follow-{self.alias}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def check_once(self) -> bool:
        """Resolve the alias and load its version if it is not the one served; True if swapped."""
        version = self.registry.alias_version(self.alias)
        current = self.current
        if current is not None and current.version == version:
            return False
        started = time.monotonic()
        try:
            loaded = self.loader(version)
        except Exception:
            metrics.RELOADS.labels(self.alias, "failure").inc()
            raise
        self.current = loaded  # the swap: one reference assignment
        metrics.RELOADS.labels(self.alias, "success").inc()
        if current is not None:
            metrics.MODEL_INFO.labels(self.alias, current.version).set(0)
        metrics.MODEL_INFO.labels(self.alias, loaded.version).set(1)
        log.info("serving %s@%s = version %s (was %s; loaded in %.1fs)", self.settings.model_name,
                 self.alias, version, current.version if current else "none", time.monotonic() - started)
        return True

    def _run(self) -> None:
        delay = self.settings.alias_poll_s
        while not self._stop.is_set():
            try:
                self.check_once()
                self.last_error = ""
                delay = self.settings.alias_poll_s
            except NotFound as exc:
                self._note_error(f"alias {self.alias!r} not found: {exc}")
                delay = self.settings.alias_poll_s
            except Exception as exc:  # keep serving the old model; retry with back-off
                self._note_error(f"{type(exc).__name__}: {exc}")
                delay = min(max(delay * 2, 1.0), self.settings.load_retry_max_s)
            self._stop.wait(delay)

    def _note_error(self, message: str) -> None:
        if message != self.last_error:  # log each distinct problem once, not every poll
            log.warning("model %s@%s: %s (still serving %s)", self.settings.model_name, self.alias,
                        message, self.current.version if self.current else "nothing")
        self.last_error = message
