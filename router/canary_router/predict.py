"""POST /predict: choose the arm, call it, fall back to production if the canary fails."""
from __future__ import annotations

import re
import uuid

from flask import Blueprint, current_app, jsonify, request

from . import metrics
from .backends import BackendError, BackendRejected
from .errors import error
from .split import CANARY, PRODUCTION, choose_arm
from .validation import check_label, parse_predict_body

bp = Blueprint("predict", __name__)

_REQUEST_ID = re.compile(r"^[\w.:\-]{1,128}$")


def _request_id() -> str:
    given = request.headers.get("X-Request-ID", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


@bp.post("/predict")
def predict():
    rt = current_app.extensions["canary_router"]
    request_id = _request_id()
    body = parse_predict_body(request.get_data(cache=False))
    state = rt.follower.state
    weight = rt.follower.effective_weight()
    arm = choose_arm(weight)

    if body.actual_label is not None:
        # Checked before any model is asked, so a bad label never counts as a prediction.
        check_label(body.actual_label, rt.backends.cached_classes(arm) or rt.backends.classes(PRODUCTION))

    served_by = arm
    fallback = False
    try:
        pred = rt.backends.predict(arm, body.text)
    except (BackendError, BackendRejected) as exc:
        if arm != CANARY:
            return _production_failed(exc, state, request_id)
        # The client must not pay for the canary: count it against the canary, answer from production.
        metrics.REQUESTS.labels(CANARY, _version(None, state, CANARY), "error").inc()
        metrics.FALLBACKS.inc()
        served_by, fallback = PRODUCTION, True
        try:
            pred = rt.backends.predict(PRODUCTION, body.text)
        except (BackendError, BackendRejected) as exc2:
            return _production_failed(exc2, state, request_id)

    version = _version(pred.version, state, served_by)
    metrics.REQUESTS.labels(served_by, version, "ok").inc()
    metrics.DURATION.labels(served_by, version).observe(pred.latency_s)
    if body.actual_label is not None and (not pred.classes or body.actual_label in pred.classes):
        outcome = "correct" if pred.prediction == body.actual_label else "incorrect"
        metrics.LABELLED.labels(served_by, version, outcome).inc()

    resp = jsonify({
        "prediction": pred.prediction,
        "model_version": served_by,
        "version": version,
        "latency_ms": round(pred.latency_s * 1000.0, 3),
        "request_id": request_id,
    })
    resp.headers["X-Request-ID"] = request_id
    resp.headers["X-Router-Weight"] = f"{weight:g}"
    if fallback:
        resp.headers["X-Canary-Fallback"] = "1"
    return resp


def _version(answered: str | None, state, arm: str) -> str:
    """The version that served: the model server's own word, else the registry alias."""
    if answered:
        return answered
    alias = getattr(state, f"{arm}_version", None) if state else None
    return alias or "unknown"


def _production_failed(exc, state, request_id: str):
    if isinstance(exc, BackendRejected):
        resp = error(f"the model server rejected the input: {exc}", 400, request_id=request_id)
    else:
        metrics.REQUESTS.labels(PRODUCTION, _version(None, state, PRODUCTION), "error").inc()
        status = 503 if exc.kind == "unreachable" else 502
        resp = error(f"production model unavailable: {exc}", status, request_id=request_id)
    resp.headers["X-Request-ID"] = request_id
    return resp
