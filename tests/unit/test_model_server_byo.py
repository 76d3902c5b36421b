"""The model server with real MLflow models, logged in-process to a file store in a tmp dir:
loading (skops, cloudpickle, custom PythonModel, tensors), task and class inference, every
scoring format, signature errors, and versions that fail to load."""

import shutil
import time

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from model_server.app import create_app
from model_server.config import Settings
from model_server.follower import LoadFailed, ModelFollower, load_from_registry
from support import byo_models as byo


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with byo.mlflow_globals_restored(byo.FILE_STORE_ENV):
        yield _log_models(byo.file_store_uri(tmp_path_factory.mktemp("mlruns")))


def _log_models(uri):
    started = time.monotonic()
    versions = {
        "cancer": byo.log_cancer_classifier(uri, "cancer"),
        "diabetes": byo.log_diabetes_regressor(uri, "diabetes"),
        "keyword": byo.log_keyword_model(uri, "keyword"),
        "tensor": byo.log_tensor_model(uri, "tensor"),
        "hinted": byo.log_type_hinted_model(uri, "hinted"),
    }
    missing, module = byo.log_missing_dependency_model(uri, "cancer")  # cancer v2
    corrupt = byo.log_tensor_model(uri, "cancer")  # cancer v3
    byo.corrupt_artifact(byo.model_dir(uri, corrupt))
    untrusted = byo.log_untrusted_skops_model(uri, "cancer")  # cancer v4
    byo.distrust_skops_types(byo.model_dir(uri, untrusted))
    versions.update(missing=missing, corrupt=corrupt, untrusted=untrusted)
    print(f"logged {len(versions)} models in {time.monotonic() - started:.1f}s")
    return uri, versions, module


def serve(tmp_path, uri, name, alias="production", **overrides):
    settings = Settings(
        tracking_uri=uri,
        model_name=name,
        alias=alias,
        follow_alias=False,
        faults_file=str(tmp_path / f"faults-{name}.json"),
        **overrides,
    )
    follower = ModelFollower(settings, registry=byo.MlflowAliasRegistry(uri, name))
    return create_app(settings, follower=follower).test_client(), follower


def set_alias(uri, name, version, alias="production"):
    MlflowClient(uri).set_registered_model_alias(name, alias, str(version))


def test_task_and_classes_are_inferred(store):
    uri, v, _ = store
    cancer = load_from_registry(uri, "cancer", v["cancer"].version)
    assert (cancer.task, cancer.classes, cancer.task_source) == ("classification", (0, 1), "estimator")
    diabetes = load_from_registry(uri, "diabetes", v["diabetes"].version)
    assert (diabetes.task, diabetes.classes, diabetes.task_source) == ("regression", None, "estimator")
    keyword = load_from_registry(uri, "keyword", v["keyword"].version)
    assert (keyword.task, keyword.classes, keyword.task_source) == ("classification", ("negative", "positive"), "tags")
    tensor = load_from_registry(uri, "tensor", v["tensor"].version)
    assert (tensor.task, tensor.classes, tensor.task_source) == ("regression", None, "signature")
    assert cancer.path and diabetes.model.loader_module == "mlflow.sklearn"
    for loaded in (cancer, diabetes, keyword, tensor):  # kept while served; these are not
        shutil.rmtree(loaded.path)


@pytest.mark.parametrize("fmt", list(byo.all_formats(byo.cancer_data()[0].head(1))))
def test_tabular_classifier_every_format(store, tmp_path, fmt):
    uri, v, _ = store
    set_alias(uri, "cancer", v["cancer"].version)
    client, follower = serve(tmp_path, uri, "cancer")
    follower.check_once()
    X, y = byo.cancer_data()
    rows = X.iloc[[0, 1, 19, 20, 21]]  # both classes
    expected = follower.current.model.predict(rows).tolist()
    assert sorted(set(expected)) == [0, 1]
    resp = client.post("/invocations", json=byo.all_formats(rows)[fmt])
    assert resp.status_code == 200, resp.json
    assert resp.json == {
        "predictions": expected,
        "version": v["cancer"].version,
        "model": "cancer",
        "alias": "production",
        "classes": [0, 1],
        "task": "classification",
    }


