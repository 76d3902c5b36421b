"""The Flask application: prediction endpoints, health, metrics and fault injection."""

from __future__ import annotations

import logging
import os
import random
import time

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from model_server import metrics, modelinfo, scoring
from model_server.config import Settings
from model_server.faults import FaultError, FaultStore, flip, perturb
from model_server.follower import LoadedModel, ModelFollower
from model_server.payloads import BadInput, parse_json, predict_texts

log = logging.getLogger("model_server")


class NotLoaded(RuntimeError):
    """No model loaded yet (HTTP 503)."""


def _error(status: int, message: str):
    return jsonify({"error": message}), status


def create_app(config: Settings | None = None, *, follower: ModelFollower | None = None) -> Flask:
    settings = config or Settings.from_env()
    _configure_logging()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False

    follower = follower or ModelFollower(settings)
    alias = settings.alias

    def publish_faults(faults):
        for kind, value in faults.as_dict().items():
            metrics.FAULT_SETTING.labels(alias, kind).set(value)

    faults = FaultStore(settings.faults_file, on_change=publish_faults)
    app.extensions["model_follower"] = follower
    app.extensions["faults"] = faults
    if settings.follow_alias:
        follower.start()

    def body_json():
        return parse_json(request.get_data(cache=False))

    def serving() -> LoadedModel:
        model = follower.current
        if model is None:
            raise NotLoaded(f"model {settings.model_name}@{alias} is not loaded yet")
        return model

    def score(loaded: LoadedModel, data, rows: int, params=None, *, input_errors_are_client_errors=True):
        """Injected faults around one prediction: returns (predictions, notes) or a response."""
        setting = faults.current()
        if setting.latency_ms:
            time.sleep(setting.latency_ms / 1000.0)
        if setting.error_rate and random.random() < setting.error_rate:
            return None, _error(500, "injected fault")
        g.version = loaded.version
        raw = scoring.predict(loaded.model, data, params, input_errors_are_client_errors=input_errors_are_client_errors)
        predictions, notes = scoring.prediction_list(raw, rows)
        if setting.wrong_rate:
            predictions = make_wrong(predictions, loaded, setting.wrong_rate)
        return predictions, notes

    def make_wrong(predictions: list, loaded: LoadedModel, rate: float) -> list:
        if loaded.task == "regression":
            factor = settings.wrong_value_factor
            return [perturb(p, factor) if random.random() < rate else p for p in predictions]
        labels = loaded.labels(predictions)
        return [flip(p, labels) if random.random() < rate else p for p in predictions]

    def describe(loaded: LoadedModel) -> dict:
        return {
            "version": loaded.version,
            "model": settings.model_name,
            "alias": alias,
            "classes": list(loaded.classes) if loaded.classes else None,
            "task": loaded.task,
        }

    @app.before_request
    def start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def record(response):
        endpoint = request.url_rule.rule if request.url_rule else "other"
        if endpoint != "/metrics":
            current = follower.current
            version = getattr(g, "version", None) or (current.version if current else "none")
            metrics.REQUESTS.labels(alias, version, endpoint, str(response.status_code)).inc()
            metrics.DURATION.labels(alias, endpoint).observe(
                time.perf_counter() - g.get("started", time.perf_counter())
            )
        if getattr(g, "version", None):
            response.headers["X-Model-Version"] = g.version
        # Which gunicorn worker answered: the workers load and swap models independently.
        response.headers["X-Worker-Pid"] = str(os.getpid())
        return response

    @app.before_request
    def body_limit():
        if request.path == "/invocations":  # tabular rows: a larger body than one review
            request.max_content_length = settings.max_invocation_bytes

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 413:
            return _error(413, f"request body over {request.max_content_length} bytes")
        return _error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(BadInput)
    def bad_input(exc: BadInput):
        return _error(exc.status, str(exc))

    @app.errorhandler(NotLoaded)
    def not_loaded(exc: NotLoaded):
        return _error(503, str(exc))

    @app.errorhandler(scoring.ModelFailed)
    def model_failed(exc: scoring.ModelFailed):
        return _error(500, str(exc))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s", request.path)
        return _error(500, f"internal error: {type(exc).__name__}")

    @app.post("/predict")
    def predict():
        """The text API: {"text": str} or {"texts": [str, ...]}, for a model with one string input."""
        texts, batch = predict_texts(body_json(), settings.max_texts)
        loaded = serving()
        data = scoring.text_data(loaded.model, texts, "/predict")
        # Valid texts that a text model cannot score are the model's fault: 500, not 400.
        result, notes = score(loaded, data, len(texts), input_errors_are_client_errors=False)
        if result is None:
            return notes  # the injected error response
        answer = {"predictions": result} if batch else {"prediction": result[0]}
        answer.update(describe(loaded))
        if notes:
            answer["notes"] = notes
        return jsonify(answer)

    @app.post("/invocations")
    def invocations():
        """MLflow's scoring protocol, parsed and checked against the signature by MLflow."""
        key, value, params = scoring.scoring_request(body_json(), settings.max_rows)
        loaded = serving()
        data = scoring.parse(loaded.model, key, value)
        rows = scoring.count_rows(loaded.model, data)
        scoring.check_rows(rows, settings.max_rows, key)
        scoring.check_string_columns(loaded.model, data)
        result, notes = score(loaded, data, rows, params)
        if result is None:
            return notes
        answer = {"predictions": result}
        answer.update(describe(loaded))
        if notes:
            answer["notes"] = notes
        return jsonify(answer)

    @app.get("/health")
    def health():
        return jsonify({"status": "alive"})

    @app.get("/ready")
    def ready():
        model = follower.current
        load_error = follower.load_error
        if model is None:
            return jsonify(
                {
                    "ready": False,
                    "alias": alias,
                    "reason": follower.last_error or "loading",
                    "alias_missing": follower.alias_missing,
                    "load_error": load_error,
                }
            ), 503
        answer = {"ready": True}
        answer.update(describe(model))
        answer.update(
            loaded_at=model.loaded_at,
            task_source=model.task_source,
            flavor=modelinfo.loader_module(model.model),
            text_input=modelinfo.text_input(model.model) is not None,
            signature=modelinfo.signature_summary(model.model),
            load_error=load_error,
        )
        return jsonify(answer)

    @app.get("/faults")
    def get_faults():
        return jsonify(faults.current().as_dict())

    @app.post("/faults")
    def set_faults():
        try:
            return jsonify(faults.update(body_json()).as_dict())
        except FaultError as exc:
            return _error(400, str(exc))

    @app.get("/metrics")
    def metrics_endpoint():
        faults.current()  # so the scraped worker reports the newest fault setting
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)

    return app


def _configure_logging() -> None:
    logger = logging.getLogger("model_server")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
