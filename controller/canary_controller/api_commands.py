"""The commands people give the controller (admin: with ADMIN_TOKEN set, POSTs need it). The
routers forward /set_canary, /reset and /shadow here: the controller is the rollout state's one
writer, and each change is made under the control loop's lock."""

from __future__ import annotations

import re
import time

from flask import Blueprint, current_app, jsonify, request

from canary_common import auth
from canary_common.registry import NotFound

from . import commands

bp = Blueprint("commands", __name__)
VERSION_RE = re.compile(r"^[1-9][0-9]{0,8}$")


def _controller():
    return current_app.extensions["canary_controller"]


@bp.before_request
def check_token():
    refused = auth.refusal(_controller().settings.admin_token, request.headers.get("Authorization"))
    if request.method == "POST" and refused:
        return jsonify(error=refused), 401
    return None


def _body() -> dict:
    if not request.data:
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


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


@bp.post("/check")
def check():
    # A person asking right after sending traffic: wait for Prometheus to scrape it first. One
    # hold of the lock: the loop's own next poll must not drop this poll's verdict (it does once
    # the canary is idle) before the answer is made from it.
    controller = _controller()
    with controller.lock:
        record = controller.tick(fresh_after=time.time())
        return jsonify(controller.lab_check(record))


@bp.post("/deploy")
def deploy():
    controller = _controller()
    try:
        body = _body()
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


@bp.post("/promote")
def promote():
    controller = _controller()
    with controller.lock:
        state = controller.registry.read_state()
        if not state.canary_version or state.canary_version == state.production_version:
            return jsonify(error="there is no canary to promote"), 409
        controller.actions.start_promotion(state, "promoted by hand")  # based on the state just read
        controller.record("promote", f"version {state.canary_version} promoted by hand")
    return jsonify(status="promoting", version=state.canary_version)


@bp.post("/rollback")
def rollback():
    controller = _controller()
    with controller.lock:
        state = controller.registry.read_state()
        if not state.canary_version:
            return jsonify(error="there is no canary to roll back"), 409
        controller.actions.rollback(state, "rolled back by hand")
        controller.record("rollback", f"version {state.canary_version} rolled back by hand")
    return jsonify(status="rolled_back", version=state.canary_version, canary_percentage=0)


@bp.post("/weight")
def weight():
    try:
        body = _body()
        value = commands.parse_request(body, "weight")
        fresh = body.get("fresh", False)
        if not isinstance(fresh, bool):
            raise ValueError("'fresh' must be true or false")
    except ValueError as exc:
        return jsonify(error=str(exc)), 400
    reason = _reason(body, f"canary weight set to {value:g}% by an operator")
    return jsonify(commands.set_weight(_controller(), value, fresh, reason))


@bp.post("/shadow")
def shadow():
    try:
        body = _body()
        share = commands.parse_request(body, "percentage")
    except ValueError as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(commands.set_shadow(_controller(), share, _reason(body, f"shadow share set to {share:g}%")))


@bp.post("/resume")
def resume():
    controller = _controller()
    with controller.lock:
        state = controller.registry.read_state()
        controller.registry.write_state(
            mode="auto", reason="stepping handed back to the controller", expected_generation=state.generation
        )
    return jsonify(status="auto", note="the controller steps the weight again")
