"""Model outputs as strict JSON: numpy and pandas values become plain Python values.

NaN and infinities (not JSON) become null, datetimes ISO 8601 strings, bytes base64 strings;
anything else unknown becomes its str(). Each such change is counted so the answer can say so.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import math
from collections import Counter

NOTES = {
    "non_finite": "{n} prediction value(s) were NaN or infinite and are sent as null",
    "missing": "{n} prediction value(s) were missing (None/NaT/NA) and are sent as null",
    "bytes": "{n} prediction value(s) were bytes and are sent base64-encoded",
    "text": "{n} prediction value(s) of a type JSON lacks are sent as their text (str)",
}


def notes_text(counts: Counter) -> list[str]:
    return [NOTES[kind].format(n=n) for kind, n in counts.items() if n]


def to_jsonable(value, counts: Counter | None = None):
    """A JSON-safe copy of `value`; `counts` (if given) counts the lossy conversions by kind."""
    if counts is None:
        counts = Counter()
    return _convert(value, counts)


def _convert(value, counts: Counter):
    # Long on purpose: one branch per kind of value a model may return, in the order they are tried.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)  # numpy.str_ is a str subclass
    if isinstance(value, int):
        return int(value)  # also IntEnum and friends
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        counts["non_finite"] += 1
        return None
    import numpy as np
    import pandas as pd

    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return _convert(value.item(), counts)
        if value.dtype.kind in "iub":
            return value.tolist()
        if value.dtype.kind == "f" and value.size and np.isfinite(value).all():
            return value.tolist()
        return [_convert(v, counts) for v in value]  # element by element: NaN, datetime64, objects
    if isinstance(value, pd.DataFrame):
        return [_convert(row, counts) for row in value.to_dict(orient="records")]
    if isinstance(value, (pd.Series, pd.Index)):
        return [_convert(v, counts) for v in value.tolist()]
    if isinstance(value, dict):
        return {str(_convert(k, counts)): _convert(v, counts) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_convert(v, counts) for v in value]
    if value is pd.NaT or value is pd.NA:
        counts["missing"] += 1
        return None
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            counts["missing"] += 1
            return None
        return str(np.datetime_as_string(value))
    if isinstance(value, np.timedelta64):
        if np.isnat(value):
            counts["missing"] += 1
            return None
        return pd.Timedelta(value).isoformat()
    if isinstance(value, np.generic):  # numpy scalars: bool_, int64, float32, str_, bytes_, ...
        return _convert(value.item(), counts)
    if isinstance(value, (pd.Timestamp, datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (pd.Timedelta, datetime.timedelta)):
        return pd.Timedelta(value).isoformat()
    if isinstance(value, decimal.Decimal):
        return _convert(float(value), counts)
    if isinstance(value, (bytes, bytearray, memoryview)):
        counts["bytes"] += 1
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, complex):
        counts["text"] += 1
        return str(value)
    dump = getattr(value, "model_dump", None)  # pydantic models
    if callable(dump):
        return _convert(dump(), counts)
    counts["text"] += 1
    return str(value)
