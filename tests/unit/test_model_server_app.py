"""The model server's HTTP behaviour, with a stand-in model built in memory (no registry).

The stand-in is a real `mlflow.pyfunc.PyFuncModel` with a `text: string` signature, so the
MLflow parsing and schema enforcement of /invocations are MLflow's own.
"""

import datetime
import json
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow.models import Model, ModelSignature
from mlflow.pyfunc import PyFuncModel
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from canary_common.registry import NotFound
from model_server import metrics
from model_server.app import create_app
from model_server.config import Settings
from model_server.follower import LoadedModel, ModelFollower


class KeywordModel:
    """Positive unless the text mentions "bad"."""

    def predict(self, frame):
        return [0 if "bad" in t else 1 for t in frame["text"]]


def pyfunc(impl, inputs, outputs=None, params=None) -> PyFuncModel:
    """An in-memory PyFuncModel: MLflow's own predict (schema enforcement) around `impl`."""
    signature = ModelSignature(
        inputs=Schema(inputs),
        outputs=Schema(outputs) if outputs else None,
        params=ParamSchema(params) if params else None,
    )
    return PyFuncModel(model_meta=Model(signature=signature), model_impl=impl)


def keyword_model() -> PyFuncModel:
    return pyfunc(KeywordModel(), [ColSpec("string", "text")], [ColSpec("long")])


class StubRegistry:
    def __init__(self, version="2"):
        self.version = version

    def alias_version(self, alias):
        return self.version


def make_app(tmp_path, loaded=True, model=None, **overrides):
    options = dict(max_body_bytes=2048, max_texts=5, max_rows=8, max_invocation_bytes=8192)
    options.update(overrides)
    settings = Settings(
        tracking_uri="http://127.0.0.1:9",
        alias="canary",
        follow_alias=False,
        faults_file=str(tmp_path / "faults.json"),
        **options,
    )
    if model is None:

        def make(v):
            return LoadedModel(v, keyword_model(), (0, 1), time.time())
    else:

        def make(v):
            return LoadedModel.inspect(v, model)

    follower = ModelFollower(settings, registry=StubRegistry(), loader=make)
    if loaded:
        follower.check_once()
    return create_app(settings, follower=follower), follower


@pytest.fixture
def client(tmp_path):
    app, _ = make_app(tmp_path)
    return app.test_client()


def test_predict_one_and_many(client):
    resp = client.post("/predict", json={"text": "a bad kettle"})
    assert resp.status_code == 200
    assert resp.json == {
        "prediction": 0,
        "version": "2",
        "model": "sentiment",
        "alias": "canary",
        "classes": [0, 1],
        "task": "classification",
    }
    assert resp.headers["X-Model-Version"] == "2"
    resp = client.post("/predict", json={"texts": ["good", "bad"]})
    assert resp.json["predictions"] == [1, 0]


def test_blank_means_what_the_router_schema_says(client):
    # The router forwards any text its OpenAPI schema allows; "\x1d" is not whitespace there.
    assert client.post("/predict", json={"text": "\x1d"}).status_code == 200
    assert client.post("/predict", json={"texts": ["ok", "\x85"]}).status_code == 200
    resp = client.post("/predict", json={"text": "\ufeff\u3000"})
    assert resp.status_code == 400 and "must not be empty" in resp.json["error"]


