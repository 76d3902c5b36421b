"""Checks client input and says exactly what is wrong with it."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from canary_common.registry import parse_weight
from canary_common.text import is_blank


class BadInput(ValueError):
    """Client input that gets a 400 with this message."""


@dataclass(frozen=True)
class PredictRequest:
    text: str
    actual_label: int | None = None
    user_id: str | None = None


def parse_predict_body(raw: bytes) -> PredictRequest:
    body = _json_object(raw, '{"text": "..."}')
    if "text" not in body:
        raise BadInput("field 'text' is missing")
    text = body["text"]
    if not isinstance(text, str):
        raise BadInput(f"field 'text' must be a string, got {_json_type(text)}")
    if is_blank(text):
        raise BadInput("field 'text' must not be empty")
    label = body.get("actual_label")
    if label is not None and (isinstance(label, bool) or not isinstance(label, int)):
        raise BadInput(f"field 'actual_label' must be an integer class label, got {_json_type(label)} {label!r}")
    return PredictRequest(text=text, actual_label=label, user_id=parse_key(body.get("user_id"), "field 'user_id'"))


MAX_KEY_CHARS = 256


def parse_key(value, what: str) -> str | None:
    """A sticky-routing key (X-Canary-Key or user_id): a non-empty string or an integer."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise BadInput(f"{what} must be a string or an integer, got {_json_type(value)}")
    if is_blank(value):
        raise BadInput(f"{what} must not be empty")
    if len(value) > MAX_KEY_CHARS:
        raise BadInput(f"{what} is longer than {MAX_KEY_CHARS} characters")
    return value


_HEADER_KEY = re.compile(r"^[!-~]{1,256}$")


def parse_header_key(value: str) -> str:
    """X-Canary-Key: visible ASCII only (other bytes in a header are read differently by each
    proxy and client library, so the same user could hash differently)."""
    if not _HEADER_KEY.match(value):
        raise BadInput("header X-Canary-Key must be 1 to 256 visible ASCII characters (no spaces)")
    return value


ROUTES = ("canary", "production")


def parse_route(value: str) -> str:
    """X-Canary-Route: the arm a tester forces."""
    route = value.strip().lower()
    if route not in ROUTES:
        raise BadInput(f"header X-Canary-Route must be 'canary' or 'production', got {value[:50]!r}")
    return route


@dataclass(frozen=True)
class FeedbackRequest:
    request_id: object  # checked by the id signer (its errors have their own statuses)
    actual_label: int


def parse_feedback_body(raw: bytes) -> FeedbackRequest:
    body = _json_object(raw, '{"request_id": "...", "actual_label": 1}')
    if "request_id" not in body:
        raise BadInput("field 'request_id' is missing (the request_id of a /predict answer)")
    if "actual_label" not in body:
        raise BadInput("field 'actual_label' is missing")
    label = body["actual_label"]
    if isinstance(label, bool) or not isinstance(label, int):
        raise BadInput(f"field 'actual_label' must be an integer class label, got {_json_type(label)} {label!r}")
    return FeedbackRequest(request_id=body["request_id"], actual_label=label)


def _json_object(raw: bytes, example: str) -> dict:
    if not raw or not raw.strip():
        raise BadInput(f"request body is empty; send a JSON object like {example}")
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadInput("request body is not valid UTF-8") from None
    except ValueError as exc:
        raise BadInput(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadInput("request body is not valid JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise BadInput(f"request body must be a JSON object, got {type(body).__name__ if body is not None else 'null'}")
    return body


def body_too_large(limit: int) -> str:
    """The 413 message, the same from Flask's handler and from the /predict fast path."""
    return f"request body is larger than the limit of {limit} bytes (MAX_BODY_BYTES)"


def check_label(label: int, classes) -> None:
    if classes and label not in classes:
        raise BadInput(f"field 'actual_label' must be one of the model's classes {list(classes)}, got {label}")


_PERCENT = re.compile(r"^[0-9]{1,3}(\.[0-9]+)?$")


def parse_percentage(raw: str) -> float:
    """/set_canary/<n>: a plain decimal from 0 to 100 (no signs, exponents, inf or nan)."""
    if not _PERCENT.match(raw or ""):
        raise BadInput(f"canary percentage must be a number from 0 to 100 (decimals allowed), got {raw!r}")
    try:
        return parse_weight(raw)
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def parse_switch(raw: str) -> bool:
    """/simulate_failure/<0|1>."""
    if raw not in ("0", "1"):
        raise BadInput(f"simulate_failure takes 0 (clear) or 1 (inject), got {raw!r}")
    return raw == "1"


def _json_type(value) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)
