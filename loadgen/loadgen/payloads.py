"""What loadgen sends: the labelled data set, the POST /predict body of one request, and what
the router's answer says about it.

Sentiment keeps the lab's body `{"text", "actual_label"}`. Tabular demos send MLflow scoring
payloads, `{"dataframe_split": {"columns", "data"}, "actual_label" | "actual_value"}`: one row per
request, or k rows with k labels (a Batch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SENTIMENT = "sentiment"
# Bundled demos with labelled held-out data: canary_common.demo_data.NAMES after sentiment
# (spelled out so that reading the settings needs neither numpy nor scikit-learn).
DATA_SETS = (SENTIMENT, "breast-cancer", "diabetes")
LABEL_KEYS = {"classification": "actual_label", "regression": "actual_value"}


@dataclass(frozen=True)
class Sample:
    features: object  # a text (sentiment) or a row of numbers in the data set's column order
    label: object  # the class label, or the true value of a regression
    send_label: bool = True  # False: the router gets no label (a label that never arrives)

    @property
    def text(self):
        return self.features


@dataclass(frozen=True)
class Batch:
    """k rows in one request; labelled all together or not at all."""

    samples: tuple[Sample, ...]
    send_label: bool = True


@dataclass(frozen=True)
class DataSet:
    name: str
    task: str  # "classification" or "regression"
    columns: tuple[str, ...] | None  # None: texts, sent in the lab's {"text": ...} body
    samples: tuple[tuple[object, object], ...]  # (text or row, label or value)

    @property
    def label_key(self) -> str:
        return LABEL_KEYS[self.task]


def sentiment(samples: Sequence[tuple[str, int]] = ()) -> DataSet:
    return DataSet(SENTIMENT, "classification", None, tuple(samples))


def as_data_set(data) -> DataSet:
    """A DataSet as it is; a plain sequence of (text, label) pairs as sentiment samples."""
    return data if isinstance(data, DataSet) else sentiment(data)


def load(name: str) -> DataSet:
    """The held-out split of a bundled demo; imported here so that tests can run without it."""
    if name == SENTIMENT:
        from canary_common.dataset import load_split

        _, heldout = load_split()
        return sentiment([(review.text, int(review.label)) for review in heldout])
    from canary_common.demo_data import held_out_rows

    columns, rows, targets, task = held_out_rows(name)
    return DataSet(name, task, tuple(columns), tuple(zip(rows, targets, strict=True)))


def samples_of(item) -> tuple[Sample, ...]:
    return item.samples if isinstance(item, Batch) else (item,)


def body(data: DataSet, item, with_label: bool) -> dict:
    """The JSON body of one POST /predict for a Sample (one row) or a Batch (k rows)."""
    batch = isinstance(item, Batch)
    samples = samples_of(item)
    if data.columns is None and not batch:
        out: dict = {"text": item.features}
    else:
        columns = list(data.columns) if data.columns is not None else ["text"]
        rows = [list(s.features) if data.columns is not None else [s.features] for s in samples]
        out = {"dataframe_split": {"columns": columns, "data": rows}}
    if with_label:
        labels = [s.label for s in samples]
        out[data.label_key] = labels if batch else labels[0]
    return out


def answered(answer: dict, k: int) -> tuple[list, list]:
    """(predictions, request ids) of an answer, one per row: `predictions`/`request_ids`, or the
    single `prediction`/`request_id` (the lab's answer has no lists)."""
    predictions = answer.get("predictions")
    if not isinstance(predictions, list):
        predictions = [answer.get("prediction")] if k == 1 else []
    request_ids = answer.get("request_ids")
    if k == 1 and isinstance(answer.get("request_id"), str):
        request_ids = [answer["request_id"]]
    if not isinstance(request_ids, list):
        request_ids = []
    return predictions, request_ids


def same_label(prediction, label) -> bool:
    # A router may hand back a label as another JSON type than loadgen sent (1 vs "1").
    return prediction == label or str(prediction) == str(label)


def abs_error(prediction, value) -> float | None:
    """|prediction - value|, None when the prediction is not a finite number."""
    if isinstance(prediction, bool) or not isinstance(prediction, (int, float)):
        return None
    error = abs(float(prediction) - float(value))
    return error if math.isfinite(error) else None
