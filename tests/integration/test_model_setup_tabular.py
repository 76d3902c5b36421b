"""model_setup per MODEL_NAME against a real MLflow server: the breast-cancer demo (versions,
signatures, aliases, tags, idempotence), a user's own model left alone, an unknown name refused."""

import json
import os
import subprocess

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LinearRegression, LogisticRegression

import mlflow
from canary_common import demo_data
from canary_common.registry import RegistryClient, has_rollout_state
from support.byo_models import cancer_data, diabetes_data, mlflow_globals_restored
from support.models import setup_models
from support.procs import ROOT, python_cmd, start_mlflow

NAME = "breast-cancer"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("model-setup-tabular")
    proc, url = start_mlflow(log_dir)
    try:
        yield url, log_dir
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def breast_cancer(server):
    url, log_dir = server
    return url, log_dir, setup_models(url, log_dir, model_name=NAME)


def register_users_model(url: str, name: str, frame, target, estimator) -> str:
    """As a user would: log a fitted model with a signature, then point `production` at it."""
    model = estimator.fit(frame, target)
    with mlflow_globals_restored():
        mlflow.set_tracking_uri(url)
        mlflow.set_experiment("users-own")
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=name,
                signature=infer_signature(frame, model.predict(frame)),
                input_example=frame.head(2),
            )
    version = str(info.registered_model_version)
    MlflowClient(url).set_registered_model_alias(name, "production", version)
    return version


def run_setup(url: str, model_name: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MLFLOW_TRACKING_URI=url, MODEL_NAME=model_name, MLFLOW_WAIT_S="30")
    return subprocess.run(
        python_cmd("-m", "model_setup"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
    )


def test_three_versions_with_roles_tags_and_aliases(breast_cancer):
    url, _, _ = breast_cancer
    client = MlflowClient(url)
    versions = sorted(client.search_model_versions(f"name='{NAME}'"), key=lambda v: int(v.version))
    assert [v.version for v in versions] == ["1", "2", "3"]
    tags = {v.version: v.tags for v in versions}
    assert {v: t["role"] for v, t in tags.items()} == {"1": "baseline", "2": "improved", "3": "degraded"}
    for t in tags.values():
        assert t["canary.task"] == "classification" and json.loads(t["canary.classes"]) == [0, 1]
    accuracy = {v: float(t["heldout_accuracy"]) for v, t in tags.items()}
    print(f"\nbreast-cancer held-out accuracy by version: {accuracy}")
    assert accuracy["2"] >= accuracy["1"] > accuracy["3"] + 0.15
    state = RegistryClient(url, NAME).read_state()
    assert (state.production_version, state.canary_version) == ("1", "2")  # the demo rollout promotes
    assert (state.weight, state.mode, state.phase) == (20.0, "auto", "progressing")
    assert all(len(v.description) > 40 for v in versions)
    assert "Breast tumours" in client.get_registered_model(NAME).description


def test_versions_have_signatures_examples_and_score_the_held_out_rows(breast_cancer):
    url, _, _ = breast_cancer
    columns, rows, labels, _ = demo_data.held_out_rows(NAME)
    with mlflow_globals_restored():
        mlflow.set_tracking_uri(url)
        for version in ("1", "3"):
            info = mlflow.models.get_model_info(f"models:/{NAME}/{version}")
            assert info.signature.inputs.input_names() == columns
            assert info.saved_input_example_info is not None
            model = mlflow.pyfunc.load_model(f"models:/{NAME}/{version}")
            predicted = model.predict(pd.DataFrame(rows, columns=columns))
            tag = MlflowClient(url).get_model_version(NAME, version).tags["heldout_accuracy"]
            assert np.mean(np.asarray(predicted) == np.asarray(labels)) == pytest.approx(float(tag), abs=1e-4)
        run = MlflowClient(url).get_run(MlflowClient(url).get_model_version(NAME, "2").run_id)
        assert run.data.metrics["heldout_accuracy"] > 0.95
        assert {"estimator", "features", "n_features", "split_seed"} <= set(run.data.params)


def test_second_run_trains_nothing(breast_cancer):
    url, log_dir, _ = breast_cancer
    MlflowClient(url).delete_registered_model_alias(NAME, "canary")  # as after a rollback
    output = setup_models(url, log_dir, model_name=NAME)
    assert "already has 3 versions" in output and "registered breast-cancer version" not in output
    state = RegistryClient(url, NAME).read_state()
    assert state.production_version == "1" and state.canary_version is None  # not undone
    assert len(MlflowClient(url).search_model_versions(f"name='{NAME}'")) == 3


def test_a_users_own_model_is_left_alone(server):
    url, _ = server
    x, y = cancer_data()
    version = register_users_model(url, "their-model", x, y, LogisticRegression(max_iter=5000))
    result = run_setup(url, "their-model")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "using the registered model their-model as it is" in result.stderr
    client = MlflowClient(url)
    assert [v.version for v in client.search_model_versions("name='their-model'")] == [version]
    model = client.get_registered_model("their-model")
    assert dict(model.aliases) == {"production": version}
    assert not has_rollout_state(dict(model.tags or {}))  # no rollout state written either


def test_a_users_model_under_a_demos_name_is_left_alone_too(server):
    url, _ = server
    x, y = diabetes_data()
    version = register_users_model(url, "diabetes", x[["bmi", "bp"]], y, LinearRegression())
    result = run_setup(url, "diabetes")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "using the registered model diabetes as it is" in result.stderr
    assert [v.version for v in MlflowClient(url).search_model_versions("name='diabetes'")] == [version]


def test_an_unknown_model_name_fails_with_what_to_do(server):
    url, _ = server
    result = run_setup(url, "no-such-model")
    assert result.returncode == 2
    assert "MODEL_NAME='no-such-model' is not a bundled demo (sentiment, breast-cancer, diabetes)" in result.stderr
    assert "no registered model of that name" in result.stderr
    assert "registered_model_name='no-such-model'" in result.stderr and "'production'" in result.stderr
