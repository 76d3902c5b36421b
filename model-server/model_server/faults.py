"""Injected faults, shared by all gunicorn workers through one small JSON file.

A POST lands on one worker only, so the setting cannot live in memory: it is written to a file
(atomically, by rename) and every worker re-reads the file when its identity changes.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import threading
from dataclasses import asdict, dataclass

log = logging.getLogger("model_server.faults")

MAX_LATENCY_MS = 10000
KINDS = ("wrong_rate", "error_rate", "latency_ms")


class FaultError(ValueError):
    """A fault setting that is not allowed; the message says why."""


@dataclass(frozen=True)
class Faults:
    wrong_rate: float = 0.0
    error_rate: float = 0.0
    latency_ms: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def validate(payload) -> dict:
    """The parts of a fault setting a client sent, checked; raises FaultError."""
    if not isinstance(payload, dict):
        raise FaultError('body must be a JSON object such as {"wrong_rate": 0.4}')
    unknown = sorted(set(payload) - set(KINDS))
    if unknown:
        raise FaultError(f"unknown fault(s) {unknown}; allowed: {list(KINDS)}")
    clean = {}
    for key, value in payload.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise FaultError(f"{key} must be a number, got {value!r}")
        high = MAX_LATENCY_MS if key == "latency_ms" else 1.0
        if not 0 <= value <= high:
            raise FaultError(f"{key} must be from 0 to {high:g}, got {value!r}")
        clean[key] = float(value)
    return clean


class FaultStore:
    def __init__(self, path: str, on_change=None):
        self.path = path
        self._on_change = on_change
        self._lock = threading.RLock()  # update() reads the current setting under it
        self._identity = None
        self._faults = Faults()

    def _file_identity(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def current(self) -> Faults:
        """The setting in force; one stat() per call, a read only when the file changed."""
        identity = self._file_identity()
        if identity == self._identity:
            return self._faults
        with self._lock:
            faults = Faults()
            if identity is not None:
                try:
                    with open(self.path, encoding="utf-8") as fh:
                        faults = Faults(**validate(json.load(fh)))
                except (OSError, ValueError, TypeError) as exc:
                    # A broken file must not break serving: no faults, and say so.
                    log.warning("ignoring unreadable faults file %s: %s", self.path, exc)
            self._faults, self._identity = faults, identity
        if self._on_change:
            self._on_change(faults)
        return faults

    def update(self, payload) -> Faults:
        """Merge a validated partial setting into the current one and publish it to all workers."""
        changes = validate(payload)
        with self._lock:
            merged = Faults(**{**self.current().as_dict(), **changes})
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".faults-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(merged.as_dict(), fh)
            os.replace(tmp, self.path)
        log.info("faults set to %s", merged.as_dict())
        return self.current()


def flip(prediction, classes):
    """Another class than the one predicted (classification under `wrong_rate`).

    Picks among `classes`; without another known class a boolean is negated and a 0/1 label
    swapped, anything else (and non-scalar predictions: records, probability lists) is left."""
    if prediction is None or isinstance(prediction, (dict, list)):
        return prediction
    others = [c for c in classes or () if c != prediction]
    if others:
        return random.choice(others)
    if isinstance(prediction, bool):
        return not prediction
    if isinstance(prediction, int) and prediction in (0, 1):
        return 1 - prediction
    return prediction


def perturb(prediction, factor: float):
    """A wrong value (regression under `wrong_rate`): the prediction times `factor`, or
    `factor - 1` where it is 0; lists and records of numbers element by element."""
    if prediction is None or isinstance(prediction, bool):
        return prediction
    if isinstance(prediction, (int, float)):
        return prediction * factor if prediction != 0 else factor - 1.0
    if isinstance(prediction, list):
        return [perturb(p, factor) for p in prediction]
    if isinstance(prediction, dict):
        return {k: perturb(v, factor) for k, v in prediction.items()}
    return prediction
