"""POST /predict: choose the arm, call it, fall back to production if the canary fails.

The arm: forced by X-Canary-Route (testers, when ALLOW_FORCED_ROUTE=1; counted apart), else sticky
by X-Canary-Key or the body's user_id, else a random draw as in the seed.

No web framework here: `serve` takes a header getter and the raw body and returns a Reply, so the
WSGI fast path (fastpath.py) can answer every prediction without Flask's dispatch.
"""
from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass, field
from typing import Callable

from . import metrics
from .backends import BackendError, BackendRejected
from .ids import FLAG_FORCED, FLAG_LABELLED
from .shadow import class_label
from .split import CANARY, PRODUCTION, choose_arm, choose_sticky
from .validation import check_label, parse_header_key, parse_predict_body, parse_route

_REQUEST_ID = re.compile(r"^[\w.:\-]{1,128}$")

HeaderGetter = Callable[[str], "str | None"]


@dataclass
class Reply:
    status: int
    body: dict
    headers: list = field(default_factory=list)


def error_reply(message: str, status: int, **extra) -> Reply:
    return Reply(status, {"error": message, **extra})


def _client_request_id(header: HeaderGetter) -> str | None:
    given = header("X-Request-ID") or ""
    return given if _REQUEST_ID.match(given) else None


def serve(rt, header: HeaderGetter, raw: bytes) -> Reply:
    """One prediction. Raises BadInput for the client's mistakes (a 400 with its message)."""
    client_id = _client_request_id(header)
    body = parse_predict_body(raw)
    state = rt.follower.state
    weight = rt.follower.effective_weight()

    key_header = header("X-Canary-Key")
    key = parse_header_key(key_header) if key_header is not None else body.user_id  # checked even when forced
    forced = _forced_arm(rt, state, header)
    if isinstance(forced, Reply):
        return forced
    if forced:
        arm, assignment = forced, "forced"
    elif key is not None:
        arm, assignment = choose_sticky(weight, key, (state.canary_version if state else None) or ""), "sticky"
    else:
        arm, assignment = choose_arm(weight), "random"

    if body.actual_label is not None:
        # Checked before any model is asked, so a bad label never counts as a prediction.
        check_label(body.actual_label, rt.backends.cached_classes(arm) or rt.backends.classes(PRODUCTION))

    served_by = arm
    fallback = False
    try:
        pred = rt.backends.predict(arm, body.text)
    except (BackendError, BackendRejected) as exc:
        if arm != CANARY:
            return _production_failed(exc, state, client_id, forced=bool(forced))
        # The client must not pay for the canary: count it against the canary, answer from production.
        if forced:
            metrics.child(metrics.FORCED, CANARY, _version(None, state, CANARY), "error").inc()
        else:
            metrics.child(metrics.REQUESTS, CANARY, _version(None, state, CANARY), "error").inc()
            metrics.FALLBACKS.inc()
        served_by, fallback = PRODUCTION, True
        try:
            pred = rt.backends.predict(PRODUCTION, body.text)
        except (BackendError, BackendRejected) as exc2:
            return _production_failed(exc2, state, client_id, forced=bool(forced))

    version = _version(pred.version, state, served_by)
    flags = ""
    if forced:
        # Testers' traffic: counted apart, never in the series the analysis reads.
        metrics.child(metrics.FORCED, served_by, version, "ok").inc()
        flags += FLAG_FORCED
    else:
        metrics.child(metrics.REQUESTS, served_by, version, "ok").inc()
        metrics.child(metrics.DURATION, served_by, version).observe(pred.latency_s)
        metrics.child(metrics.PREDICTED_CLASS, served_by, version, class_label(pred.prediction)).inc()
        if body.actual_label is not None and (not pred.classes or body.actual_label in pred.classes):
            outcome = "correct" if pred.prediction == body.actual_label else "incorrect"
            metrics.child(metrics.LABELLED, served_by, version, outcome).inc()
        if served_by == PRODUCTION and not fallback:
            share = rt.shadow_share(state, weight)
            if share > 0 and random.random() * 100.0 < share:
                rt.shadow.offer(body.text, (state.canary_version if state else None) or "unknown", pred.prediction,
                                body.actual_label)
    if body.actual_label is not None:
        flags += FLAG_LABELLED  # a later /feedback for it is a duplicate

    request_id = rt.signer.issue(served_by, version, pred.prediction, flags)
    headers = [("X-Request-ID", client_id or request_id), ("X-Router-Weight", f"{weight:g}"),
               ("X-Canary-Assignment", assignment)]
    if fallback:
        headers.append(("X-Canary-Fallback", "1"))
    return Reply(200, {
        "prediction": pred.prediction,
        "model_version": served_by,
        "version": version,
        "latency_ms": round(pred.latency_s * 1000.0, 3),
        "request_id": request_id,
    }, headers)


def _forced_arm(rt, state, header: HeaderGetter):
    """None, the forced arm, or an error Reply."""
    raw = header("X-Canary-Route")
    if raw is None:
        return None
    if not rt.settings.allow_forced_route:
        return error_reply("forced routing (X-Canary-Route) is disabled on this router; "
                           "set ALLOW_FORCED_ROUTE=1 to allow it", 403)
    arm = parse_route(raw)
    if arm == CANARY and (state is None or not state.canary_version or rt.follower.fail_closed):
        return error_reply("cannot force the canary: there is no canary alias, or the rollout state is "
                           "unconfirmed (failing closed)", 409)
    return arm


def _version(answered: str | None, state, arm: str) -> str:
    """The version that served: the model server's own word, else the registry alias."""
    if answered:
        return answered
    alias = getattr(state, f"{arm}_version", None) if state else None
    return alias or "unknown"


def _production_failed(exc, state, client_id: str | None, forced: bool = False) -> Reply:
    request_id = client_id or uuid.uuid4().hex
    if isinstance(exc, BackendRejected):
        reply = error_reply(f"the model server rejected the input: {exc}", 400, request_id=request_id)
    else:
        counter = metrics.FORCED if forced else metrics.REQUESTS
        metrics.child(counter, PRODUCTION, _version(None, state, PRODUCTION), "error").inc()
        status = 503 if exc.kind == "unreachable" else 502
        reply = error_reply(f"production model unavailable: {exc}", status, request_id=request_id)
    reply.headers.append(("X-Request-ID", request_id))
    return reply
