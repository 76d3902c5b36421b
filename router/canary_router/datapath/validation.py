"""Checks client input and says exactly what is wrong with it."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from canary_common.payload import (
    CLASSIFICATION,
    LABEL,
    PARAMS,
    REGRESSION,
    ROUTER_FIELDS,
    SCORING_KEYS,
    TEXT,
    USER_ID,
    VALUE,
    BadInput,
    raw_rows,
)
from canary_common.registry import parse_weight
from canary_common.text import is_blank


@dataclass(frozen=True)
class PredictRequest:
    """One /predict: the lab's text, or an MLflow scoring payload forwarded to /invocations."""

    text: str | None = None
    payload: bytes | None = None  # the body without the router's fields, as the model server gets it
    rows: int | None = None  # the payload's rows as sent (None: only the model's parsing can tell)
    labels: tuple | None = None  # actual_label per row
    values: tuple | None = None  # actual_value per row
    user_id: str | None = None

    @property
    def truth(self) -> tuple | None:
        return self.labels if self.labels is not None else self.values

    @property
    def actual_label(self):
        """The lab's single label (text requests)."""
        return self.labels[0] if self.labels else None


MAX_LABEL_CHARS = 256
PAYLOAD_EXAMPLE = '{"text": "..."} or {"dataframe_split": {"columns": [...], "data": [[...]]}}'


def parse_predict_body(raw: bytes) -> PredictRequest:
    body = _json_object(raw, PAYLOAD_EXAMPLE)
    keys = [k for k in SCORING_KEYS if k in body]
    if len(keys) > 1:
        raise BadInput(f"send exactly one of {list(SCORING_KEYS)}, got {keys}")
    if keys and TEXT in body:
        raise BadInput(f"send either 'text' (the shorthand) or '{keys[0]}', not both")
    user_id = parse_key(body.get(USER_ID), f"field '{USER_ID}'")
    if body.get(LABEL) is not None and body.get(VALUE) is not None:  # null is the same as absent
        raise BadInput(f"send '{LABEL}' (a class, for a classifier) or '{VALUE}' (a number, for a regressor), not both")
    if keys:
        rows = raw_rows(keys[0], body[keys[0]])
        if rows == 0:
            raise BadInput(f"'{keys[0]}' has no rows to score")
        labels, values = _truth(body, rows)
        if body.get(PARAMS) is not None and not isinstance(body[PARAMS], dict):
            raise BadInput(
                f"field '{PARAMS}' must be a JSON object (the model's parameters by name), "
                f"got {_json_type(body[PARAMS])}"
            )
        extra = [k for k in body if k not in ROUTER_FIELDS and k not in keys and k != PARAMS]
        if extra:
            raise BadInput(
                f"unexpected field(s) {sorted(extra)}: a scoring payload has one of {list(SCORING_KEYS)}, "
                f"optionally '{PARAMS}', and the router's {list(ROUTER_FIELDS)}"
            )
        forwarded = (
            raw
            if not any(k in body for k in ROUTER_FIELDS)
            else json.dumps({k: v for k, v in body.items() if k not in ROUTER_FIELDS}, separators=(",", ":")).encode()
        )
        return PredictRequest(payload=forwarded, rows=rows, labels=labels, values=values, user_id=user_id)
    if TEXT not in body:
        raise BadInput(f"field 'text' is missing: send {PAYLOAD_EXAMPLE}")
    text = body[TEXT]
    if not isinstance(text, str):
        raise BadInput(f"field 'text' must be a string, got {_json_type(text)}")
    if is_blank(text):
        raise BadInput("field 'text' must not be empty")
    labels, values = _truth(body, 1)
    return PredictRequest(text=text, rows=1, labels=labels, values=values, user_id=user_id)


def _truth(body: dict, rows: int | None) -> tuple[tuple | None, tuple | None]:
    """(labels, values): one per row, from a single value or a list of them."""
    out = []
    for name, check in ((LABEL, check_label_value), (VALUE, check_value)):
        given = body.get(name)
        if given is None:
            out.append(None)
            continue
        items = given if isinstance(given, list) else [given]
        if not items:
            raise BadInput(f"field '{name}' must not be an empty list")
        if rows is not None and len(items) != rows:
            raise BadInput(f"field '{name}' has {len(items)} value(s) for {rows} row(s): give one per row")
        # Called within this iteration only, so the loop variable is the right one.
        where = (lambda i: f"field '{name}'[{i}]") if isinstance(given, list) else (lambda i: f"field '{name}'")  # noqa: B023
        out.append(tuple(check(v, where(i)) for i, v in enumerate(items)))
    return out[0], out[1]


def check_label_value(value, where: str = f"field '{LABEL}'"):
    """A class label: an integer or a string, as the model's own classes are."""
    if isinstance(value, str):
        if is_blank(value) or len(value) > MAX_LABEL_CHARS:
            raise BadInput(
                f"{where} must be a class label: a non-empty string of at most {MAX_LABEL_CHARS} "
                "characters, or an integer"
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{where} must be a class label (an integer or a string), got {_json_type(value)} {value!r}")
    return value


def check_value(value, where: str = f"field '{VALUE}'") -> float:
    """A regression target: a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadInput(f"{where} must be a finite number (the true value), got {_json_type(value)} {value!r}")
    return float(value)


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
    actual_label: object = None  # int or str
    actual_value: float | None = None


def parse_feedback_body(raw: bytes) -> FeedbackRequest:
    body = _json_object(raw, '{"request_id": "...", "actual_label": 1} or {"request_id": "...", "actual_value": 2.5}')
    if "request_id" not in body:
        raise BadInput("field 'request_id' is missing (the request_id of a /predict answer)")
    if (LABEL in body) == (VALUE in body):
        raise BadInput(
            f"send exactly one of '{LABEL}' (a class, for a classifier) and '{VALUE}' (a number, for a regressor)"
        )
    if LABEL in body:
        return FeedbackRequest(request_id=body["request_id"], actual_label=check_label_value(body[LABEL]))
    return FeedbackRequest(request_id=body["request_id"], actual_value=check_value(body[VALUE]))


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


def check_truth(labels, values, classes, task: str | None, where: str = "") -> None:
    """The truth fits the model: a label for a classifier (one of its classes), a value for a
    regressor. `task` None: not known yet (then only what can be checked is)."""
    if labels is not None:
        if task == REGRESSION:
            raise BadInput(f"this model is a regressor: send '{VALUE}' (a number), not '{LABEL}'")
        for label in labels:
            check_label(label, classes)
    if values is not None and task == CLASSIFICATION:
        raise BadInput(f"this model is a classifier: send '{LABEL}' (one of its classes), not '{VALUE}'")


def check_label(label, classes) -> None:
    if classes and label not in classes:
        raise BadInput(f"field '{LABEL}' must be one of the model's classes {list(classes)}, got {label!r}")


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
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
        type(None): "null",
    }.get(type(value), type(value).__name__)
