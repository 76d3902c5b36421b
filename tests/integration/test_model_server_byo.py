"""Any MLflow pyfunc model behind one alias, under real gunicorn against a real MLflow server.

One registered model, four versions of different kinds; the alias moves between them and the
server follows: a breast-cancer classifier (skops), a diabetes regressor (cloudpickle), a custom
PythonModel (string input, string labels, params), and a version whose load fails (its class
comes from a module the server does not have).
"""

import time
from concurrent.futures import ThreadPoolExecutor

import mlflow.pyfunc
import pandas as pd
import pytest
import requests
from mlflow.tracking import MlflowClient

from support import byo_models as byo
from support.models import start_model_server
from support.procs import start_mlflow

MODEL = "byo"
ALIAS = "production"
WORKERS = 2
CLEAR = {"wrong_rate": 0, "error_rate": 0, "latency_ms": 0}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("model-server-byo")
    started = time.monotonic()
    mlflow_proc, mlflow_url = start_mlflow(log_dir)
    server = None
    restored = byo.mlflow_globals_restored().__enter__()
    try:
        # gunicorn boots (and waits for the alias) while the versions are logged
        with ThreadPoolExecutor(max_workers=1) as pool:
            booting = pool.submit(
                start_model_server,
                mlflow_url,
                ALIAS,
                log_dir,
                workers=WORKERS,
                model_name=MODEL,
                alias_poll_s=0.5,
                timeout=90,
            )
            versions = {
                "cancer": byo.log_cancer_classifier(mlflow_url, MODEL).version,
                "diabetes": byo.log_diabetes_regressor(mlflow_url, MODEL).version,
                "keyword": byo.log_keyword_model(mlflow_url, MODEL).version,
            }
            missing, module = byo.log_missing_dependency_model(mlflow_url, MODEL)
            versions["missing"] = missing.version
            client = MlflowClient(mlflow_url)
            client.set_registered_model_alias(MODEL, ALIAS, versions["cancer"])
            server, url = booting.result()
        print(f"byo stack up in {time.monotonic() - started:.1f}s")
        yield {
            "mlflow": mlflow_url,
            "url": url,
            "versions": versions,
            "client": client,
            "server": server,
            "module": module,
        }
    finally:
        restored.__exit__(None, None, None)
        if server:
            server.stop()
        mlflow_proc.stop()


def serving(stack, kind: str) -> str:
    """Point the alias at `kind`'s version and wait until every worker serves it."""
    version = stack["versions"][kind]
    stack["client"].set_registered_model_alias(MODEL, ALIAS, version)
    byo.wait_serving(stack["url"], version, workers=WORKERS, timeout=60)
    requests.post(stack["url"] + "/faults", json=CLEAR, timeout=5)
    return version


def local_predictions(stack, version, frame):
    mlflow.set_tracking_uri(stack["mlflow"])
    return mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}").predict(frame)


def post(stack, body, path="/invocations"):
    return requests.post(stack["url"] + path, json=body, timeout=30)


def test_classifier_round_trips_every_format(stack):
    version = serving(stack, "cancer")
    X, y = byo.cancer_data()
    rows = X.iloc[[0, 1, 19, 20, 21, 40]]
    expected = local_predictions(stack, version, rows).tolist()
    assert sorted(set(expected)) == [0, 1]
    for fmt, body in byo.all_formats(rows).items():
        resp = post(stack, body)
        assert resp.status_code == 200, (fmt, resp.text)
        assert resp.json() == {
            "predictions": expected,
            "version": version,
            "model": MODEL,
            "alias": ALIAS,
            "classes": [0, 1],
            "task": "classification",
        }, fmt
    ready = requests.get(stack["url"] + "/ready", timeout=5).json()
    assert ready["task"] == "classification" and ready["classes"] == [0, 1] and ready["text_input"] is False
    assert ready["flavor"] == "mlflow.sklearn" and len(ready["signature"]["inputs"]) == 30


