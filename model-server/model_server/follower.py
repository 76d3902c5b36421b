"""Keeps the version behind the alias loaded, in the background.

The served model is one reference (`ModelFollower.current`); a new version is loaded completely
before that reference is replaced, so a request sees either the old or the new model, never a
half-loaded one, and never waits for a load.

A version that fails to load (a broken artifact, a missing dependency, types skops does not
trust, ...) does not stop the serving: the old version goes on answering, the failure is kept in
`ModelFollower.load_error` (shown by /ready), counted in `model_server_model_load_failures_total`
and flagged by `model_server_model_load_error{alias,version} 1`, and the load is retried with a
back-off while the alias keeps pointing at that version.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field

from canary_common.registry import NotFound, RegistryClient
from model_server import metrics, modelinfo

log = logging.getLogger("model_server.follower")

# MLflow's own HTTP retries would stall a failed load for minutes; this loop retries instead.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")

ERROR_MAX_CHARS = 2000
RETIRE_AFTER_S = 60.0  # a replaced model's files are removed this long after the swap
MAX_SEEN_LABELS = 100


@dataclass(frozen=True)
class LoadedModel:
    version: str
    model: object  # an mlflow.pyfunc.PyFuncModel (or a stand-in with .predict in tests)
    classes: tuple | None = None  # class labels, None for regression or when unknown
    loaded_at: float = field(default_factory=time.time)
    task: str = "classification"
    task_source: str = "given"  # see modelinfo.infer_task
    path: str | None = None  # the downloaded artifacts, kept while served (models may read them late)
    _seen: set = field(default_factory=set, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @classmethod
    def inspect(cls, version: str, model, tags: dict | None = None, path: str | None = None) -> LoadedModel:
        info = modelinfo.infer_task(model, tags, str(version))
        return cls(str(version), model, info.classes, time.time(), info.task, info.source, path)

    def labels(self, predictions: list) -> tuple:
        """The class labels to flip between: the known classes, else the labels seen so far."""
        if self.classes:
            return self.classes
        with self._lock:
            for p in predictions:
                if len(self._seen) >= MAX_SEEN_LABELS:
                    break
                if isinstance(p, (str, int, float, bool)):
                    self._seen.add(p)
            return tuple(self._seen)


class LoadFailed(RuntimeError):
    """A version could not be loaded; `stage` says at which step."""

    def __init__(self, stage: str, cause: BaseException, hint: str = ""):
        self.stage = stage
        self.cause = cause
        super().__init__(f"{stage}: {type(cause).__name__}: {cause}{hint}")


def _requirements_hint(local_path: str) -> str:
    try:
        with open(os.path.join(local_path, "requirements.txt"), encoding="utf-8") as fh:
            reqs = [line.strip() for line in fh if line.strip() and not line.startswith("#")]
    except OSError:
        return ""
    return f" (the model's requirements.txt: {', '.join(reqs[:20])})" if reqs else ""


def load_from_registry(tracking_uri: str, model_name: str, version: str) -> LoadedModel:
    """Read the version's tags, download its artifacts and load them as a pyfunc model.

    The download folder is kept while the model is served (a custom model may open its
    artifacts lazily) and removed once a newer version replaced it (see ModelFollower)."""
    from mlflow.tracking import MlflowClient

    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    try:
        tags = dict(MlflowClient(tracking_uri).get_model_version(model_name, str(version)).tags or {})
    except Exception as exc:
        raise LoadFailed("registry", exc) from exc
    path = tempfile.mkdtemp(prefix=f"model-{model_name}-v{version}-")
    try:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_name}/{version}", dst_path=path)
        except Exception as exc:
            raise LoadFailed("download", exc) from exc
        try:
            model = mlflow.pyfunc.load_model(local)
        except Exception as exc:
            hint = _requirements_hint(local) if isinstance(exc, ImportError) else ""
            raise LoadFailed("load", exc, hint) from exc
        try:
            return LoadedModel.inspect(version, model, tags, path)
        except Exception as exc:
            raise LoadFailed("inspect", exc) from exc
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def _error_text(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, LoadFailed) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= ERROR_MAX_CHARS else text[:ERROR_MAX_CHARS] + " ..."


class ModelFollower:
    def __init__(self, settings, registry: RegistryClient | None = None, loader=None):
        self.settings = settings
        self.alias = settings.alias
        self.registry = registry or RegistryClient(settings.tracking_uri, settings.model_name, timeout=5.0)
        self.loader = loader or (
            lambda version: load_from_registry(settings.tracking_uri, settings.model_name, version)
        )
        self.current: LoadedModel | None = None
        self.last_error: str = ""
        self.alias_missing = False  # the registry says no version has the alias (yet)
        # The version the alias points at that could not be loaded, while it does: a dict
        # {"version", "stage", "error", "attempts", "first_failed_at", "last_failed_at"}.
        self.load_error: dict | None = None
        self._retry_at = 0.0  # time.monotonic() of the next try of the failed version
        self._retry_delay = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retiring: set[str] = set()  # folders of replaced models, removed after a delay
        atexit.register(self._cleanup)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"follow-{self.alias}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def check_once(self) -> bool:
        """Resolve the alias and load its version if it is not the one served; True if swapped.

        Raises what the loader raised when the load fails (the old model stays served). A
        version that failed is tried again only after its back-off, so a call in between
        returns False."""
        try:
            version = self.registry.alias_version(self.alias)
        except NotFound:
            self._clear_load_error("the alias no longer exists")
            raise
        current = self.current
        if current is not None and current.version == version:
            self._clear_load_error(f"the alias points at version {version} again")
            return False
        failed = self.load_error
        if failed and failed["version"] == version and time.monotonic() < self._retry_at:
            return False
        started = time.monotonic()
        try:
            loaded = self.loader(version)
        except Exception as exc:
            metrics.RELOADS.labels(self.alias, "failure").inc()
            self._record_failure(version, exc)
            raise
        self.current = loaded  # the swap: one reference assignment
        self._clear_load_error(f"version {version} loaded")
        metrics.RELOADS.labels(self.alias, "success").inc()
        if current is not None:
            metrics.MODEL_INFO.labels(self.alias, current.version).set(0)
        metrics.MODEL_INFO.labels(self.alias, loaded.version).set(1)
        log.info(
            "serving %s@%s = version %s (was %s; loaded in %.1fs; task %s from %s, classes %s)",
            self.settings.model_name,
            self.alias,
            version,
            current.version if current else "none",
            time.monotonic() - started,
            loaded.task,
            loaded.task_source,
            list(loaded.classes) if loaded.classes else None,
        )
        self._retire(current)
        return True

    def _retire(self, loaded: LoadedModel | None, delay: float = RETIRE_AFTER_S) -> None:
        """Remove a replaced model's files once requests still using it are surely done."""
        if loaded is None or not loaded.path:
            return
        path = loaded.path
        self._retiring.add(path)

        def remove():
            shutil.rmtree(path, ignore_errors=True)
            self._retiring.discard(path)

        timer = threading.Timer(delay, remove)
        timer.daemon = True
        timer.start()

    def _record_failure(self, version: str, exc: Exception) -> None:
        previous = self.load_error
        if previous and previous["version"] != version:
            metrics.LOAD_ERROR.labels(self.alias, previous["version"]).set(0)
            previous = None
        now = time.time()
        error = _error_text(exc)
        self._retry_delay = (
            min(max(self._retry_delay * 2, 1.0), self.settings.load_retry_max_s)
            if previous
            else min(1.0, self.settings.load_retry_max_s)
        )
        self._retry_at = time.monotonic() + self._retry_delay
        self.load_error = {
            "version": str(version),
            "stage": getattr(exc, "stage", "load"),
            "error": error,
            "attempts": (previous["attempts"] + 1) if previous else 1,
            "first_failed_at": previous["first_failed_at"] if previous else now,
            "last_failed_at": now,
        }
        metrics.LOAD_FAILURES.labels(self.alias, str(version)).inc()
        metrics.LOAD_ERROR.labels(self.alias, str(version)).set(1)
        serving = f"version {self.current.version}" if self.current else "nothing"
        if previous is None or previous["error"] != error:  # the first failure in full, then one line
            log.warning(
                "model %s@%s: version %s failed to load: %s; still serving %s; retrying in %.0fs",
                self.settings.model_name,
                self.alias,
                version,
                error,
                serving,
                self._retry_delay,
                exc_info=exc if previous is None else None,
            )
        else:
            log.info(
                "model %s@%s: version %s failed to load again (attempt %d); still serving %s",
                self.settings.model_name,
                self.alias,
                version,
                self.load_error["attempts"],
                serving,
            )

    def _clear_load_error(self, why: str) -> None:
        failed = self.load_error
        if failed is None:
            return
        self.load_error = None
        self._retry_delay = 0.0
        metrics.LOAD_ERROR.labels(self.alias, failed["version"]).set(0)
        log.info(
            "model %s@%s: version %s no longer pending after %d failed load(s): %s",
            self.settings.model_name,
            self.alias,
            failed["version"],
            failed["attempts"],
            why,
        )

    def _run(self) -> None:
        delay = self.settings.alias_poll_s
        while not self._stop.is_set():
            before = self._failure_mark()
            try:
                self.check_once()
                self.alias_missing = False
                if self.load_error is None:
                    self.last_error = ""
                delay = self.settings.alias_poll_s
            except NotFound as exc:
                self._note_error(f"alias {self.alias!r} not found: {exc}")
                self.alias_missing = True  # after the reason, which /ready gives with it
                delay = self.settings.alias_poll_s
            except Exception as exc:  # keep serving the old model
                if self.load_error is not None and self._failure_mark() != before:
                    # a failed load: logged already, retried on its own back-off
                    self.last_error = f"version {self.load_error['version']} failed to load: {self.load_error['error']}"
                    delay = self.settings.alias_poll_s
                else:  # the registry is unreachable or refused: back off
                    self._note_error(f"{type(exc).__name__}: {exc}")
                    delay = min(max(delay * 2, 1.0), self.settings.load_retry_max_s)
            self._stop.wait(delay)

    def _failure_mark(self):
        failed = self.load_error
        return (failed["version"], failed["attempts"]) if failed else None

    def _note_error(self, message: str) -> None:
        if message != self.last_error:  # log each distinct problem once, not every poll
            log.warning(
                "model %s@%s: %s (still serving %s)",
                self.settings.model_name,
                self.alias,
                message,
                self.current.version if self.current else "nothing",
            )
        self.last_error = message

    def _cleanup(self) -> None:
        """At exit: the downloaded models' folders."""
        current = self.current
        paths = set(self._retiring) | ({current.path} if current is not None and current.path else set())
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)