@pytest.mark.parametrize(
    "body, words",
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
        (b"{}", "missing"),
        (b'{"text": ""}', "must not be empty"),
        (b'{"text": "   "}', "must not be empty"),
        (b'{"text": 5}', "must be a string"),
        (b'{"text": null}', "must be a string"),
        (b'{"texts": []}', "must not be empty"),
        (b'{"texts": "one"}', "list of strings"),
        (b'{"texts": ["ok", 3]}', "texts[1] must be a string"),
        (b'{"texts": ["ok", ""]}', "texts[1] must not be empty"),
        (b'{"texts": ["a", "b", "c", "d", "e", "f"]}', "too many texts"),
        (b'{"text": "a", "texts": ["b"]}', "not both"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_predict_bad_input_is_400_with_message(client, body, words):
    resp = client.post("/predict", data=body, content_type="application/json")
    assert resp.status_code == 400
    assert words in resp.json["error"]


def test_body_over_limit_is_413(client):
    resp = client.post("/predict", json={"text": "x" * 4000})
    assert resp.status_code == 413
    assert "bytes" in resp.json["error"]


def test_unknown_path_and_method_are_json(client):
    assert client.get("/nope").status_code == 404
    resp = client.get("/predict")
    assert resp.status_code == 405 and "error" in resp.json


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["text"], "data": [["good"], ["bad"]]}},
        {"dataframe_split": {"index": [0, 1], "columns": ["id", "text"], "data": [[1, "good"], [2, "bad"]]}},
        {"dataframe_records": [{"text": "good"}, {"text": "bad"}]},
        {"instances": [{"text": "good"}, {"text": "bad"}]},
        {"instances": ["good", "bad"]},
        {"inputs": {"text": ["good", "bad"]}},
        {"inputs": ["good", "bad"]},
    ],
)
def test_invocations_formats(client, body):
    resp = client.post("/invocations", json=body)
    assert resp.status_code == 200, resp.json
    assert resp.json == {
        "predictions": [1, 0],
        "version": "2",
        "model": "sentiment",
        "alias": "canary",
        "classes": [0, 1],
        "task": "classification",
    }
    assert resp.headers["X-Model-Version"] == "2"


@pytest.mark.parametrize(
    "body, words",
    [
        ({"text": "good"}, "exactly one of"),
        ({"instances": ["a"], "inputs": ["b"]}, "exactly one of"),
        ({"instances": ["a"], "extra": 1}, "unexpected key(s) ['extra']"),
        ({"params": {}}, "exactly one of"),
        ({"dataframe_split": {"columns": ["review"], "data": [["good"]]}}, "missing inputs ['text']"),
        ({"dataframe_split": {"columns": ["review"], "data": [["good"]]}}, "Expected: 'text': string"),
        ({"dataframe_split": {"columns": ["text"], "data": [["good", 1]]}}, "'split' format"),
        ({"dataframe_split": ["good"]}, "split format must be a dictionary"),
        ({"dataframe_split": {"columns": ["text"], "rows": [["good"]]}}, "must have 'data' field"),
        ({"dataframe_records": [{"review": "good"}]}, "missing inputs ['text']"),
        ({"dataframe_records": ["good"]}, "missing inputs ['text']"),
        ({"dataframe_records": {"text": "good"}}, "must be a list of records"),
        ({"dataframe_records": [{"text": 5}]}, "column 'text' must hold strings"),
        ({"dataframe_records": [{"text": "ok"}, {"text": None}]}, "row 1 has null"),
        ({"instances": []}, "no rows"),
        ({"dataframe_records": []}, "no rows"),
        ({"dataframe_split": {"columns": ["text"], "data": []}}, "no rows"),
        ({"inputs": {"review": ["x"]}}, "missing inputs ['text']"),
        ({"inputs": "good"}, "missing inputs ['text']"),
        ({"inputs": ["a"], "params": [1]}, '"params" must be a JSON object'),
        ({"inputs": ["a"], "params": {"threshold": 1}}, "takes no params"),
    ],
)
def test_invocations_bad_input(client, body, words):
    resp = client.post("/invocations", data=json.dumps(body), content_type="application/json")
    assert resp.status_code == 400, resp.json
    assert words in resp.json["error"]
    assert len(resp.json["error"]) < 1200


