"""What anyone may read from the controller: health, status, the live page's timeline, metrics."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

bp = Blueprint("reads", __name__)


def _controller():
    return current_app.extensions["canary_controller"]


@bp.get("/health")
def health():
    return jsonify(status="ok")


@bp.get("/status")
def status():
    return jsonify(_controller().status())


@bp.get("/timeline")
def timeline():
    # What each poll saw, for the live page. ?since=<epoch s>: only the points after it, so a page
    # that polls fetches what is new.
    controller = _controller()
    since = request.args.get("since", type=float)
    return jsonify(controller.timeline.as_dict(controller.history, since=since))


@bp.get("/metrics")
def metrics():
    return generate_latest(), 200, {"Content-Type": CONTENT_TYPE_LATEST}
