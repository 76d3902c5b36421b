"""What a /predict body may hold, shared by the router (which reads the truth fields) and the
model server (which scores the rest with MLflow's own parsing).

A body is either the lab's shorthand `{"text": "..."}` or an MLflow scoring payload (exactly one
of SCORING_KEYS, optionally `params`), plus the router's own fields: the truth for each row
(`actual_label` for a classifier, `actual_value` for a regressor: one value, or a list of one per
row) and a sticky-routing key (`user_id`). The router takes its fields out and forwards the rest.
"""

from __future__ import annotations

TEXT = "text"


class BadInput(ValueError):
    """Client input that cannot be used: the message is for the client, with `status` (400 here;
    a subclass may say 413, say). One class for every service that reads requests."""

    status = 400


SCORING_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
PARAMS = "params"
LABEL = "actual_label"
VALUE = "actual_value"
USER_ID = "user_id"
ROUTER_FIELDS = (LABEL, VALUE, USER_ID)

CLASSIFICATION, REGRESSION = "classification", "regression"
TASKS = (CLASSIFICATION, REGRESSION)


def raw_rows(key: str, value) -> int | None:
    """Rows in a scoring payload before MLflow parses it (None when the shape is MLflow's to judge)."""
    if key == "dataframe_split":
        data = value.get("data") if isinstance(value, dict) else None
        return len(data) if isinstance(data, list) else None
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict):  # columnar: {"column": [values, ...], ...}
        lengths = [len(v) if isinstance(v, list) else 1 for v in value.values()]
        return max(lengths) if lengths else 0
    return None if key == "dataframe_records" else 1
