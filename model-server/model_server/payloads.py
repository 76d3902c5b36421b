"""Turn request bodies into a list of review texts, or say exactly what is wrong with them."""
from __future__ import annotations

import json

from canary_common.text import is_blank

TEXT = "text"
SCORING_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class BadInput(ValueError):
    """The body cannot be scored; the message is for the client."""


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


def _column(rows, where: str) -> list:
    """A list of {"text": ...} records or of plain strings."""
    if not isinstance(rows, list):
        raise BadInput(f"{where} must be a list")
    texts = []
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            if TEXT not in row:
                raise BadInput(f'{where}[{i}] has no "{TEXT}" field')
            texts.append(row[TEXT])
        else:
            texts.append(row)
    return texts


def invocation_texts(body, max_texts: int) -> list[str]:
    """/invocations: the MLflow scoring protocol with a `text` column."""
    if not isinstance(body, dict):
        raise BadInput(f"body must be a JSON object with one of {list(SCORING_KEYS)}")
    keys = [k for k in SCORING_KEYS if k in body]
    extra = sorted(set(body) - set(SCORING_KEYS) - {"params"})
    if len(keys) != 1 or extra:
        raise BadInput(f"body must have exactly one of {list(SCORING_KEYS)}"
                       + (f"; unexpected {extra}" if extra else ""))
    key = keys[0]
    value = body[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("columns"), list) \
                or not isinstance(value.get("data"), list):
            raise BadInput('dataframe_split must be {"columns": [...], "data": [[...], ...]}')
        columns = value["columns"]
        if TEXT not in columns:
            raise BadInput(f'dataframe_split has no "{TEXT}" column (columns: {columns})')
        at = columns.index(TEXT)
        texts = []
        for i, row in enumerate(value["data"]):
            if not isinstance(row, list) or len(row) != len(columns):
                raise BadInput(f"dataframe_split.data[{i}] must be a list of {len(columns)} values")
            texts.append(row[at])
    elif key == "dataframe_records":
        if isinstance(value, list) and not all(isinstance(r, dict) for r in value):
            raise BadInput(f'dataframe_records must be a list of objects like {{"{TEXT}": "..."}}')
        texts = _column(value, key)
    elif isinstance(value, dict):  # columnar: {"text": [...]}
        if TEXT not in value:
            raise BadInput(f'{key} has no "{TEXT}" field')
        texts = value[TEXT] if isinstance(value[TEXT], list) else [value[TEXT]]
    else:
        texts = _column(value, key)
    return check_texts(texts, max_texts, where=key)
