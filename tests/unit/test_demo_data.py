"""The tabular demos' split: deterministic, disjoint, the documented shapes and JSON-ready rows."""

import json

import numpy as np
import pytest

from canary_common import demo_data

SHAPES = {"breast-cancer": (569, 30, "classification"), "diabetes": (442, 10, "regression")}


@pytest.mark.parametrize("name", demo_data.NAMES)
def test_split_shapes_and_task(name):
    total, width, task = SHAPES[name]
    s = demo_data.split(name)
    assert s.task == task and len(s.columns) == width
    assert s.train_x.shape == (total - len(s.heldout_x), width)
    assert len(s.heldout_x) == round(total * demo_data.HELDOUT_FRACTION) == len(s.heldout_y)


@pytest.mark.parametrize("name", demo_data.NAMES)
def test_split_is_deterministic_and_disjoint(name):
    first = demo_data.split(name)
    demo_data.split.cache_clear()
    again = demo_data.split(name)
    assert first is not again
    assert np.array_equal(first.heldout_x, again.heldout_x) and np.array_equal(first.train_y, again.train_y)
    held = {tuple(row) for row in first.heldout_x}
    assert not held & {tuple(row) for row in first.train_x}  # no held-out row is trained on


def test_held_out_rows_are_plain_json():
    columns, rows, labels, task = demo_data.held_out_rows("breast-cancer")
    assert task == "classification" and columns[0] == "mean radius" and len(rows[0]) == 30
    assert set(labels) == {0, 1} and all(type(y) is int for y in labels)
    assert 0.5 < sum(labels) / len(labels) < 0.75  # benign is the majority, as in the full set
    columns, rows, values, task = demo_data.held_out_rows("diabetes")
    assert task == "regression" and columns[:3] == ["age", "sex", "bmi"]
    assert all(type(v) is float for v in values) and 25 <= min(values) < max(values) <= 346
    json.dumps({"columns": columns, "data": rows, "values": values})


def test_cached_arrays_are_read_only():
    with pytest.raises(ValueError):
        demo_data.split("diabetes").heldout_y[0] = 0.0


def test_unknown_demo_names_the_bundled_ones():
    with pytest.raises(KeyError, match="breast-cancer, diabetes"):
        demo_data.split("iris")
