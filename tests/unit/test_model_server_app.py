"""The model server's HTTP behaviour, with a stand-in model (no MLflow needed)."""
import json
import time

import pytest

from model_server.app import create_app
from model_server.config import Settings
from model_server.follower import LoadedModel, ModelFollower


class KeywordModel:
    """Positive unless the text mentions "bad"."""

    def predict(self, frame):
        return [0 if "bad" in t else 1 for t in frame["text"]]


class StubRegistry:
    def __init__(self, version="2"):
        self.version = version

    def alias_version(self, alias):
        return self.version


def make_app(tmp_path, loaded=True, **overrides):
    settings = Settings(tracking_uri="http://127.0.0.1:9", alias="canary", follow_alias=False,
                        faults_file=str(tmp_path / "faults.json"), max_body_bytes=2048, max_texts=5, **overrides)
    follower = ModelFollower(settings, registry=StubRegistry(),
                             loader=lambda v: LoadedModel(v, KeywordModel(), (0, 1), time.time()))
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
    assert resp.json == {"prediction": 0, "version": "2", "model": "sentiment", "alias": "canary", "classes": [0, 1]}
    assert resp.headers["X-Model-Version"] == "2"
    resp = client.post("/predict", json={"texts": ["good", "bad"]})
    assert resp.json["predictions"] == [1, 0]


def test_blank_means_what_the_router_schema_says(client):
    # The router forwards any text its OpenAPI schema allows; "\x1d" is not whitespace there.
    assert client.post("/predict", json={"text": "\x1d"}).status_code == 200
    assert client.post("/predict", json={"texts": ["ok", "\x85"]}).status_code == 200
    resp = client.post("/predict", json={"text": "\ufeff\u3000"})
    assert resp.status_code == 400 and "must not be empty" in resp.json["error"]


@pytest.mark.parametrize("body, words", [
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
])
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


@pytest.mark.parametrize("body", [
    {"dataframe_split": {"columns": ["text"], "data": [["good"], ["bad"]]}},
    {"dataframe_split": {"index": [0, 1], "columns": ["id", "text"], "data": [[1, "good"], [2, "bad"]]}},
    {"dataframe_records": [{"text": "good"}, {"text": "bad"}]},
    {"instances": [{"text": "good"}, {"text": "bad"}]},
    {"instances": ["good", "bad"]},
    {"inputs": {"text": ["good", "bad"]}},
    {"inputs": ["good", "bad"]},
])
def test_invocations_formats(client, body):
    resp = client.post("/invocations", json=body)
    assert resp.status_code == 200, resp.json
    assert resp.json == {"predictions": [1, 0]}


@pytest.mark.parametrize("body, words", [
    ({"text": "good"}, "exactly one of"),
    ({"instances": ["a"], "inputs": ["b"]}, "exactly one of"),
    ({"dataframe_split": {"columns": ["review"], "data": [["good"]]}}, 'no "text" column'),
    ({"dataframe_split": {"columns": ["text"], "data": [["good", 1]]}}, "data[0]"),
    ({"dataframe_split": ["good"]}, "dataframe_split must be"),
    ({"dataframe_records": [{"review": "good"}]}, 'no "text" field'),
    ({"dataframe_records": ["good"]}, "list of objects"),
    ({"instances": []}, "must not be empty"),
    ({"instances": [1]}, "must be a string"),
    ({"inputs": {"review": ["x"]}}, 'no "text" field'),
    ({"inputs": "good"}, "must be a list"),
])
def test_invocations_bad_input(client, body, words):
    resp = client.post("/invocations", data=json.dumps(body), content_type="application/json")
    assert resp.status_code == 400
    assert words in resp.json["error"]


def test_not_ready_before_a_model_is_loaded(tmp_path):
    app, follower = make_app(tmp_path, loaded=False)
    client = app.test_client()
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 503
    resp = client.post("/predict", json={"text": "good"})
    assert resp.status_code == 503 and "not loaded" in resp.json["error"]
    follower.check_once()
    assert client.get("/ready").json == {"ready": True, "model": "sentiment", "version": "2", "alias": "canary",
                                         "classes": [0, 1], "loaded_at": follower.current.loaded_at}


def test_failed_reload_keeps_the_old_model(tmp_path):
    app, follower = make_app(tmp_path)
    follower.registry.version = "3"

    def broken(version):
        raise OSError("artifact download failed")

    follower.loader = broken
    with pytest.raises(OSError):
        follower.check_once()
    assert app.test_client().post("/predict", json={"text": "good"}).json["version"] == "2"


@pytest.mark.parametrize("body, words", [
    ({"wrong_rate": 1.5}, "from 0 to 1"),
    ({"error_rate": -0.1}, "from 0 to 1"),
    ({"latency_ms": 20000}, "from 0 to 10000"),
    ({"wrong_rate": "0.5"}, "must be a number"),
    ({"wrong_rate": True}, "must be a number"),
    ({"slow": 1}, "unknown fault"),
    ([0.4], "JSON object"),
])
def test_faults_validation(client, body, words):
    resp = client.post("/faults", json=body)
    assert resp.status_code == 400 and words in resp.json["error"]


def test_faults_apply_and_clear(tmp_path):
    app, _ = make_app(tmp_path)
    client = app.test_client()
    assert client.post("/faults", json={"wrong_rate": 1}).json == {"wrong_rate": 1.0, "error_rate": 0.0,
                                                                    "latency_ms": 0.0}
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
    for name in ("model_server_requests_total", "model_server_request_duration_seconds_bucket",
                 "model_server_model_info", "model_server_model_reloads_total", "model_server_fault_setting"):
        assert name in text
    assert 'model_server_fault_setting{alias="canary",kind="wrong_rate"} 0.25' in text
