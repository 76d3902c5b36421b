"""loadgen with the tabular demos: MLflow scoring payloads with actual_label/actual_value, k rows
per request, late labels to /feedback, and nothing sent for a model without bundled data.

The router's payload support is being written at the same time, so these tests talk to a small
Flask stand-in on a loopback port that answers in the contract's shape (docs/contracts.md):
`predictions` and `request_ids` per row, plus `prediction` and `request_id` for one row.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from flask import Flask, jsonify, request

from canary_common import demo_data
from loadgen import main as loadgen_main
from loadgen import payloads
from loadgen.config import ConfigError, from_env
from loadgen.late import LateLabeller
from loadgen.main import run, sample_stream
from loadgen.payloads import Batch, DataSet, Sample
from loadgen.sender import PredictSender
from loadgen.tally import Tally
from support.served_app import ServedApp

CANCER = payloads.load("breast-cancer")
DIABETES = payloads.load("diabetes")
TINY = DataSet("breast-cancer", "classification", ("a", "b"), (([1.0, 2.0], 0), ([3.0, 4.0], 1), ([5.0, 6.0], 1)))


class TabularStandIn(ServedApp):
    """Answers /predict like the router will for scoring payloads: the classifier predicts the
    label it was sent on production and the other class on the canary (every 4th request); the
    regressor answers value + 10. Records every body."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.feedback: list[dict] = []
        self._lock = threading.Lock()
        app = Flask("tabular-stand-in")

        @app.get("/ready")
        def ready():
            return jsonify(ready=True)

        @app.post("/predict")
        def predict():
            body = request.get_json()
            with self._lock:
                self.bodies.append(body)
                n = len(self.bodies)
            rows = body["dataframe_split"]["data"]
            arm = "canary" if n % 4 == 0 else "production"
            if "actual_value" in body or body.get("task") == "regression":
                values = body.get("actual_value", [0.0] * len(rows))
                values = values if isinstance(values, list) else [values]
                predictions, task = [v + 10.0 for v in values], "regression"
            else:
                labels = body.get("actual_label", [0] * len(rows))
                labels = labels if isinstance(labels, list) else [labels]
                predictions = [1 - y if arm == "canary" else y for y in labels]
                task = "classification"
            ids = [f"{n}.{i}" for i in range(len(rows))]
            answer = {
                "predictions": predictions,
                "request_ids": ids,
                "model_version": arm,
                "version": "2" if arm == "canary" else "1",
                "latency_ms": 1.0,
                "task": task,
            }
            if len(rows) == 1:
                answer.update(prediction=predictions[0], request_id=ids[0])
            return jsonify(answer)

        @app.post("/feedback")
        def feedback():
            with self._lock:
                self.feedback.append(request.get_json())
            return jsonify(outcome="correct")

        self.serve(app)


# ---- the data and the bodies ---------------------------------------------------------------


def test_bundled_data_sets_match_the_demos():
    assert payloads.DATA_SETS == ("sentiment", *demo_data.NAMES)
    assert (len(CANCER.columns), len(CANCER.samples), CANCER.label_key) == (30, 171, "actual_label")
    assert (len(DIABETES.columns), len(DIABETES.samples), DIABETES.label_key) == (10, 133, "actual_value")


def test_one_row_classifier_body():
    row, label = CANCER.samples[0]
    body = payloads.body(CANCER, Sample(row, label), with_label=True)
    assert body == {"dataframe_split": {"columns": list(CANCER.columns), "data": [list(row)]}, "actual_label": label}
    assert type(body["actual_label"]) is int
    assert "actual_label" not in payloads.body(CANCER, Sample(row, label), with_label=False)


