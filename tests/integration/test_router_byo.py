"""Any MLflow model through the router, with real components: a real MLflow server, two model
servers and a router under gunicorn. One registered model whose aliases move together between a
diabetes regressor, a breast-cancer classifier (integer classes) and a custom PythonModel with
string labels; the router forwards every MLflow payload format untouched, counts k rows as k
predictions, judges the truth sent with them (labels or values, inline or late) and refuses
what does not fit with a 400 that says why.
"""

import mlflow.pyfunc
import pandas as pd
import pytest
import requests
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from canary_common.registry import RegistryClient
from canary_common.regression import ABS_ERROR_METRIC
from support import byo_models as byo
from support.models import start_model_server
from support.procs import ROOT, Proc, free_port, python_cmd, start_mlflow

MODEL = "byo-router"
ALIASES = ("production", "canary")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("router-byo")
    mlflow_proc, mlflow_url = start_mlflow(log_dir)
    procs = []
    restored = byo.mlflow_globals_restored().__enter__()
    try:
        versions = {
            "diabetes": byo.log_diabetes_regressor(mlflow_url, MODEL).version,
            "cancer": byo.log_cancer_classifier(mlflow_url, MODEL).version,
            "keyword": byo.log_keyword_model(mlflow_url, MODEL).version,
        }
        client = MlflowClient(mlflow_url)
        for alias in ALIASES:
            client.set_registered_model_alias(MODEL, alias, versions["diabetes"])
        urls = {}
        for alias in ALIASES:
            proc, urls[alias] = start_model_server(
                mlflow_url, alias, log_dir, workers=1, model_name=MODEL, alias_poll_s=0.5
            )
            procs.append(proc)
        RegistryClient(mlflow_url, MODEL, timeout=5).set_weight_by_hand(50, "both arms get traffic", fresh=True)
        port = free_port()
        env = {
            "PORT": port,
            "WORKERS": 2,
            "PROMETHEUS_MULTIPROC_DIR": log_dir / "router-metrics",
            "MLFLOW_TRACKING_URI": mlflow_url,
            "MODEL_NAME": MODEL,
            "STATE_POLL_S": "0.5",
            "PRODUCTION_URL": urls["production"],
            "CANARY_URL": urls["canary"],
            "FEEDBACK_SECRET": "s3cret",
        }
        (log_dir / "router-metrics").mkdir()
        router = Proc(
            "router",
            python_cmd("-m", "gunicorn", "-c", str(ROOT / "router/gunicorn.conf.py")),
            log_dir,
            env=env,
            cwd=ROOT / "router",
        ).start()
        procs.append(router)
        url = f"http://127.0.0.1:{port}"
        router.wait_http(url + "/ready", timeout=60)
        yield {"mlflow": mlflow_url, "url": url, "servers": urls, "versions": versions, "client": client}
    finally:
        restored.__exit__(None, None, None)
        for proc in reversed(procs):
            proc.stop()
        mlflow_proc.stop()


def serve(stack, kind: str) -> str:
    """Both aliases on `kind`'s version, every model server serving it."""
    version = stack["versions"][kind]
    for alias in ALIASES:
        stack["client"].set_registered_model_alias(MODEL, alias, version)
    for url in stack["servers"].values():
        byo.wait_serving(url, version, workers=1, timeout=60)
    return version


def predict(stack, body, status=200):
    resp = requests.post(stack["url"] + "/predict", json=body, timeout=30)
    assert resp.status_code == status, resp.text
    return resp.json()


def exposition(stack) -> dict:
    """{(sample name, frozen labels): value} of the router's Prometheus exposition."""
    text = requests.get(stack["url"] + "/metrics/prometheus", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: dict, name: str, **match) -> float:
    return sum(
        v
        for (n, labels), v in samples.items()
        if n == name and all(dict(labels).get(k) == want for k, want in match.items())
    )


def local(stack, version, frame):
    mlflow.set_tracking_uri(stack["mlflow"])
    return mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}").predict(frame)


