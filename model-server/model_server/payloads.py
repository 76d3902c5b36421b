"""Read request bodies: JSON, the /predict texts; say exactly what is wrong with them.

The MLflow scoring payloads of /invocations are read in scoring.py.
"""

from __future__ import annotations

import json

from canary_common.payload import SCORING_KEYS, TEXT, BadInput  # noqa: F401  (SCORING_KEYS, BadInput: for scoring.py, app.py)
from canary_common.text import is_blank


class TooLarge(BadInput):
    """More rows than one request may carry (HTTP 413)."""

    status = 413


def parse_json(raw: bytes):
    if not raw:
        raise BadInput("request body is empty; send JSON")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadInput(f"request body is not valid JSON: {exc}") from None


def check_texts(texts, max_texts: int, where: str = "texts") -> list[str]:
    if not isinstance(texts, list):
        raise BadInput(f"{where} must be a list of strings")
    if not texts:
        raise BadInput(f"{where} must not be empty")
    if len(texts) > max_texts:
        raise BadInput(f"too many texts: {len(texts)} > {max_texts} per request")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise BadInput(f"{where}[{i}] must be a string, got {type(text).__name__}")
        if is_blank(text):
            raise BadInput(f"{where}[{i}] must not be empty")
    return texts


def predict_texts(body, max_texts: int) -> tuple[list[str], bool]:
    """/predict: {"text": str} or {"texts": [str, ...]}; returns (texts, is_batch)."""
    if not isinstance(body, dict):
        raise BadInput('body must be a JSON object: {"text": "..."} or {"texts": ["...", ...]}')
    has_one, has_many = TEXT in body, "texts" in body
    if has_one and has_many:
        raise BadInput('send either "text" or "texts", not both')
    if has_one:
        text = body[TEXT]
        if not isinstance(text, str):
            raise BadInput(f'"text" must be a string, got {type(text).__name__}')
        if is_blank(text):
            raise BadInput('"text" must not be empty')
        return [text], False
    if has_many:
        return check_texts(body["texts"], max_texts), True
    raise BadInput('missing "text" (a review) or "texts" (a list of reviews)')
