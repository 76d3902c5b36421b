"""Operator endpoints; with ADMIN_TOKEN set they need `Authorization: Bearer <token>`."""

from __future__ import annotations

import requests
from flask import Blueprint, current_app, jsonify, request

from canary_common import auth
from canary_router.api import stats
from canary_router.api.errors import error
from canary_router.control.fleet import reset_all
from canary_router.datapath.backends import BackendError
from canary_router.datapath.split import CANARY
from canary_router.datapath.validation import parse_percentage, parse_switch

bp = Blueprint("admin", __name__)

CLEAR_FAULTS = {"wrong_rate": 0, "error_rate": 0, "latency_ms": 0}
INJECT_FAULTS = {"wrong_rate": 0.4}


def _rt():
    return current_app.extensions["canary_router"]


@bp.before_request
def require_token():
    refused = auth.refusal(_rt().settings.admin_token, request.headers.get("Authorization"))
    return error(refused, 401) if refused else None


@bp.post("/set_canary/", defaults={"raw": ""})
@bp.post("/set_canary/<path:raw>")
def set_canary(raw: str):
    rt = _rt()
    weight = parse_percentage(raw)
    answer = _ask_controller(
        "/weight", {"weight": weight, "reason": f"canary weight set to {weight:g}% by an operator (router /set_canary)"}
    )
    if not isinstance(answer, dict):
        return answer
    rt.follower.refresh()  # this worker at once; the others within STATE_POLL_S
    body = {
        "canary_percentage": stats.lab_number(weight),
        "mode": "manual",
        "message": f"Canary percentage set to {weight:g}%",
    }
    if not answer.get("canary_version"):
        body["note"] = "there is no canary alias, so all traffic still goes to production"
    elif answer.get("started_rollout"):
        body["note"] = (
            f"phase was {answer.get('phase_before')}: a manual rollout of version "
            f"{answer['canary_version']} started, with a fresh analysis that can still roll it back"
        )
    return jsonify(body)


@bp.post("/shadow/", defaults={"raw": ""})
@bp.post("/shadow/<path:raw>")
def set_shadow(raw: str):
    """Shadow share in percent, kept in the rollout state so that every replica follows it."""
    rt = _rt()
    share = parse_percentage(raw)
    answer = _ask_controller(
        "/shadow", {"percentage": share, "reason": f"shadow share set to {share:g}% by an operator (router /shadow)"}
    )
    if not isinstance(answer, dict):
        return answer
    rt.follower.refresh()
    state = rt.follower.state
    active = rt.shadow_share(state, rt.follower.effective_weight()) > 0
    body = {"shadow_percentage": share, "shadow_active": active, "message": f"Shadow percentage set to {share:g}%"}
    if share > 0 and not active:
        body["note"] = (
            "shadow copies are sent only while the canary gets no live traffic: a canary "
            "alias, canary weight 0, state confirmed, phase not rolled_back"
        )
    return jsonify(body)


@bp.post("/simulate_failure/", defaults={"raw": ""})
@bp.post("/simulate_failure/<path:raw>")
def simulate_failure(raw: str):
    inject = parse_switch(raw)
    try:
        faults = _rt().backends.set_faults(CANARY, INJECT_FAULTS if inject else CLEAR_FAULTS)
    except BackendError as exc:
        return error(f"could not set faults on the canary model server: {exc}", 503)
    return jsonify({"simulate_failure": inject, "canary_faults": faults})


@bp.post("/reset")
def reset():
    rt = _rt()
    problems = {}
    replicas = reset_all(rt.settings.router_peers, rt.settings.admin_token, rt.settings.peer_timeout_s)
    if replicas["failed"]:
        problems["stats"] = f"{len(replicas['failed'])} replica(s) not reset: {replicas['failed']}"
    try:
        rt.backends.set_faults(CANARY, CLEAR_FAULTS)
    except BackendError as exc:
        problems["faults"] = str(exc)
    weight = rt.settings.default_canary_percentage
    # The lab's reset: counts from zero, so the analysis starts afresh too. Manual mode: the
    # controller judges the canary and can roll it back, but does not step it on its own.
    answer = _ask_controller(
        "/weight", {"weight": weight, "fresh": True, "reason": f"reset to {weight:g}% (router /reset)"}
    )
    if isinstance(answer, dict):
        rt.follower.refresh()
    else:
        problems["state"] = f"could not write the rollout state: {answer.get_json()['error']}"
    body = {
        "stats_reset": replicas,
        "faults_cleared": "faults" not in problems,
        "canary_percentage": stats.lab_number(weight),
        "mode": "manual",
    }
    if problems:
        return error("reset incomplete: " + "; ".join(f"{k}: {v}" for k, v in problems.items()), 502, **body)
    body = {"status": "reset", **body, "message": "Metrics reset"}
    return jsonify(body)


@bp.post("/stats/reset_local")
def reset_local():
    """One replica's part of /reset (called by whichever replica got /reset)."""
    stats.reset_local()
    return jsonify({"reset": True})


@bp.post("/check_rollback")
def check_rollback():
    rt = _rt()
    answer = _ask_controller("/check", None, any_status=True)
    if not isinstance(answer, tuple):
        return answer
    body, status = answer
    rt.follower.refresh()  # the controller may just have changed the weight
    body["canary_percentage"] = rt.follower.effective_weight()
    return jsonify(body), status


def _ask_controller(path: str, payload: dict | None, any_status: bool = False):
    """POST to the controller, the one writer of the rollout state. Its JSON answer (with
    `any_status`, the answer and its status), or an error response saying what went wrong."""
    rt = _rt()
    url = rt.settings.controller_url
    if not url:
        return error(
            "the controller is not configured (CONTROLLER_URL is empty); it is the one writer of the rollout state", 503
        )
    headers = {"Authorization": f"Bearer {rt.settings.admin_token}"} if rt.settings.admin_token else {}
    try:
        resp = requests.post(url + path, json=payload, headers=headers, timeout=rt.settings.controller_timeout_s)
    except requests.RequestException as exc:
        return error(f"the controller is unreachable: {type(exc).__name__}", 503)
    try:
        body = resp.json()
    except ValueError:
        return error(f"the controller answered HTTP {resp.status_code} without JSON", 502)
    if not isinstance(body, dict):
        body = {"result": body}
    if any_status:
        return body, resp.status_code
    if resp.status_code != 200:
        status = resp.status_code if resp.status_code in (400, 409, 503) else 502
        return error(f"the controller refused: {body.get('error', body)}", status)
    return body