def test_tabular_classifier_signature_errors_name_the_column(store, tmp_path):
    uri, v, _ = store
    set_alias(uri, "cancer", v["cancer"].version)
    client, follower = serve(tmp_path, uri, "cancer")
    follower.check_once()
    X, _ = byo.cancer_data()
    rows = X.head(2)
    missing = byo.all_formats(rows.drop(columns=["mean area"]))["dataframe_split"]
    resp = client.post("/invocations", json=missing)
    assert resp.status_code == 400
    assert "missing inputs ['mean area']" in resp.json["error"] and "'mean area': double" in resp.json["error"]
    wrong = byo.all_formats(rows)["dataframe_records"]
    wrong["dataframe_records"][1]["worst radius"] = "large"
    resp = client.post("/invocations", json=wrong)
    assert resp.status_code == 400
    assert "column worst radius" in resp.json["error"] and "float64" in resp.json["error"]
    nulls = byo.all_formats(rows)["dataframe_records"]
    nulls["dataframe_records"][0]["mean radius"] = None
    resp = client.post("/invocations", json=nulls)
    assert resp.status_code == 400 and "mean radius" in resp.json["error"]
    resp = client.post("/predict", json={"text": "a review"})
    assert resp.status_code == 400 and "/invocations" in resp.json["error"]
    k = 40
    resp = client.post("/invocations", json=byo.all_formats(X.head(k))["dataframe_split"])
    assert len(resp.json["predictions"]) == k


def test_regressor_every_format_and_wrong_values(store, tmp_path):
    uri, v, _ = store
    set_alias(uri, "diabetes", v["diabetes"].version)
    client, follower = serve(tmp_path, uri, "diabetes")
    follower.check_once()
    X, _ = byo.diabetes_data()
    rows = X.head(4)
    expected = follower.current.model.predict(rows).tolist()
    for fmt, body in byo.all_formats(rows).items():
        resp = client.post("/invocations", json=body)
        assert resp.status_code == 200, (fmt, resp.json)
        assert resp.json["task"] == "regression" and resp.json["classes"] is None
        assert resp.json["predictions"] == pytest.approx(expected), fmt
    client.post("/faults", json={"wrong_rate": 1.0})
    resp = client.post("/invocations", json=byo.all_formats(rows)["dataframe_split"])
    assert resp.json["predictions"] == pytest.approx([p * 1.5 for p in expected])
    ready = client.get("/ready").json
    assert ready["task"] == "regression" and ready["flavor"] == "mlflow.sklearn"
    assert len(ready["signature"]["inputs"]) == 10


def test_custom_python_model_with_params_and_string_labels(store, tmp_path):
    uri, v, _ = store
    set_alias(uri, "keyword", v["keyword"].version)
    client, follower = serve(tmp_path, uri, "keyword")
    follower.check_once()
    reviews = ["great value, love it", "broken and awful", "good but poor battery"]
    import pandas as pd

    for fmt, body in byo.all_formats(pd.DataFrame({"review": reviews})).items():
        resp = client.post("/invocations", json=body)
        assert resp.status_code == 200, (fmt, resp.json)
        assert resp.json["predictions"] == ["positive", "negative", "negative"], fmt
        assert resp.json["classes"] == ["negative", "positive"]
    resp = client.post("/invocations", json={"inputs": {"review": reviews}, "params": {"threshold": -1}})
    assert resp.json["predictions"] == ["positive", "negative", "positive"]
    resp = client.post("/invocations", json={"inputs": {"review": reviews}, "params": {"threshold": "x"}})
    assert resp.status_code == 400 and "threshold" in resp.json["error"]
    # one string input: the text API works, with the model's labels
    assert client.post("/predict", json={"text": "love it"}).json == {
        "prediction": "positive",
        "version": v["keyword"].version,
        "model": "keyword",
        "alias": "production",
        "classes": ["negative", "positive"],
        "task": "classification",
    }
    client.post("/faults", json={"wrong_rate": 1.0})
    assert client.post("/predict", json={"texts": ["love it", "awful"]}).json["predictions"] == ["negative", "positive"]