def test_k_row_bodies_carry_a_list_of_k_labels_or_values():
    batch = Batch(tuple(Sample(r, y) for r, y in DIABETES.samples[:3]))
    body = payloads.body(DIABETES, batch, with_label=True)
    assert len(body["dataframe_split"]["data"]) == 3 and len(body["dataframe_split"]["data"][0]) == 10
    assert body["actual_value"] == [y for _, y in DIABETES.samples[:3]]
    assert all(type(v) is float for v in body["actual_value"])
    assert set(payloads.body(DIABETES, batch, with_label=False)) == {"dataframe_split"}


def test_sentiment_keeps_the_labs_body_and_batches_texts_as_a_frame():
    data = payloads.sentiment([("good", 1)])
    assert payloads.body(data, Sample("good", 1), True) == {"text": "good", "actual_label": 1}
    batch = Batch((Sample("good", 1), Sample("bad", 0)))
    assert payloads.body(data, batch, True) == {
        "dataframe_split": {"columns": ["text"], "data": [["good"], ["bad"]]},
        "actual_label": [1, 0],
    }


def test_answers_one_row_or_k_rows():
    assert payloads.answered({"prediction": 1, "request_id": "a"}, 1) == ([1], ["a"])
    assert payloads.answered({"predictions": [1, 0], "request_ids": ["a", "b"]}, 2) == ([1, 0], ["a", "b"])
    assert payloads.answered({"model_version": "production"}, 2) == ([], [])
    assert payloads.abs_error(12.5, 10.0) == 2.5 and payloads.abs_error("x", 1.0) is None
    assert payloads.abs_error(float("nan"), 1.0) is None and payloads.abs_error(True, 1.0) is None


# ---- settings ------------------------------------------------------------------------------


def test_data_follows_model_name_unless_loadgen_data_says_otherwise():
    assert (from_env({}).data, from_env({}).rows) == ("sentiment", 1)
    assert from_env({"MODEL_NAME": "breast-cancer"}).data == "breast-cancer"
    assert from_env({"MODEL_NAME": "their-model"}).data == ""  # no bundled data for it
    assert from_env({"MODEL_NAME": "their-model", "LOADGEN_DATA": "Diabetes"}).data == "diabetes"
    assert from_env({"MODEL_NAME": "diabetes", "LOADGEN_DATA": "none"}).data == "none"
    assert from_env({"LOADGEN_ROWS": "8"}).rows == 8


@pytest.mark.parametrize(
    "env, words",
    [
        ({"LOADGEN_DATA": "iris"}, "LOADGEN_DATA must be one of sentiment, breast-cancer, diabetes, none"),
        ({"LOADGEN_ROWS": "0"}, "LOADGEN_ROWS must be >= 1 and <= 1000"),
        ({"LOADGEN_ROWS": "2.5"}, "LOADGEN_ROWS must be a whole number"),
    ],
)
def test_bad_data_settings_are_named(env, words):
    with pytest.raises(ConfigError, match=words):
        from_env(env)


def test_k_row_stream_cycles_through_every_row_and_labels_whole_batches():
    batches = list(itertools.islice(sample_stream(TINY.samples, 0.5, seed=3, rows=2), 30))
    assert all(isinstance(b, Batch) and len(b.samples) == 2 for b in batches)
    first_pass = [tuple(s.features) for b in batches[:2] for s in b.samples][:3]
    assert sorted(first_pass) == [(1.0, 2.0), (3.0, 4.0), (5.0, 6.0)]
    assert 5 < sum(b.send_label for b in batches) < 25
    one_row = next(sample_stream(TINY.samples, 1.0, seed=3))
    assert isinstance(one_row, Sample) and one_row.send_label


# ---- sending -------------------------------------------------------------------------------


def test_classifier_rows_are_judged_one_or_k_per_request():
    with TabularStandIn() as router:
        send = PredictSender(router.url, timeout_s=2, data=CANCER)
        row, label = CANCER.samples[0]
        outcome = send(Sample(row, label))
        assert outcome.ok and outcome.correct is True and outcome.arm == "production"
        batch = Batch(tuple(Sample(r, y) for r, y in CANCER.samples[1:4]))
        outcome = send(batch)
        assert (outcome.correct, outcome.judged, outcome.n_correct) == (None, 3, 3)
        assert router.bodies[1]["actual_label"] == [y for _, y in CANCER.samples[1:4]]