def test_invocations_row_cap_and_body_limit(client):
    resp = client.post("/invocations", json={"instances": ["good"] * 9})
    assert resp.status_code == 413 and "too many rows: 9 > 8" in resp.json["error"]
    resp = client.post("/invocations", json={"inputs": {"text": ["good"] * 9}})
    assert resp.status_code == 413
    resp = client.post("/invocations", json={"instances": ["good"] * 8})
    assert resp.status_code == 200 and len(resp.json["predictions"]) == 8
    # /invocations has its own (larger) body limit than /predict's 2048 bytes.
    assert client.post("/invocations", json={"instances": ["x" * 3000]}).status_code == 200
    resp = client.post("/invocations", json={"instances": ["x" * 9000]})
    assert resp.status_code == 413 and "8192 bytes" in resp.json["error"]


def test_invocations_k_rows_give_k_predictions(client):
    for k in (1, 3, 8):
        texts = ["bad", "good"] * 4
        resp = client.post("/invocations", json={"dataframe_records": [{"text": t} for t in texts[:k]]})
        assert resp.json["predictions"] == [0, 1, 0, 1, 0, 1, 0, 1][:k]


class NumericModel:
    """Regression stand-in: x * 2, with a NaN and a datetime column to check JSON safety."""

    def predict(self, frame):
        return frame["x"].to_numpy() * 2.0


def numeric_model():
    return pyfunc(NumericModel(), [ColSpec("double", "x"), ColSpec("double", "y", required=False)], [ColSpec("double")])


def test_predict_text_on_a_tabular_model_says_what_to_send(tmp_path):
    app, _ = make_app(tmp_path, model=numeric_model())
    client = app.test_client()
    resp = client.post("/predict", json={"text": "good"})
    assert resp.status_code == 400
    assert "'x': double" in resp.json["error"] and "/invocations" in resp.json["error"]
    assert "dataframe_split" in resp.json["error"]
    ready = client.get("/ready").json
    assert ready["task"] == "regression" and ready["classes"] is None and ready["text_input"] is False
    assert ready["signature"]["inputs"][0] == {"type": "double", "name": "x", "required": True}