def test_tensor_model(store, tmp_path):
    uri, v, _ = store
    set_alias(uri, "tensor", v["tensor"].version)
    client, follower = serve(tmp_path, uri, "tensor")
    follower.check_once()
    images = (np.arange(3 * 16, dtype="float32").reshape(3, 4, 4) / 10).tolist()
    expected = [float(np.mean(i, dtype="float32")) for i in images]
    for body in ({"inputs": images}, {"instances": images}):
        resp = client.post("/invocations", json=body)
        assert resp.status_code == 200, resp.json
        assert resp.json["predictions"] == pytest.approx(expected)
    resp = client.post("/invocations", json={"inputs": [[1.0, 2.0]]})
    assert resp.status_code == 400 and "shape" in resp.json["error"].lower()
    resp = client.post("/invocations", json={"dataframe_records": [{"a": 1.0}]})
    assert resp.status_code == 400


def test_type_hinted_python_model(store, tmp_path):
    uri, v, _ = store
    set_alias(uri, "hinted", v["hinted"].version)
    client, follower = serve(tmp_path, uri, "hinted")
    follower.check_once()
    resp = client.post("/invocations", json={"inputs": ["a", "b c"]})
    assert resp.status_code == 200, resp.json
    assert resp.json["predictions"] == ["A", "B C"] and resp.json["task"] == "classification"
    resp = client.post("/invocations", json={"inputs": ["a", 5]})
    assert resp.status_code == 400 and "Expected type str" in resp.json["error"]
    resp = client.post("/invocations", json={"instances": ["a"]})
    assert resp.status_code == 400 and 'send {"inputs": ...}' in resp.json["error"]
    assert client.post("/predict", json={"texts": ["x", "y"]}).json["predictions"] == ["X", "Y"]
    assert client.get("/ready").json["signature"]["from_type_hints"] is True


@pytest.mark.parametrize(
    "which, stage, words",
    [
        ("missing", "load", "ModuleNotFoundError: No module named 'canary_missing_dep_"),
        ("untrusted", "load", "UntrustedTypesFoundException"),
        ("corrupt", "load", "UnpicklingError"),
        ("untrusted", "load", "ClipTransformer"),
    ],
)
def test_versions_that_fail_to_load(store, which, stage, words):
    uri, v, module = store
    with pytest.raises(LoadFailed) as info:
        load_from_registry(uri, "cancer", v[which].version)
    assert info.value.stage == stage
    assert words in str(info.value)


def test_failed_load_keeps_the_old_version_serving(store, tmp_path):
    uri, v, _ = store
    good, bad = v["cancer"].version, v["untrusted"].version
    set_alias(uri, "cancer", good)
    client, follower = serve(tmp_path, uri, "cancer")
    follower.check_once()
    body = byo.all_formats(byo.cancer_data()[0].head(3))["dataframe_split"]
    before = client.post("/invocations", json=body).json["predictions"]
    set_alias(uri, "cancer", bad)
    with pytest.raises(LoadFailed):
        follower.check_once()
    resp = client.post("/invocations", json=body)
    assert resp.status_code == 200 and resp.json["version"] == good and resp.json["predictions"] == before
    ready = client.get("/ready").json
    assert ready["ready"] is True and ready["version"] == good
    assert ready["load_error"]["version"] == bad and ready["load_error"]["stage"] == "load"
    assert "ClipTransformer" in ready["load_error"]["error"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'model_server_model_load_error{{alias="production",version="{bad}"}} 1.0' in metrics
    set_alias(uri, "cancer", good)
    assert follower.check_once() is False
    assert client.get("/ready").json["load_error"] is None
