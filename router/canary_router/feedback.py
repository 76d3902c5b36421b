"""POST /feedback: a true label that arrives after the prediction (late labels).

The request id says which arm, version and prediction served it, signed with FEEDBACK_SECRET, so
any replica can attribute the label without a database. To count each id at most once across
the fleet, each id has one owner replica — rendezvous hashing of the id over ROUTER_PEERS —
and whichever replica receives the feedback forwards it there; the owner keeps the labelled ids
in its own file (dedupe.py). Guarantee and limits (README): at most one label per id while
ROUTER_PEERS lists the same replicas; if the owner is down the feedback is refused with 503
(retry later) rather than counted elsewhere; if the peer list changes, ids whose owner changed
could be labelled once more at the new owner.
"""
from __future__ import annotations

import hashlib
import sqlite3

import requests
from flask import Blueprint, current_app, jsonify, request

from . import metrics
from .dedupe import StoreFull
from .errors import error
from .ids import IdError, IssuedPrediction
from .peers import resolve_peers
from .validation import check_label, parse_feedback_body

bp = Blueprint("feedback", __name__)

OWNER_HEADER = "X-Canary-Owner-Token"
RESULTS = {400: "malformed", 403: "refused", 404: "unknown", 409: "duplicate", 410: "expired",
           503: "unavailable"}


def _rt():
    return current_app.extensions["canary_router"]


def owner_of(peers: list[str], request_id: str) -> str:
    """Rendezvous hashing: every replica computes the same owner, and a replica joining or
    leaving only moves the ids it owns (or will own)."""
    return max(peers, key=lambda p: hashlib.sha256(f"{p}\x00{request_id}".encode()).digest())


def refuse(message: str, status: int, **extra):
    metrics.FEEDBACK.labels(RESULTS.get(status, str(status))).inc()
    return error(message, status, **extra)


def _checked(raw: bytes) -> tuple[str, IssuedPrediction, int]:
    """Parse and verify; IdError/BadInput go to the error handlers."""
    body = parse_feedback_body(raw)
    issued = _rt().signer.verify(body.request_id)
    return body.request_id, issued, body.actual_label


def _final_checks(request_id: str, issued: IssuedPrediction, label: int):
    if issued.forced:
        return refuse("this request was routed by X-Canary-Route (a tester's request); its labels are "
                      "never counted", 403, request_id=request_id)
    if issued.labelled_inline:
        return refuse("duplicate: this prediction was already labelled inline (actual_label in /predict)",
                      409, request_id=request_id)
    rt = _rt()
    check_label(label, rt.backends.cached_classes(issued.arm) or rt.backends.classes(issued.arm))
    return None


@bp.post("/feedback")
def feedback():
    rt = _rt()
    request_id, issued, label = _checked(request.get_data(cache=False))
    refused = _final_checks(request_id, issued, label)
    if refused is not None:
        return refused
    try:
        peers = resolve_peers(rt.settings.router_peers)
    except (OSError, ValueError) as exc:
        return refuse(f"cannot find the router replicas to dedupe this label: {exc}", 503)
    if not peers:
        return decide(request_id, issued, label, owner="local")
    owner = owner_of(peers, request_id)
    try:
        resp = requests.post(owner + "/feedback/owner", json={"request_id": request_id, "actual_label": label},
                             headers={OWNER_HEADER: rt.signer.owner_token(request_id)},
                             timeout=rt.settings.peer_timeout_s)
        body = resp.json()
    except (requests.RequestException, ValueError) as exc:
        return refuse(f"the replica that records this id's label ({owner}) did not answer "
                      f"({type(exc).__name__}); nothing was counted, retry later", 503, request_id=request_id)
    if not isinstance(body, dict):
        return refuse(f"the owner replica {owner} gave an unusable answer; nothing was counted", 503)
    out = jsonify(body)
    out.status_code = resp.status_code if resp.status_code < 500 else 503
    return out


@bp.post("/feedback/owner")
def feedback_owner():
    """The owner's part: only from a replica (the token is an HMAC of the id with the secret)."""
    rt = _rt()
    request_id, issued, label = _checked(request.get_data(cache=False))
    if not rt.signer.check_owner_token(request_id, request.headers.get(OWNER_HEADER, "")):
        return refuse(f"/feedback/owner is for router replicas only (missing or wrong {OWNER_HEADER}); "
                      "clients use POST /feedback", 403)
    refused = _final_checks(request_id, issued, label)
    if refused is not None:
        return refused
    return decide(request_id, issued, label, owner=request.host_url.rstrip("/"))


def decide(request_id: str, issued: IssuedPrediction, label: int, owner: str):
    rt = _rt()
    try:
        fresh = rt.labelled.add(request_id, issued.issued_at + rt.signer.ttl_s)
    except StoreFull as exc:
        return refuse(f"{exc}; nothing was counted, retry later", 503, request_id=request_id)
    except sqlite3.Error as exc:
        return refuse(f"the labelled-id store failed ({exc}); nothing was counted, retry later", 503,
                      request_id=request_id)
    if not fresh:
        return refuse("duplicate: this request_id was already labelled by an earlier /feedback", 409,
                      request_id=request_id)
    outcome = "correct" if issued.prediction == label else "incorrect"
    metrics.LABELLED.labels(issued.arm, issued.version, outcome).inc()
    metrics.FEEDBACK.labels("accepted").inc()
    return jsonify({"request_id": request_id, "model_version": issued.arm, "version": issued.version,
                    "prediction": issued.prediction, "actual_label": label, "outcome": outcome,
                    "recorded_by": owner})
