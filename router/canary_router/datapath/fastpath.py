"""POST /predict without Flask: the one path that every user request takes.

Profiling the router under load showed Flask's dispatch (request context, routing, response
objects, jsonify) as a quarter of its CPU per prediction. This WSGI middleware answers POST
/predict itself, with the same logic (predict.serve), the same JSON errors and the same
per-response metric and headers, and hands every other request to the Flask app.
"""

from __future__ import annotations

import json
import logging
import os
from http import HTTPStatus

from flask import Blueprint

from canary_router import metrics
from canary_router.datapath import predict
from canary_router.datapath.validation import BadInput, body_too_large

log = logging.getLogger(__name__)

_JSON = ("Content-Type", "application/json")
_STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}


class _BodyTooLarge(Exception):
    pass


def _header_getter(environ):
    def header(name: str):
        return environ.get("HTTP_" + name.upper().replace("-", "_"))

    return header


class PredictFastPath:
    def __init__(self, app_wsgi, rt, max_body_bytes: int):
        self.app_wsgi = app_wsgi
        self.rt = rt
        self.max_body_bytes = max_body_bytes

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != "/predict" or environ.get("REQUEST_METHOD") != "POST":
            return self.app_wsgi(environ, start_response)
        self.rt.start()  # the state follower, if the server did not start it after the fork
        try:
            # An OSError while reading (the client went away, or stalled past the server's read
            # timeout) is not caught: there is no one to answer, the server closes the connection.
            raw = self._body(environ)
        except _BodyTooLarge:
            reply = predict.error_reply(body_too_large(self.max_body_bytes), 413)
        except BadInput as exc:
            reply = predict.error_reply(str(exc), 400)
        else:
            reply = self._answer(environ, raw)
        payload = json.dumps(reply.body, separators=(",", ":")).encode()
        metrics.child(metrics.RESPONSES, str(reply.status)).inc()
        headers = [_JSON, ("Content-Length", str(len(payload))), ("X-Router-Worker", str(os.getpid()))]
        headers.extend(reply.headers)
        start_response(_STATUS_LINES.get(reply.status) or f"{reply.status} Error", headers)
        return [payload]

    def _answer(self, environ, raw: bytes) -> predict.Reply:
        try:
            return predict.serve(self.rt, _header_getter(environ), raw)
        except BadInput as exc:
            return predict.error_reply(str(exc), 400)
        except Exception as exc:  # as Flask's handler would: logged, and a JSON 500
            log.exception("unhandled error on POST /predict")
            return predict.error_reply(f"internal error: {type(exc).__name__}", 500)

    def _body(self, environ) -> bytes:
        """The request body; _BodyTooLarge when it is over the limit (then it is not read)."""
        limit = self.max_body_bytes
        length = environ.get("CONTENT_LENGTH")
        stream = environ["wsgi.input"]
        if length:
            try:
                n = int(length)
            except ValueError:
                raise BadInput(f"Content-Length is not a number: {length[:40]!r}") from None
            if n > limit:
                raise _BodyTooLarge
            return stream.read(n) if n > 0 else b""
        raw = stream.read(limit + 1)  # no length given (chunked): read up to just past the limit
        if len(raw) > limit:
            raise _BodyTooLarge
        return raw


bp = Blueprint("predict", __name__)


@bp.post("/predict")
def predict_route():
    """The route only, so that Flask answers other methods with a 405 naming POST. POST /predict
    itself is answered by PredictFastPath, which wraps the app, before Flask sees it."""
    raise RuntimeError("POST /predict reached Flask: PredictFastPath must wrap the app (create_app does)")