def test_regressor_outcomes_carry_absolute_errors_and_the_tally_reports_mae():
    tally = Tally(started_at=0.0)
    with TabularStandIn() as router:
        send = PredictSender(router.url, timeout_s=2, data=DIABETES)
        for item in itertools.islice(sample_stream(DIABETES.samples, 1.0, 0, rows=2), 3):
            outcome = send(item)
            assert outcome.abs_errors == pytest.approx((10.0, 10.0)) and outcome.correct is None
            tally.record(outcome)
    summary = tally.summary(1.0)["models"]["production"]
    assert (summary["mae"], summary["valued"], summary["accuracy_pct"]) == (10.0, 6, None)
    assert "production v1 100.0% mae 10 p50" in tally.progress_line(1.0)


@pytest.mark.parametrize("data, key", [(CANCER, "actual_label"), (DIABETES, "actual_value")])
def test_late_labels_go_to_feedback_one_per_row(data, key):
    with TabularStandIn() as router:
        late = LateLabeller(router.url, delay_s=0.1, label_key=key)
        send = PredictSender(router.url, timeout_s=2, late=late, data=data)
        batch = Batch(tuple(Sample(r, y) for r, y in data.samples[:3]))
        assert send(batch).ok and send(Sample(*data.samples[3])).ok
        assert send(Batch(batch.samples, send_label=False)).ok
        assert all(key not in b for b in router.bodies)  # nothing inline
        assert late.flush(5) and late.summary()["ok"] == 4
    assert [f["request_id"] for f in router.feedback] == ["1.0", "1.1", "1.2", "2.0"]
    assert [f[key] for f in router.feedback] == [y for _, y in data.samples[:4]]


def test_a_run_sends_held_out_rows_with_their_labels(capsys):
    with TabularStandIn() as router:
        config = from_env(
            {
                "TARGET_URL": router.url,
                "RATE": "40",
                "DURATION": "0.5",
                "PROGRESS_S": "5",
                "MODEL_NAME": "breast-cancer",
                "LOADGEN_ROWS": "3",
            }
        )
        summary = run(config, CANCER, threading.Event())
    assert summary["sent"] == 20 and summary["ok"] == 20 and summary["errors"] == 0
    assert (summary["data"], summary["task"], summary["rows_per_request"]) == ("breast-cancer", "classification", 3)
    assert summary["models"]["production"]["accuracy_pct"] == 100.0
    assert summary["models"]["canary"]["accuracy_pct"] == 0.0
    sent_rows = [tuple(r) for b in router.bodies for r in b["dataframe_split"]["data"]]
    assert len(sent_rows) == 60 and set(sent_rows) <= {tuple(r) for r, _ in CANCER.samples}
    assert "of breast-cancer (classification, 3 rows per request with actual_label)" in capsys.readouterr().out


def test_a_users_model_without_bundled_data_gets_nothing_sent(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(loadgen_main, "HEARTBEAT_FILE", str(tmp_path / "heartbeat"))
    with TabularStandIn() as router:
        started = time.monotonic()
        code = loadgen_main.main(
            {"TARGET_URL": router.url, "MODEL_NAME": "their-model", "DURATION": "0.3", "PROGRESS_S": "0.1"}
        )
        assert code == 0 and time.monotonic() - started < 3
        assert router.bodies == []
    out = capsys.readouterr().out
    assert "no labelled data for model 'their-model'" in out and "loadgen sends nothing" in out
    assert '"status": "no_data"' in out
    assert "idle: no labelled data" in (tmp_path / "heartbeat").read_text()  # the healthcheck stays green