def test_a_regressor_through_every_format_with_values(stack):
    version = serve(stack, "diabetes")
    X, y = byo.diabetes_data()
    rows = X.iloc[[3, 7, 11]]
    expected = [float(v) for v in local(stack, version, rows)]
    values = [float(v) for v in y.iloc[[3, 7, 11]]]
    before = exposition(stack)
    for name, payload in byo.all_formats(rows).items():
        answer = predict(stack, {**payload, "actual_value": values})
        assert answer["task"] == "regression" and answer["version"] == version, name
        assert answer["predictions"] == pytest.approx(expected, rel=1e-6), name
        assert len(answer["request_ids"]) == 3 and "request_id" not in answer, name
    after = exposition(stack)
    n = 3 * len(byo.all_formats(rows))
    assert (
        total(after, "canary_router_requests_total", status="ok")
        - total(before, "canary_router_requests_total", status="ok")
        == n
    )  # k rows: k predictions
    assert total(after, ABS_ERROR_METRIC + "_count") - total(before, ABS_ERROR_METRIC + "_count") == n
    sum_error = total(after, ABS_ERROR_METRIC + "_sum") - total(before, ABS_ERROR_METRIC + "_sum")
    per_format = sum(abs(p - v) for p, v in zip(expected, values))
    assert sum_error == pytest.approx(per_format * len(byo.all_formats(rows)), rel=1e-6)
    stats = requests.get(stack["url"] + "/stats", timeout=5).json()
    arms = [stats[a] for a in ALIASES if stats[a]["labelled_values"]]
    assert arms and all(a["task"] == "regression" and a["mae"] > 0 and a["accuracy"] is None for a in arms)


