"""The controller's HTTP face: status, metrics, and the commands people give it."""

from __future__ import annotations

import re
import threading
import time

from flask import Flask, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.exceptions import HTTPException

from canary_common import auth
from canary_common.registry import NotFound, RegistryClient, RegistryError, StateConflict

from . import commands
from .actions import Actions
from .loop import Controller
from .prometheus import PrometheusClient
from .settings import Settings, load_settings

VERSION_RE = re.compile(r"^[1-9][0-9]{0,8}$")


def _version(body: dict, field: str, required: bool) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not VERSION_RE.match(str(value if value is not None else "")):
        raise ValueError(f"'{field}' must be a model version number like \"3\", got {value!r}")
    return str(value)


def _reason(body: dict, default: str) -> str:
    given = body.get("reason")
    return given[:500] if isinstance(given, str) and given.strip() else default


def create_app(settings: Settings | None = None, start_loop: bool = True) -> Flask:
    settings = settings or load_settings()
    registry = RegistryClient(settings.mlflow_url, settings.model_name)
    controller = Controller(
        settings, registry, PrometheusClient(settings.prometheus_url), Actions(registry, settings.production_url)
    )
    app = Flask(__name__)
    app.config["controller"] = controller

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify(error=exc.description, status=exc.code), exc.code

    @app.errorhandler(StateConflict)
    def state_conflict(exc: StateConflict):
        return jsonify(error=f"the rollout state changed meanwhile, try again: {exc}"), 409

    @app.errorhandler(RegistryError)
    def registry_error(exc: RegistryError):
        return jsonify(error=f"MLflow registry: {exc}"), 503

    @app.before_request
    def check_token():
        refused = auth.refusal(settings.admin_token, request.headers.get("Authorization"))
        if request.method == "POST" and refused:
            return jsonify(error=refused), 401
        return None

    def json_body() -> dict:
        if not request.data:
            return {}
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        return body

    @app.get("/health")
    def health():
        return jsonify(status="ok")

    @app.get("/status")
    def status():
        return jsonify(controller.status())

    @app.get("/timeline")
    def timeline():
        # What each poll saw, for the live page (read-only, like /status). ?since=<epoch s>: only
        # the points after it, so a page that polls fetches what is new.
        since = request.args.get("since", type=float)
        return jsonify(controller.timeline.as_dict(controller.history, since=since))

    @app.get("/metrics")
    def metrics():
        return generate_latest(), 200, {"Content-Type": CONTENT_TYPE_LATEST}

    @app.post("/check")
    def check():
        # A person asking right after sending traffic: wait for Prometheus to scrape it first.
        # One hold of the lock: the loop's own next poll must not drop this poll's verdict (it
        # does once the canary is idle) before the answer is made from it.
        with controller.lock:
            record = controller.tick(fresh_after=time.time())
            return jsonify(controller.lab_check(record))

    @app.post("/deploy")
    def deploy():
        try:
            body = json_body()
            version = _version(body, "version", required=True)
            production = _version(body, "production", required=False)
        except ValueError as exc:
            return jsonify(error=str(exc)), 400
        try:
            with controller.lock:
                controller.actions.deploy(version, controller.config.steps[0], production)
        except NotFound:
            return jsonify(error=f"model version not found: {production or version}"), 404
        return jsonify(
            status="deploying",
            canary_version=version,
            production_version=production,
            canary_percentage=controller.config.steps[0],
        )

    @app.post("/promote")
    def promote():
        with controller.lock:
            state = registry.read_state()
            if not state.canary_version or state.canary_version == state.production_version:
                return jsonify(error="there is no canary to promote"), 409
            controller.actions.start_promotion(state, "promoted by hand")  # based on the state just read
            controller.record("promote", f"version {state.canary_version} promoted by hand")
        return jsonify(status="promoting", version=state.canary_version)

    @app.post("/rollback")
    def rollback():
        with controller.lock:
            state = registry.read_state()
            if not state.canary_version:
                return jsonify(error="there is no canary to roll back"), 409
            controller.actions.rollback(state, "rolled back by hand")
            controller.record("rollback", f"version {state.canary_version} rolled back by hand")
        return jsonify(status="rolled_back", version=state.canary_version, canary_percentage=0)

    # The routers' admin calls that change the rollout state: the controller is its one writer.
    @app.post("/weight")
    def weight():
        try:
            body = json_body()
            value = commands.parse_request(body, "weight")
            fresh = body.get("fresh", False)
            if not isinstance(fresh, bool):
                raise ValueError("'fresh' must be true or false")
        except ValueError as exc:
            return jsonify(error=str(exc)), 400
        reason = _reason(body, f"canary weight set to {value:g}% by an operator")
        return jsonify(commands.set_weight(controller, value, fresh, reason))

    @app.post("/shadow")
    def shadow():
        try:
            body = json_body()
            share = commands.parse_request(body, "percentage")
        except ValueError as exc:
            return jsonify(error=str(exc)), 400
        return jsonify(commands.set_shadow(controller, share, _reason(body, f"shadow share set to {share:g}%")))

    @app.post("/resume")
    def resume():
        with controller.lock:
            state = registry.read_state()
            registry.write_state(
                mode="auto", reason="stepping handed back to the controller", expected_generation=state.generation
            )
        return jsonify(status="auto", note="the controller steps the weight again")

    if start_loop:
        threading.Thread(target=controller.run_forever, name="control-loop", daemon=True).start()
    return app
