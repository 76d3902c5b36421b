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
import math
import sqlite3

import requests
from flask import Blueprint, current_app, jsonify, request

from canary_common.contracts import OWNER_HEADER
from canary_common.payload import LABEL, VALUE
from canary_router import metrics
from canary_router.api.errors import error
from canary_router.control.peers import resolve_peers
from canary_router.datapath.validation import BadInput, FeedbackRequest, check_label, parse_feedback_body
from canary_router.labels import truth
from canary_router.labels.dedupe import StoreFull
from canary_router.labels.ids import IssuedPrediction

bp = Blueprint("feedback", __name__)

RESULTS = {
    400: "malformed",
    403: "refused",
    404: "unknown",
    409: "duplicate",
    410: "expired",
    422: "unscorable",
    503: "unavailable",
}


def _rt():
    return current_app.extensions["canary_router"]


def owner_of(peers: list[str], request_id: str) -> str:
    """Rendezvous hashing: every replica computes the same owner, and a replica joining or
    leaving only moves the ids it owns (or will own)."""
    return max(peers, key=lambda p: hashlib.sha256(f"{p}\x00{request_id}".encode()).digest())


def refuse(message: str, status: int, **extra):
    metrics.FEEDBACK.labels(RESULTS.get(status, str(status))).inc()
    return error(message, status, **extra)


def _checked(raw: bytes) -> tuple[str, IssuedPrediction, FeedbackRequest]:
    """Parse and verify; IdError/BadInput go to the error handlers."""
    body = parse_feedback_body(raw)
    issued = _rt().signer.verify(body.request_id)
    return body.request_id, issued, body


def _final_checks(request_id: str, issued: IssuedPrediction, truth_given: FeedbackRequest):
    if issued.forced:
        return refuse(
            "this request was routed by X-Canary-Route (a tester's request); its labels are never counted",
            403,
            request_id=request_id,
        )
    if issued.labelled_inline:
        return refuse(
            "duplicate: this prediction was already labelled inline (actual_label or actual_value in /predict)",
            409,
            request_id=request_id,
        )
    if not issued.scorable:
        return refuse(
            "this prediction is too large to be judged later (its id cannot carry it); send the "
            "truth with the /predict request instead",
            422,
            request_id=request_id,
        )
    if issued.regression:
        if truth_given.actual_value is None:
            raise BadInput(f"this prediction came from a regressor: send '{VALUE}' (a number), not '{LABEL}'")
        return None
    if truth_given.actual_value is not None:
        raise BadInput(f"this prediction came from a classifier: send '{LABEL}' (one of its classes), not '{VALUE}'")
    known = _rt().backends.profile(issued.arm, issued.version, ask=True)
    if known is not None:  # else the version is gone from its server: its classes are not known now
        check_label(truth_given.actual_label, known.classes)
    return None


def _truth_json(request_id: str, truth_given: FeedbackRequest) -> dict:
    if truth_given.actual_value is not None:
        return {"request_id": request_id, VALUE: truth_given.actual_value}
    return {"request_id": request_id, LABEL: truth_given.actual_label}


@bp.post("/feedback")
def feedback():
    rt = _rt()
    request_id, issued, given = _checked(request.get_data(cache=False))
    refused = _final_checks(request_id, issued, given)
    if refused is not None:
        return refused
    try:
        peers = resolve_peers(rt.settings.router_peers)
    except (OSError, ValueError) as exc:
        return refuse(f"cannot find the router replicas to dedupe this label: {exc}", 503)
    if not peers:
        return decide(request_id, issued, given, owner="local")
    owner = owner_of(peers, request_id)
    try:
        resp = requests.post(
            owner + "/feedback/owner",
            json=_truth_json(request_id, given),
            headers={OWNER_HEADER: rt.signer.owner_token(request_id)},
            timeout=rt.settings.peer_timeout_s,
        )
        body = resp.json()
    except (requests.RequestException, ValueError) as exc:
        return refuse(
            f"the replica that records this id's label ({owner}) did not answer "
            f"({type(exc).__name__}); nothing was counted, retry later",
            503,
            request_id=request_id,
        )
    if not isinstance(body, dict):
        return refuse(f"the owner replica {owner} gave an unusable answer; nothing was counted", 503)
    out = jsonify(body)
    out.status_code = resp.status_code if resp.status_code < 500 else 503
    return out


@bp.post("/feedback/owner")
def feedback_owner():
    """The owner's part: only from a replica (the token is an HMAC of the id with the secret)."""
    rt = _rt()
    request_id, issued, given = _checked(request.get_data(cache=False))
    if not rt.signer.check_owner_token(request_id, request.headers.get(OWNER_HEADER, "")):
        return refuse(
            f"/feedback/owner is for router replicas only (missing or wrong {OWNER_HEADER}); "
            "clients use POST /feedback",
            403,
        )
    refused = _final_checks(request_id, issued, given)
    if refused is not None:
        return refused
    return decide(request_id, issued, given, owner=request.host_url.rstrip("/"))


def decide(request_id: str, issued: IssuedPrediction, given: FeedbackRequest, owner: str):
    rt = _rt()
    try:
        fresh = rt.labelled.add(request_id, issued.issued_at + rt.signer.ttl_s)
    except StoreFull as exc:
        return refuse(f"{exc}; nothing was counted, retry later", 503, request_id=request_id)
    except sqlite3.Error as exc:
        return refuse(
            f"the labelled-id store failed ({exc}); nothing was counted, retry later", 503, request_id=request_id
        )
    if not fresh:
        return refuse(
            "duplicate: this request_id was already labelled by an earlier /feedback", 409, request_id=request_id
        )
    answer = {
        "request_id": request_id,
        "model_version": issued.arm,
        "version": issued.version,
        "prediction": issued.prediction,
        "recorded_by": owner,
    }
    if issued.regression:
        error = truth.abs_error(issued.prediction, given.actual_value)
        metrics.ABS_ERROR.labels(issued.arm, issued.version).observe(error)
        answer.update({VALUE: given.actual_value, "abs_error": error if math.isfinite(error) else None})
    else:
        outcome = "correct" if truth.same_label(issued.prediction, given.actual_label) else "incorrect"
        metrics.LABELLED.labels(issued.arm, issued.version, outcome).inc()
        answer.update({LABEL: given.actual_label, "outcome": outcome})
    metrics.FEEDBACK.labels("accepted").inc()
    return jsonify(answer)