def test_late_values_for_a_regressor(stack):
    version = serve(stack, "diabetes")
    X, y = byo.diabetes_data()
    answer = predict(
        stack, {"dataframe_records": byo.all_formats(X.iloc[[5]])["dataframe_records"]["dataframe_records"]}
    )
    assert answer["request_ids"] == [answer["request_id"]] and answer["version"] == version
    before = exposition(stack)
    truth = float(y.iloc[5])
    resp = requests.post(
        stack["url"] + "/feedback", json={"request_id": answer["request_id"], "actual_value": truth}, timeout=10
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["abs_error"] == pytest.approx(abs(answer["prediction"] - truth), rel=1e-9)
    after = exposition(stack)
    assert (
        total(after, ABS_ERROR_METRIC + "_count", model=body["model_version"])
        - total(before, ABS_ERROR_METRIC + "_count", model=body["model_version"])
        == 1
    )
    again = requests.post(
        stack["url"] + "/feedback", json={"request_id": answer["request_id"], "actual_value": 1}, timeout=10
    )
    assert again.status_code == 409
    wrong_kind = requests.post(
        stack["url"] + "/feedback", json={"request_id": answer["request_id"], "actual_label": 1}, timeout=10
    )
    assert wrong_kind.status_code == 400 and "regressor" in wrong_kind.json()["error"]
    # A label on a regressor's /predict: refused before any prediction is counted.
    refused = predict(stack, {**byo.all_formats(X.iloc[[5]])["instances"], "actual_label": 1}, status=400)
    assert "regressor" in refused["error"] and "actual_value" in refused["error"]


def test_a_classifier_with_integer_classes_and_k_labels(stack):
    version = serve(stack, "cancer")
    X, y = byo.cancer_data()
    rows, labels = X.iloc[0:40], [int(v) for v in y.iloc[0:40]]
    expected = [int(v) for v in local(stack, version, rows)]
    before = exposition(stack)
    answer = predict(stack, {**byo.all_formats(rows)["dataframe_split"], "actual_label": labels})
    assert answer["predictions"] == expected and answer["task"] == "classification"
    after = exposition(stack)
    correct = sum(p == t for p, t in zip(expected, labels))
    delta = {
        o: total(after, "canary_router_labelled_predictions_total", outcome=o)
        - total(before, "canary_router_labelled_predictions_total", outcome=o)
        for o in ("correct", "incorrect")
    }
    assert delta == {"correct": correct, "incorrect": 40 - correct}
    # One label per row, or none; a label the model cannot have; a value for a classifier.
    before = exposition(stack)
    short = predict(stack, {**byo.all_formats(rows)["dataframe_split"], "actual_label": labels[:39]}, status=400)
    assert "39 value(s) for 40 row(s)" in short["error"]
    outside = predict(stack, {**byo.all_formats(rows.iloc[:1])["instances"], "actual_label": 7}, status=400)
    assert "classes [0, 1]" in outside["error"]
    value = predict(stack, {**byo.all_formats(rows.iloc[:1])["instances"], "actual_value": 1.0}, status=400)
    assert "classifier" in value["error"]
    after = exposition(stack)
    for name in ("canary_router_requests_total", "canary_router_labelled_predictions_total"):
        assert total(after, name) == total(before, name), name  # the refusals counted nothing
    # A payload that does not fit the signature: 400 naming the column, no prediction counted.
    bad = byo.all_formats(rows.iloc[:1])["dataframe_records"]
    record = dict(bad["dataframe_records"][0])
    record["mean radius"] = "wide"
    before = exposition(stack)
    refused = predict(stack, {"dataframe_records": [record]}, status=400)
    assert "mean radius" in refused["error"], refused
    after = exposition(stack)
    assert total(after, "canary_router_requests_total", model="production") == total(
        before, "canary_router_requests_total", model="production"
    )


def test_string_labels_inline_and_late(stack):
    serve(stack, "keyword")
    frame = pd.DataFrame({"review": ["love it, great", "broken and awful", "great value"]})
    before = exposition(stack)
    answer = predict(
        stack, {**byo.all_formats(frame)["dataframe_split"], "actual_label": ["positive", "negative", "negative"]}
    )
    assert answer["predictions"] == ["positive", "negative", "positive"]
    after = exposition(stack)
    assert (
        total(after, "canary_router_labelled_predictions_total", outcome="correct")
        - total(before, "canary_router_labelled_predictions_total", outcome="correct")
        == 2
    )
    refused = predict(stack, {**byo.all_formats(frame.iloc[:1])["instances"], "actual_label": "meh"}, status=400)
    assert "['negative', 'positive']" in refused["error"]
    # Late, per row.
    plain = predict(stack, byo.all_formats(frame)["inputs_columns"])
    results = [
        requests.post(
            stack["url"] + "/feedback", json={"request_id": rid, "actual_label": "positive"}, timeout=10
        ).json()
        for rid in plain["request_ids"]
    ]
    assert [r["outcome"] for r in results] == ["correct", "incorrect", "correct"]
    # The lab's text shorthand reaches a model with one string input, in the lab's shape.
    lab = predict(stack, {"text": "great kettle", "actual_label": "positive"})
    assert lab["prediction"] == "positive" and "predictions" not in lab and lab["request_id"]


def test_params_reach_the_model(stack):
    serve(stack, "keyword")
    frame = pd.DataFrame({"review": ["great"]})
    assert predict(stack, byo.all_formats(frame)["dataframe_split"])["predictions"] == ["positive"]
    strict = predict(stack, {**byo.all_formats(frame)["dataframe_split"], "params": {"threshold": 5.0}})
    assert strict["predictions"] == ["negative"]


def test_a_missing_alias_is_not_found_on_a_real_mlflow(stack):
    """MLflow answers 400 INVALID_PARAMETER_VALUE for an alias no version has: read as NotFound, so
    a canary server of a model with no canary yet reports alias_missing (and stays healthy)."""
    from canary_common.registry import NotFound

    with pytest.raises(NotFound):
        RegistryClient(stack["mlflow"], MODEL, timeout=5).alias_version("no-such-alias")
