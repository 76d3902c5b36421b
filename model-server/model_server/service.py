"""What the model server's views act on: the settings, the model that follows its alias, and the
injected faults; and scoring with those faults around it."""

from __future__ import annotations

import random
import time

from flask import g, jsonify

from model_server import metrics, scoring
from model_server.config import Settings
from model_server.faults import FaultStore, flip, perturb
from model_server.follower import LoadedModel, ModelFollower

EXTENSION = "model_server"  # app.extensions[EXTENSION]: the ModelService


class NotLoaded(RuntimeError):
    """No model loaded yet (HTTP 503)."""


def error(status: int, message: str):
    return jsonify({"error": message}), status


class ModelService:
    def __init__(self, settings: Settings, follower: ModelFollower):
        self.settings = settings
        self.alias = settings.alias
        self.follower = follower
        self.faults = FaultStore(settings.faults_file, on_change=self._publish_faults)

    def _publish_faults(self, faults) -> None:
        for kind, value in faults.as_dict().items():
            metrics.FAULT_SETTING.labels(self.alias, kind).set(value)

    def serving(self) -> LoadedModel:
        model = self.follower.current
        if model is None:
            raise NotLoaded(f"model {self.settings.model_name}@{self.alias} is not loaded yet")
        return model

    def score(self, loaded: LoadedModel, data, rows: int, params=None, *, input_errors_are_client_errors=True):
        """Injected faults around one prediction: returns (predictions, notes) or a response."""
        setting = self.faults.current()
        if setting.latency_ms:
            time.sleep(setting.latency_ms / 1000.0)
        if setting.error_rate and random.random() < setting.error_rate:
            return None, error(500, "injected fault")
        g.version = loaded.version
        raw = scoring.predict(loaded.model, data, params, input_errors_are_client_errors=input_errors_are_client_errors)
        predictions, notes = scoring.prediction_list(raw, rows)
        if setting.wrong_rate:
            predictions = self._make_wrong(predictions, loaded, setting.wrong_rate)
        return predictions, notes

    def _make_wrong(self, predictions: list, loaded: LoadedModel, rate: float) -> list:
        if loaded.task == "regression":
            factor = self.settings.wrong_value_factor
            return [perturb(p, factor) if random.random() < rate else p for p in predictions]
        labels = loaded.labels(predictions)
        return [flip(p, labels) if random.random() < rate else p for p in predictions]

    def describe(self, loaded: LoadedModel) -> dict:
        return {
            "version": loaded.version,
            "model": self.settings.model_name,
            "alias": self.alias,
            "classes": list(loaded.classes) if loaded.classes else None,
            "task": loaded.task,
        }
