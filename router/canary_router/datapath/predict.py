"""POST /predict: choose the arm, call it, fall back to production if the canary fails.

The arm: forced by X-Canary-Route (testers, when ALLOW_FORCED_ROUTE=1; counted apart), else sticky
by X-Canary-Key or the body's user_id, else a random draw as in the seed.

No web framework here: `serve` takes a header getter and the raw body and returns a Reply, so the
WSGI fast path (fastpath.py) can answer every prediction without Flask's dispatch.
"""

from __future__ import annotations

import math
import random
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from canary_common import contracts as c
from canary_common.payload import REGRESSION
from canary_router import metrics
from canary_router.datapath.backends import BackendError, BackendRejected
from canary_router.datapath.shadow import class_label
from canary_router.datapath.split import CANARY, PRODUCTION, choose_arm, choose_sticky
from canary_router.datapath.validation import BadInput, check_truth, parse_header_key, parse_predict_body, parse_route
from canary_router.labels import truth
from canary_router.labels.ids import FLAG_FORCED, FLAG_LABELLED, FLAG_REGRESSION

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
    given = header(c.REQUEST_ID_HEADER) or ""
    return given if _REQUEST_ID.match(given) else None


def serve(rt, header: HeaderGetter, raw: bytes) -> Reply:
    """One prediction. Raises BadInput for the client's mistakes (a 400 with its message)."""
    client_id = _client_request_id(header)
    body = parse_predict_body(raw)
    state = rt.follower.state
    weight = rt.follower.effective_weight()
    chosen = _assign(rt, state, weight, body, header)
    if isinstance(chosen, Reply):
        return chosen
    arm, assignment, forced = chosen
    ejected = arm == CANARY and not forced and not rt.canary_ejector(state).allow()
    if ejected:
        # Outlier ejection: production answers, and the canary is charged an error as if it had
        # failed, so that a dead canary is still rolled back.
        version = _version(None, state, CANARY)
        metrics.child(metrics.REQUESTS, CANARY, version, "error").inc(body.rows or 1)
        metrics.child(metrics.EJECTED_REQUESTS, CANARY, version).inc(body.rows or 1)
        arm = PRODUCTION
    if body.truth is not None:
        # What the arm's last answer told about the version it serves now: a truth that cannot
        # fit is refused before any model is asked (the answer itself is checked below).
        known = rt.backends.profile(arm, getattr(state, f"{arm}_version", None) if state else None)
        if known is not None:
            check_truth(body.labels, body.values, known.classes, known.task)
    scored = _score(rt, state, body, arm, forced, client_id)
    if isinstance(scored, Reply):
        return scored
    pred, served_by, fallback = scored
    _check_answered_truth(body, pred)
    version = _version(pred.version, state, served_by)
    if forced:
        # Testers' traffic: counted apart, never in the series the analysis reads.
        metrics.child(metrics.FORCED, served_by, version, "ok").inc(len(pred.predictions))
    else:
        _count(rt, state, weight, body, pred, served_by, version, fallback or ejected)
    answer = _answer(rt, body, pred, served_by, version, forced)
    headers = [
        (c.REQUEST_ID_HEADER, client_id or answer.get("request_id") or uuid.uuid4().hex),
        ("X-Router-Weight", f"{weight:g}"),
        (c.ASSIGNMENT_HEADER, assignment),
    ]
    if fallback or ejected:
        headers.append((c.FALLBACK_HEADER, "1"))
    if ejected:
        headers.append((c.EJECTED_HEADER, "1"))
    return Reply(200, answer, headers)


def _assign(rt, state, weight: float, body, header: HeaderGetter):
    """(arm, how it was chosen, forced arm or None), or the Reply refusing a forced route."""
    key_header = header(c.KEY_HEADER)
    key = parse_header_key(key_header) if key_header is not None else body.user_id  # checked even when forced
    forced = _forced_arm(rt, state, header)
    if isinstance(forced, Reply):
        return forced
    if forced:
        return forced, "forced", forced
    if key is not None:
        return choose_sticky(weight, key, (state.canary_version if state else None) or ""), "sticky", None
    return choose_arm(weight), "random", None


def _score(rt, state, body, arm: str, forced, client_id):
    """(prediction, the arm that answered, whether production answered for a failed canary), or the
    Reply of production's failure. The client never pays for the canary."""
    try:
        return _call(rt, arm, body), arm, False
    except (BackendError, BackendRejected) as exc:
        if arm != CANARY:
            return _production_failed(rt, exc, state, client_id, forced=bool(forced), rows=body.rows)
    counter = metrics.FORCED if forced else metrics.REQUESTS
    metrics.child(counter, CANARY, _version(None, state, CANARY), "error").inc(body.rows or 1)
    if not forced:
        metrics.FALLBACKS.inc()
    try:
        return _call(rt, PRODUCTION, body), PRODUCTION, True
    except (BackendError, BackendRejected) as exc:
        return _production_failed(rt, exc, state, client_id, forced=bool(forced), rows=body.rows)


def _check_answered_truth(body, pred) -> None:
    if body.truth is None:
        return
    rows = len(pred.predictions)
    if len(body.truth) != rows:
        raise BadInput(
            f"field '{'actual_label' if body.labels else 'actual_value'}' has {len(body.truth)} "
            f"value(s) but the model scored {rows} row(s): give one per row"
        )
    check_truth(body.labels, body.values, pred.classes, pred.task)


