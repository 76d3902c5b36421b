"""The model server's application factory: the ModelService, the blueprints (api.py), the
per-request metrics and the JSON errors."""

from __future__ import annotations

import logging
import os
import time

from flask import Flask, g, request
from werkzeug.exceptions import HTTPException

from model_server import api, metrics, scoring
from model_server.config import Settings
from model_server.follower import ModelFollower
from model_server.payloads import BadInput
from model_server.service import EXTENSION, ModelService, NotLoaded, error

log = logging.getLogger("model_server")

__all__ = ["NotLoaded", "create_app"]


def create_app(config: Settings | None = None, *, follower: ModelFollower | None = None) -> Flask:
    settings = config or Settings.from_env()
    _configure_logging()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    service = ModelService(settings, follower or ModelFollower(settings))
    app.extensions[EXTENSION] = service
    app.extensions["model_follower"] = service.follower
    app.extensions["faults"] = service.faults
    if settings.follow_alias:
        service.follower.start()
    app.register_blueprint(api.scoring_bp)
    app.register_blueprint(api.ops_bp)
    _register_hooks(app, service)
    _register_errors(app)
    return app


def _register_hooks(app: Flask, service: ModelService) -> None:
    @app.before_request
    def start_timer():
        g.started = time.perf_counter()
        if request.path == "/invocations":  # tabular rows: a larger body than one review
            request.max_content_length = service.settings.max_invocation_bytes

    @app.after_request
    def record(response):
        endpoint = request.url_rule.rule if request.url_rule else "other"
        if endpoint != "/metrics":
            current = service.follower.current
            version = getattr(g, "version", None) or (current.version if current else "none")
            metrics.REQUESTS.labels(service.alias, version, endpoint, str(response.status_code)).inc()
            metrics.DURATION.labels(service.alias, endpoint).observe(
                time.perf_counter() - g.get("started", time.perf_counter())
            )
        if getattr(g, "version", None):
            response.headers["X-Model-Version"] = g.version
        # Which gunicorn worker answered: the workers load and swap models independently.
        response.headers["X-Worker-Pid"] = str(os.getpid())
        return response


def _register_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 413:
            return error(413, f"request body over {request.max_content_length} bytes")
        return error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(BadInput)
    def bad_input(exc: BadInput):
        return error(exc.status, str(exc))

    @app.errorhandler(NotLoaded)
    def not_loaded(exc: NotLoaded):
        return error(503, str(exc))

    @app.errorhandler(scoring.ModelFailed)
    def model_failed(exc: scoring.ModelFailed):
        return error(500, str(exc))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s", request.path)
        return error(500, f"internal error: {type(exc).__name__}")


def _configure_logging() -> None:
    logger = logging.getLogger("model_server")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
