"""The Flask application: prediction endpoints, health, metrics and fault injection."""
from __future__ import annotations

import logging
import os
import random
import time

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from model_server import metrics
from model_server.config import Settings
from model_server.faults import FaultError, FaultStore, flip
from model_server.follower import ModelFollower
from model_server.payloads import BadInput, invocation_texts, parse_json, predict_texts

log = logging.getLogger("model_server")


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

    def score(texts: list[str]):
        """Apply injected faults around one prediction; returns (model, predictions) or a response."""
        model = follower.current
        if model is None:
            return None, _error(503, f"model {settings.model_name}@{alias} is not loaded yet")
        setting = faults.current()
        if setting.latency_ms:
            time.sleep(setting.latency_ms / 1000.0)
        if setting.error_rate and random.random() < setting.error_rate:
            return model, _error(500, "injected fault")
        g.version = model.version
        predictions = model.predict(texts)
        if setting.wrong_rate:
            predictions = [flip(p, model.classes) if random.random() < setting.wrong_rate else p
                           for p in predictions]
        return model, predictions

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
            metrics.DURATION.labels(alias, endpoint).observe(time.perf_counter() - g.get("started", time.perf_counter()))
        if getattr(g, "version", None):
            response.headers["X-Model-Version"] = g.version
        # Which gunicorn worker answered: the workers load and swap models independently.
        response.headers["X-Worker-Pid"] = str(os.getpid())
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {413: f"request body over {settings.max_body_bytes} bytes"}
        return _error(exc.code or 500, messages.get(exc.code, exc.description or exc.name))

    @app.errorhandler(BadInput)
    def bad_input(exc: BadInput):
        return _error(400, str(exc))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s", request.path)
        return _error(500, f"internal error: {type(exc).__name__}")

    @app.post("/predict")
    def predict():
        texts, batch = predict_texts(body_json(), settings.max_texts)
        model, result = score(texts)
        if not isinstance(result, list):
            return result
        answer = {"predictions": result} if batch else {"prediction": result[0]}
        answer.update(version=model.version, model=settings.model_name, alias=alias,
                      classes=list(model.classes))
        return jsonify(answer)

    @app.post("/invocations")
    def invocations():
        texts = invocation_texts(body_json(), settings.max_texts)
        _model, result = score(texts)
        if not isinstance(result, list):
            return result
        return jsonify({"predictions": result})

    @app.get("/health")
    def health():
        return jsonify({"status": "alive"})

    @app.get("/ready")
    def ready():
        model = follower.current
        if model is None:
            return jsonify({"ready": False, "alias": alias, "reason": follower.last_error or "loading"}), 503
        return jsonify({"ready": True, "model": settings.model_name, "version": model.version,
                        "alias": alias, "classes": list(model.classes), "loaded_at": model.loaded_at})

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
