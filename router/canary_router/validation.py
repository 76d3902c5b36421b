"""Checks client input and says exactly what is wrong with it."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from canary_common.registry import parse_weight


class BadInput(ValueError):
    """Client input that gets a 400 with this message."""


@dataclass(frozen=True)
class PredictRequest:
    text: str
    actual_label: int | None = None


def parse_predict_body(raw: bytes) -> PredictRequest:
    if not raw or not raw.strip():
        raise BadInput('request body is empty; send a JSON object like {"text": "..."}')
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadInput("request body is not valid UTF-8") from None
    except ValueError as exc:
        raise BadInput(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadInput(f"request body must be a JSON object, got {type(body).__name__ if body is not None else 'null'}")
    if "text" not in body:
        raise BadInput("field 'text' is missing")
    text = body["text"]
    if not isinstance(text, str):
        raise BadInput(f"field 'text' must be a string, got {_json_type(text)}")
    if not text.strip():
        raise BadInput("field 'text' must not be empty")
    label = body.get("actual_label")
    if label is not None and (isinstance(label, bool) or not isinstance(label, int)):
        raise BadInput(f"field 'actual_label' must be an integer class label, got {_json_type(label)} {label!r}")
    return PredictRequest(text=text, actual_label=label)


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
