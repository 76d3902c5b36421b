"""The controller's HTTP face: an application factory with two blueprints, what anyone may read
(api_reads) and the commands people give it (api_commands, admin: POSTs need the token)."""

from __future__ import annotations

import threading

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from canary_common.registry import RegistryClient, RegistryError, StateConflict

from . import api_commands, api_reads
from .actions import Actions
from .loop import Controller
from .prometheus import PrometheusClient
from .settings import Settings, load_settings

EXTENSION = "canary_controller"  # app.extensions[EXTENSION]: the Controller the views act on


def create_app(settings: Settings | None = None, start_loop: bool = True) -> Flask:
    settings = settings or load_settings()
    registry = RegistryClient(settings.mlflow_url, settings.model_name)
    controller = Controller(
        settings, registry, PrometheusClient(settings.prometheus_url), Actions(registry, settings.production_url)
    )
    app = Flask(__name__)
    app.extensions[EXTENSION] = controller
    app.register_blueprint(api_reads.bp)
    app.register_blueprint(api_commands.bp)
    _register_errors(app)
    if start_loop:
        threading.Thread(target=controller.run_forever, name="control-loop", daemon=True).start()
    return app


def _register_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify(error=exc.description, status=exc.code), exc.code

    @app.errorhandler(StateConflict)
    def state_conflict(exc: StateConflict):
        return jsonify(error=f"the rollout state changed meanwhile, try again: {exc}"), 409

    @app.errorhandler(RegistryError)
    def registry_error(exc: RegistryError):
        return jsonify(error=f"MLflow registry: {exc}"), 503
