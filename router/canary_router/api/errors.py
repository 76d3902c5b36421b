"""Every error as JSON {"error": "..."}: clients and nginx never get an HTML error page."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from canary_router import metrics
from canary_router.datapath.validation import BadInput, body_too_large
from canary_router.labels.ids import IdError

log = logging.getLogger(__name__)


def error(message: str, status: int, **extra):
    body = {"error": message}
    body.update(extra)
    resp = jsonify(body)
    resp.status_code = status
    return resp


def install(app: Flask) -> None:
    @app.errorhandler(BadInput)
    def bad_input(exc):
        return error(str(exc), 400)

    @app.errorhandler(IdError)
    def bad_id(exc: IdError):
        metrics.FEEDBACK.labels({400: "malformed", 403: "forged", 410: "expired"}.get(exc.status, "other")).inc()
        return error(str(exc), exc.status)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = exc.code or 500
        if code == 404:
            message = f"no such path: {request.path}"
        elif code == 405:
            allowed = exc.valid_methods or []
            allowed = sorted(allowed)
            message = f"method {request.method} is not allowed on {request.path}; allowed: {', '.join(allowed)}"
        elif code == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = body_too_large(limit)
        else:
            message = exc.description or exc.name
        resp = error(message, code)
        if code == 405 and exc.valid_methods:
            resp.headers["Allow"] = ", ".join(exc.valid_methods)
        return resp

    @app.errorhandler(Exception)
    def unexpected(exc):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error(f"internal error: {type(exc).__name__}", 500)