def test_regression_answers_and_wrong_rate_scales_the_value(tmp_path):
    app, _ = make_app(tmp_path, model=numeric_model())
    client = app.test_client()
    resp = client.post("/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[1.5], [0], [-2]]}})
    assert resp.json == {
        "predictions": [3.0, 0.0, -4.0],
        "version": "2",
        "model": "sentiment",
        "alias": "canary",
        "classes": None,
        "task": "regression",
    }
    resp = client.post("/invocations", json={"dataframe_records": [{"x": "abc"}]})
    assert resp.status_code == 400 and "column x" in resp.json["error"] and "float64" in resp.json["error"]
    client.post("/faults", json={"wrong_rate": 1.0})
    resp = client.post("/invocations", json={"inputs": {"x": [1.5, 0.0, -2.0]}})
    assert resp.json["predictions"] == [4.5, 0.5, -6.0]  # x 1.5; a 0 becomes 0.5


class OddOutputs:
    def predict(self, frame):
        import pandas as pd

        n = len(frame)
        return pd.DataFrame(
            {
                "score": [float("nan")] + [1.0] * (n - 1),
                "when": [datetime.datetime(2024, 5, 1, 12, 30)] * n,
                "label": np.array(["a"] * n),
            }
        )


def test_predictions_are_json_safe(tmp_path):
    app, _ = make_app(tmp_path, model=pyfunc(OddOutputs(), [ColSpec("double", "x")]))
    resp = app.test_client().post("/invocations", json={"dataframe_records": [{"x": 1}, {"x": 2}]})
    assert resp.status_code == 200, resp.json
    assert resp.json["predictions"] == [
        {"score": None, "when": "2024-05-01T12:30:00", "label": "a"},
        {"score": 1.0, "when": "2024-05-01T12:30:00", "label": "a"},
    ]
    assert resp.json["notes"] == ["1 prediction value(s) were NaN or infinite and are sent as null"]


class WrongCount:
    def predict(self, frame):
        return [1]


class Crashing:
    def predict(self, frame):
        raise ValueError("cannot handle this")


def test_model_errors(tmp_path):
    app, _ = make_app(tmp_path, model=pyfunc(WrongCount(), [ColSpec("string", "text")]))
    resp = app.test_client().post("/invocations", json={"instances": ["a", "b"]})
    assert resp.status_code == 500 and "1 prediction(s) for 2 row(s)" in resp.json["error"]
    app, _ = make_app(tmp_path, model=pyfunc(Crashing(), [ColSpec("string", "text")]))
    client = app.test_client()
    # /invocations: a ValueError on input that passed the signature is the input's (as MLflow says)
    resp = client.post("/invocations", json={"instances": ["a"]})
    assert resp.status_code == 400 and "ValueError: cannot handle this" in resp.json["error"]
    # /predict: a valid text the model cannot score is the model's fault
    resp = client.post("/predict", json={"text": "a"})
    assert resp.status_code == 500 and "ValueError: cannot handle this" in resp.json["error"]


class WithParams:
    def predict(self, frame, params=None):
        return [len(t) * params["scale"] for t in frame["text"]]


def test_params_are_checked_against_the_params_schema(tmp_path):
    model = pyfunc(
        WithParams(), [ColSpec("string", "text")], [ColSpec("double")], params=[ParamSpec("scale", "double", 1.0)]
    )
    app, _ = make_app(tmp_path, model=model)
    client = app.test_client()
    assert client.post("/invocations", json={"inputs": ["ab"]}).json["predictions"] == [2.0]
    assert client.post("/invocations", json={"inputs": ["ab"], "params": {"scale": 3}}).json["predictions"] == [6.0]
    resp = client.post("/invocations", json={"inputs": ["ab"], "params": {"scale": "big"}})
    assert resp.status_code == 400 and "scale" in resp.json["error"]
    # a one-string-input model answers the text API too (a regression: no classes)
    assert client.post("/predict", json={"texts": ["abc"]}).json == {
        "predictions": [3.0],
        "version": "2",
        "model": "sentiment",
        "alias": "canary",
        "classes": None,
        "task": "regression",
    }


class Labeller:
    def predict(self, frame):
        return ["spam" if "buy" in t else "ham" for t in frame["msg"]]


def test_string_labels_flip_between_seen_classes(tmp_path):
    app, _ = make_app(tmp_path, model=pyfunc(Labeller(), [ColSpec("string", "msg")], [ColSpec("string")]))
    client = app.test_client()
    assert client.get("/ready").json["task"] == "classification"
    truth = client.post("/predict", json={"texts": ["buy now", "hello"]}).json["predictions"]
    assert truth == ["spam", "ham"]
    client.post("/faults", json={"wrong_rate": 1.0})
    assert client.post("/predict", json={"texts": ["buy now", "hello"]}).json["predictions"] == ["ham", "spam"]


class Lengths:
    def predict(self, data):
        return [len(t) for t in (data.iloc[:, 0] if hasattr(data, "iloc") else data)]


def test_an_unnamed_string_input_takes_texts(tmp_path):
    app, _ = make_app(tmp_path, model=pyfunc(Lengths(), [ColSpec("string")], [ColSpec("long")]))
    client = app.test_client()
    assert client.get("/ready").json["text_input"] is True
    assert client.post("/predict", json={"texts": ["ab", "abc"]}).json["predictions"] == [2, 3]
    assert client.post("/invocations", json={"inputs": ["ab", "abcd"]}).json["predictions"] == [2, 4]


def test_a_plain_object_without_signature_still_serves_text(tmp_path):
    settings = Settings(
        tracking_uri="http://127.0.0.1:9", alias="canary", follow_alias=False, faults_file=str(tmp_path / "faults.json")
    )
    follower = ModelFollower(
        settings, registry=StubRegistry(), loader=lambda v: LoadedModel(v, KeywordModel(), (0, 1), time.time())
    )
    follower.check_once()
    client = create_app(settings, follower=follower).test_client()
    assert client.post("/predict", json={"texts": ["good", "bad"]}).json["predictions"] == [1, 0]
    assert client.post("/invocations", json={"dataframe_records": [{"text": "bad"}]}).json["predictions"] == [0]


def test_not_ready_before_a_model_is_loaded(tmp_path):
    app, follower = make_app(tmp_path, loaded=False)
    client = app.test_client()
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 503
    resp = client.post("/predict", json={"text": "good"})
    assert resp.status_code == 503 and "not loaded" in resp.json["error"]
    follower.check_once()
    ready = client.get("/ready").json
    before = {
        "ready": True,
        "model": "sentiment",
        "version": "2",
        "alias": "canary",
        "classes": [0, 1],
        "loaded_at": follower.current.loaded_at,
    }
    assert {k: ready[k] for k in before} == before
    assert ready["task"] == "classification" and ready["text_input"] is True and ready["load_error"] is None
    assert ready["signature"]["inputs"] == [{"type": "string", "name": "text", "required": True}]


def test_failed_reload_keeps_the_old_model(tmp_path):
    app, follower = make_app(tmp_path)
    follower.registry.version = "3"

    def broken(version):
        raise OSError("artifact download failed")

    follower.loader = broken
    with pytest.raises(OSError):
        follower.check_once()
    client = app.test_client()
    assert client.post("/predict", json={"text": "good"}).json["version"] == "2"
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json["version"] == "2"
    error = ready.json["load_error"]
    assert error["version"] == "3" and error["attempts"] == 1
    assert error["error"] == "OSError: artifact download failed"
    text = client.get("/metrics").get_data(as_text=True)
    assert 'model_server_model_load_error{alias="canary",version="3"} 1.0' in text
    assert 'model_server_model_load_failures_total{alias="canary",version="3"}' in text
    # Within the back-off the failed version is not tried again; after it, it is.
    assert follower.check_once() is False
    follower._retry_at = 0
    with pytest.raises(OSError):
        follower.check_once()
    assert follower.load_error["attempts"] == 2
    # The alias moves back to the served version: no version is pending any more.
    follower.registry.version = "2"
    assert follower.check_once() is False
    assert client.get("/ready").json["load_error"] is None
    assert metrics.LOAD_ERROR.labels("canary", "3")._value.get() == 0


def test_the_background_loop_retries_a_failed_version_with_back_off(tmp_path):
    settings = Settings(
        tracking_uri="http://127.0.0.1:9",
        alias="canary",
        alias_poll_s=0.02,
        faults_file=str(tmp_path / "faults.json"),
        load_retry_max_s=0.2,
    )
    attempts = []

    def loader(version):
        attempts.append(version)
        if version == "3":
            raise OSError("no such file: model.skops")
        return LoadedModel(version, keyword_model(), (0, 1), time.time())

    registry = StubRegistry("2")
    follower = ModelFollower(settings, registry=registry, loader=loader)
    follower.start()
    try:
        deadline = time.monotonic() + 5
        while follower.current is None and time.monotonic() < deadline:
            time.sleep(0.01)
        registry.version = "3"
        time.sleep(1.0)
        tries = attempts.count("3")
        assert 3 <= tries <= 8, attempts  # back-off 1 s capped at 0.2 s: about 5, not one per poll (50)
        assert follower.current.version == "2"
        assert follower.load_error["version"] == "3" and follower.load_error["attempts"] == tries
        assert "version 3 failed to load" in follower.last_error
        registry.version = "2"
        time.sleep(0.2)
        assert follower.load_error is None and follower.last_error == ""
    finally:
        follower.stop()


def test_a_failed_first_load_is_reported_while_not_ready(tmp_path):
    app, follower = make_app(tmp_path, loaded=False)

    def broken(version):
        raise ModuleNotFoundError("No module named 'xgboost'")

    follower.loader = broken
    with pytest.raises(ModuleNotFoundError):
        follower.check_once()
    resp = app.test_client().get("/ready")
    assert resp.status_code == 503
    assert resp.json["load_error"]["error"] == "ModuleNotFoundError: No module named 'xgboost'"


@pytest.mark.parametrize(
    "body, words",
    [
        ({"wrong_rate": 1.5}, "from 0 to 1"),
        ({"error_rate": -0.1}, "from 0 to 1"),
        ({"latency_ms": 20000}, "from 0 to 10000"),
        ({"wrong_rate": "0.5"}, "must be a number"),
        ({"wrong_rate": True}, "must be a number"),
        ({"slow": 1}, "unknown fault"),
        ([0.4], "JSON object"),
    ],
)
def test_faults_validation(client, body, words):
    resp = client.post("/faults", json=body)
    assert resp.status_code == 400 and words in resp.json["error"]


def test_faults_apply_and_clear(tmp_path):
    app, _ = make_app(tmp_path)
    client = app.test_client()
    assert client.post("/faults", json={"wrong_rate": 1}).json == {
        "wrong_rate": 1.0,
        "error_rate": 0.0,
        "latency_ms": 0.0,
    }
    assert client.post("/predict", json={"texts": ["good", "bad"]}).json["predictions"] == [0, 1]
    client.post("/faults", json={"error_rate": 1.0, "latency_ms": 50})
    started = time.perf_counter()
    resp = client.post("/predict", json={"text": "good"})
    assert resp.status_code == 500 and resp.json == {"error": "injected fault"}
    assert time.perf_counter() - started >= 0.05
    client.post("/faults", json={"wrong_rate": 0, "error_rate": 0, "latency_ms": 0})
    assert client.get("/faults").json == {"wrong_rate": 0.0, "error_rate": 0.0, "latency_ms": 0.0}
    assert client.post("/predict", json={"text": "good"}).json["prediction"] == 1


def test_faults_file_written_by_another_process_is_seen(tmp_path):
    app, _ = make_app(tmp_path)
    (tmp_path / "faults.json").write_text(json.dumps({"wrong_rate": 1.0}))
    client = app.test_client()
    assert client.post("/predict", json={"text": "good"}).json["prediction"] == 0
    (tmp_path / "faults.json").write_text("{broken")
    assert client.post("/predict", json={"text": "good"}).json["prediction"] == 1


def test_metrics_exposes_contract_names(client):
    client.post("/predict", json={"text": "good"})
    client.post("/faults", json={"wrong_rate": 0.25})
    text = client.get("/metrics").get_data(as_text=True)
    for name in (
        "model_server_requests_total",
        "model_server_request_duration_seconds_bucket",
        "model_server_model_info",
        "model_server_model_reloads_total",
        "model_server_fault_setting",
        "model_server_model_load_failures_total",
        "model_server_model_load_error",
    ):
        assert name in text
    assert 'model_server_fault_setting{alias="canary",kind="wrong_rate"} 0.25' in text


def test_no_version_with_the_alias_is_reported_and_healthy_for_a_canary(tmp_path):
    """A model with no canary yet: /ready says so, and the canary's container healthcheck
    (model-server/healthcheck.py, against a real HTTP server here) accepts it."""
    import importlib.util
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class NoAlias:
        def alias_version(self, alias):
            raise NotFound(f"no version of sentiment has the alias {alias!r}")

    app, follower = make_app(tmp_path, loaded=False)
    follower.registry = NoAlias()
    follower.settings = follower.settings.model_copy(update={"alias_poll_s": 0.05})
    worker = threading.Thread(target=follower._run, daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while not follower.alias_missing and time.monotonic() < deadline:
            time.sleep(0.05)
        resp = app.test_client().get("/ready")
        assert resp.status_code == 503 and resp.json["alias_missing"] is True
        assert "not found" in resp.json["reason"]
        root = Path(__file__).resolve().parents[2]
        spec = importlib.util.spec_from_file_location("healthcheck", root / "model-server" / "healthcheck.py")
        healthcheck = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(healthcheck)

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args):
                pass

        server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/ready"
        try:
            assert healthcheck.main(["--alias-may-be-missing"], url=url) == 0
            assert healthcheck.main([], url=url) == 1  # production must serve something
        finally:
            server.shutdown()
    finally:
        follower.stop()
