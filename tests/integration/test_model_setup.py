"""model_setup against a real MLflow server: versions, aliases, runs, tags, idempotence."""

import os
import subprocess

import pytest
from mlflow.tracking import MlflowClient

import mlflow
from canary_common.registry import RegistryClient
from support.models import setup_models
from support.procs import ROOT, python_cmd, start_mlflow

BANDS = {"1": (0.84, 0.89), "2": (0.92, 0.95), "3": (0.65, 0.78)}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("model-setup")
    proc, url = start_mlflow(log_dir)
    try:
        setup_models(url, log_dir)
        yield url, log_dir
    finally:
        proc.stop()


def test_three_versions_with_roles_descriptions_and_aliases(registry):
    url, _ = registry
    client = RegistryClient(url, "sentiment")
    versions = client.list_versions()
    assert [v["version"] for v in versions] == ["1", "2", "3"]
    roles = {v["version"]: {t["key"]: t["value"] for t in v.get("tags", [])}["role"] for v in versions}
    assert roles == {"1": "baseline", "2": "improved", "3": "degraded"}
    assert all(len(v.get("description", "")) > 40 for v in versions)
    state = client.read_state()
    assert (state.production_version, state.canary_version) == ("1", "2")
    assert (state.weight, state.mode, state.phase, state.reason) == (20.0, "auto", "progressing", "initial setup")


def test_runs_log_accuracy_params_signature_and_example(registry):
    url, _ = registry
    client = MlflowClient(url)
    mlflow.set_tracking_uri(url)
    for version, (low, high) in BANDS.items():
        mv = client.get_model_version("sentiment", version)
        run = client.get_run(mv.run_id)
        accuracy = run.data.metrics["heldout_accuracy"]
        assert low <= accuracy <= high, (version, accuracy)
        assert {"features", "train_rows", "label_flip_rate", "C"} <= set(run.data.params)
        info = mlflow.models.get_model_info(f"models:/sentiment/{version}")
        assert info.signature.inputs.input_names() == ["text"]
        assert info.saved_input_example_info is not None


def test_second_run_adds_nothing_and_keeps_the_rollout_state(registry):
    url, log_dir = registry
    client = RegistryClient(url, "sentiment")
    client.write_state(weight=50, mode="manual", phase="progressing", reason="test changed it")
    mlflow_client = MlflowClient(url)
    mlflow_client.delete_registered_model_alias("sentiment", "canary")  # as after a rollback
    mlflow_client.delete_registered_model_alias("sentiment", "production")  # lost: must come back
    output = setup_models(url, log_dir)
    assert "already has 3 versions" in output
    assert [v["version"] for v in client.list_versions()] == ["1", "2", "3"]
    state = client.read_state()
    assert state.production_version == "1" and state.canary_version is None
    assert (state.weight, state.mode) == (0.0, "manual")  # 0: read_state reports no canary
    assert state.tags["canary.weight"] == "50"
    client.set_alias("canary", "2")


def test_unreachable_server_fails_with_a_message(tmp_path):
    env = dict(os.environ, MLFLOW_TRACKING_URI="http://127.0.0.1:9", MLFLOW_WAIT_S="2")
    result = subprocess.run(
        python_cmd("-m", "model_setup"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "did not answer within 2s" in result.stderr
    env["MLFLOW_TRACKING_URI"] = "file:///tmp/x"
    result = subprocess.run(
        python_cmd("-m", "model_setup"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "must be the http(s) URL" in result.stderr