def test_classifier_k_rows_and_signature_errors(stack):
    serving(stack, "cancer")
    X, y = byo.cancer_data()
    for k in (1, 7, 300):
        resp = post(stack, byo.all_formats(X.head(k))["dataframe_split"])
        assert resp.status_code == 200 and len(resp.json()["predictions"]) == k
    accuracy = (pd.Series(post(stack, byo.all_formats(X)["dataframe_split"]).json()["predictions"]) == y).mean()
    assert accuracy > 0.95
    too_many = pd.concat([X] * 2).head(1001)
    resp = post(stack, byo.all_formats(too_many)["dataframe_split"])
    assert resp.status_code == 413 and "too many rows" in resp.json()["error"]
    resp = post(stack, byo.all_formats(X.head(2).drop(columns=["worst area"]))["dataframe_records"])
    assert resp.status_code == 400
    assert "missing inputs ['worst area']" in resp.json()["error"] and "'worst area': double" in resp.json()["error"]
    wrong = byo.all_formats(X.head(2))["dataframe_split"]
    wrong["dataframe_split"]["data"][1][0] = "big"
    resp = post(stack, wrong)
    assert resp.status_code == 400 and "column mean radius" in resp.json()["error"]
    for body in ({"dataframe_records": []}, {"rows": []}, {"inputs": [1], "instances": [1]}):
        resp = post(stack, body)
        assert resp.status_code == 400 and resp.json()["error"]
    resp = requests.post(
        stack["url"] + "/invocations", data=b"{oops", timeout=5, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400 and "not valid JSON" in resp.json()["error"]
    resp = post(stack, {"text": "a review"}, path="/predict")
    assert resp.status_code == 400 and "/invocations" in resp.json()["error"]


def test_regressor_round_trips_every_format(stack):
    version = serving(stack, "diabetes")
    X, _ = byo.diabetes_data()
    rows = X.head(5)
    expected = local_predictions(stack, version, rows).tolist()
    for fmt, body in byo.all_formats(rows).items():
        resp = post(stack, body)
        assert resp.status_code == 200, (fmt, resp.text)
        answer = resp.json()
        assert answer["task"] == "regression" and answer["classes"] is None and answer["version"] == version
        assert answer["predictions"] == pytest.approx(expected), fmt
    requests.post(stack["url"] + "/faults", json={"wrong_rate": 1.0}, timeout=5)
    for _ in range(4):  # whichever worker answers
        wrong = post(stack, byo.all_formats(rows)["dataframe_split"]).json()["predictions"]
        assert wrong == pytest.approx([p * 1.5 for p in expected])
    requests.post(stack["url"] + "/faults", json=CLEAR, timeout=5)
    resp = post(stack, byo.all_formats(X.head(1).drop(columns=["bmi"]))["dataframe_split"])
    assert resp.status_code == 400 and "'bmi': double" in resp.json()["error"]


def test_custom_python_model(stack):
    version = serving(stack, "keyword")
    reviews = ["great value, love it", "broken and awful", "good but poor battery"]
    for fmt, body in byo.all_formats(pd.DataFrame({"review": reviews})).items():
        resp = post(stack, body)
        assert resp.status_code == 200, (fmt, resp.text)
        assert resp.json()["predictions"] == ["positive", "negative", "negative"], fmt
        assert resp.json()["classes"] == ["negative", "positive"] and resp.json()["task"] == "classification"
    resp = post(stack, {"inputs": {"review": reviews}, "params": {"threshold": -1}})
    assert resp.json()["predictions"] == ["positive", "negative", "positive"]
    resp = post(stack, {"dataframe_records": [{"review": 3}]})
    assert resp.status_code == 400 and "column 'review'" in resp.json()["error"]
    assert post(stack, {"text": "love it"}, path="/predict").json() == {
        "prediction": "positive",
        "version": version,
        "model": MODEL,
        "alias": ALIAS,
        "classes": ["negative", "positive"],
        "task": "classification",
    }
    ready = requests.get(stack["url"] + "/ready", timeout=5).json()
    assert ready["task_source"] == "tags" and ready["text_input"] is True
    assert ready["signature"]["params"] == [{"name": "threshold", "type": "double", "default": 0.0, "shape": None}]


def test_failed_load_keeps_the_old_version_serving(stack):
    good = serving(stack, "cancer")
    bad = stack["versions"]["missing"]
    body = byo.all_formats(byo.cancer_data()[0].head(3))["dataframe_split"]
    before = post(stack, body).json()["predictions"]
    stack["client"].set_registered_model_alias(MODEL, ALIAS, bad)
    try:
        ready = byo.wait_serving(stack["url"], good, workers=WORKERS, timeout=30, load_error_version=bad)
        error = ready["load_error"]
        assert error["stage"] == "load" and error["attempts"] >= 1
        assert f"No module named '{stack['module']}'" in error["error"]
        for _ in range(10):  # both workers go on answering with the version they have
            resp = post(stack, body)
            assert resp.status_code == 200 and resp.json()["version"] == good
            assert resp.json()["predictions"] == before
        metrics = requests.get(stack["url"] + "/metrics", timeout=5).text
        assert f'model_server_model_load_error{{alias="{ALIAS}",version="{bad}"}} 1.0' in metrics
        assert f'model_server_model_load_failures_total{{alias="{ALIAS}",version="{bad}"}}' in metrics
        assert f"version {bad} failed to load" in stack["server"].log_path.read_text()
    finally:
        stack["client"].set_registered_model_alias(MODEL, ALIAS, good)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        metrics = requests.get(stack["url"] + "/metrics", timeout=5).text
        if f'model_server_model_load_error{{alias="{ALIAS}",version="{bad}"}} 0.0' in metrics:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"load error of version {bad} still flagged:\n{metrics}")
    assert requests.get(stack["url"] + "/ready", timeout=5).json()["load_error"] is None