def _answer(rt, body, pred, served_by: str, version: str, forced) -> dict:
    """The JSON answer, with a signed request id per prediction (for late labels)."""
    flags = (FLAG_FORCED if forced else "") + (FLAG_LABELLED if body.truth is not None else "")
    flags += FLAG_REGRESSION if pred.task == REGRESSION else ""
    request_ids = [rt.signer.issue(served_by, version, p, flags) for p in pred.predictions]
    answer = {"model_version": served_by, "version": version, "latency_ms": round(pred.latency_s * 1000.0, 3)}
    if body.payload is None:  # the lab's shape
        answer.update(prediction=pred.prediction, request_id=request_ids[0])
    else:
        answer.update(predictions=pred.predictions, request_ids=request_ids, task=pred.task)
        if len(pred.predictions) == 1:
            answer.update(prediction=pred.prediction, request_id=request_ids[0])
    return answer


# Failures that eject a model server on the first one; others (5xx, a cut or unusable answer)
# need OUTLIER_CONSECUTIVE_FAILURES in a row.
AT_ONCE = frozenset({"unreachable", "timeout"})


def _call(rt, arm: str, body):
    """Score on `arm`, telling its ejector how it went. Production, when ejected, is not tried:
    the client gets a fast 503 (see _production_failed) rather than the timeout it would wait."""
    ejector = rt.ejectors[arm]
    if arm == PRODUCTION and not ejector.allow():
        raise BackendError(
            "the production model server failed repeatedly and is ejected; it is probed in the "
            "background and takes traffic again once it answers",
            "ejected",
        )
    try:
        pred = rt.backends.score(arm, body.text, body.payload)
    except BackendError as exc:
        # Refused, or no answer in time: the next request would wait the same, so out at once.
        ejector.failure(at_once=exc.kind in AT_ONCE)
        raise
    ejector.success()
    return pred


def _count(rt, state, weight, body, pred, served_by: str, version: str, fallback: bool) -> None:
    """The series the analysis reads: k rows count k predictions; their truth, if sent."""
    rows = len(pred.predictions)
    metrics.child(metrics.REQUESTS, served_by, version, "ok").inc(rows)
    metrics.child(metrics.DURATION, served_by, version).observe(pred.latency_s)
    if pred.task != REGRESSION:
        for label, n in Counter(class_label(p) for p in pred.predictions).items():
            metrics.child(metrics.PREDICTED_CLASS, served_by, version, label).inc(n)
    if body.labels is not None:
        truth.count_labels(served_by, version, pred.predictions, body.labels, pred.classes)
    elif body.values is not None:
        truth.count_values(served_by, version, pred.predictions, body.values)
    if served_by == PRODUCTION and not fallback:
        share = rt.shadow_share(state, weight)
        if share > 0 and random.random() * 100.0 < share:
            rt.shadow.offer(body, (state.canary_version if state else None) or "unknown", pred.predictions)


def _forced_arm(rt, state, header: HeaderGetter):
    """None, the forced arm, or an error Reply."""
    raw = header(c.ROUTE_HEADER)
    if raw is None:
        return None
    if not rt.settings.allow_forced_route:
        return error_reply(
            "forced routing (X-Canary-Route) is disabled on this router; set ALLOW_FORCED_ROUTE=1 to allow it", 403
        )
    arm = parse_route(raw)
    if arm == CANARY and (state is None or not state.canary_version or rt.follower.fail_closed):
        return error_reply(
            "cannot force the canary: there is no canary alias, or the rollout state is unconfirmed (failing closed)",
            409,
        )
    return arm


def _version(answered: str | None, state, arm: str) -> str:
    """The version that served: the model server's own word, else the registry alias."""
    if answered:
        return answered
    alias = getattr(state, f"{arm}_version", None) if state else None
    return alias or "unknown"


def _rejected(exc: BackendRejected, client_id: str | None) -> Reply:
    request_id = client_id or uuid.uuid4().hex
    status = 413 if exc.status == 413 else 400
    reply = error_reply(f"the model server rejected the input: {exc}", status, request_id=request_id)
    reply.headers.append((c.REQUEST_ID_HEADER, request_id))
    return reply


def _production_failed(rt, exc, state, client_id: str | None, forced: bool = False, rows: int | None = 1) -> Reply:
    """Production down: the policy is a clear 503 (502 for a broken answer), never the canary in
    its place (it is not proven), and no labelled outcome counted for anyone."""
    if isinstance(exc, BackendRejected):
        return _rejected(exc, client_id)
    request_id = client_id or uuid.uuid4().hex
    counter = metrics.FORCED if forced else metrics.REQUESTS
    version = _version(None, state, PRODUCTION)
    metrics.child(counter, PRODUCTION, version, "error").inc(rows or 1)
    status = 503 if exc.kind in ("unreachable", "ejected") else 502
    reply = error_reply(f"production model unavailable: {exc}", status, request_id=request_id)
    reply.headers.append((c.REQUEST_ID_HEADER, request_id))
    if exc.kind == "ejected":
        metrics.child(metrics.EJECTED_REQUESTS, PRODUCTION, version).inc(rows or 1)
        reply.headers.append(("Retry-After", str(max(1, math.ceil(rt.ejectors[PRODUCTION].retry_after_s())))))
    return reply
