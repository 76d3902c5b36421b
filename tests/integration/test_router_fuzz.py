"""Hardening: schemathesis fuzzes the router's own OpenAPI description, and a stopping replica
finishes its in-flight requests.

The router runs under real gunicorn against a real MLflow server. The model servers (and the
controller behind the admin calls) are STAND-INS (support/router_standins.py) so that the backends
stay up during fuzzing and the graceful-shutdown test can hold a request in a slow backend.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from support.procs import start_mlflow
from support.router_standins import StandInController, StandInModelServer, seed_registry, start_router

TOKEN = "fuzz-token"
FUZZ_TIME_S = int(os.environ.get("ROUTER_FUZZ_TIME_S", "45"))
FUZZ_EXAMPLES = int(os.environ.get("ROUTER_FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    logs = tmp_path_factory.mktemp("router-fuzz")
    mlflow, ml_url = start_mlflow(logs)
    servers = [
        StandInModelServer("production", "1").start(),
        StandInModelServer("canary", "2").start(),
        StandInController(ml_url).start(),
    ]
    try:
        seed_registry(ml_url, weight=20)
        yield {"mlflow": ml_url, "prod": servers[0], "canary": servers[1], "controller": servers[2], "logs": logs}
    finally:
        for s in servers:
            s.stop()
        mlflow.stop()


def test_schemathesis_finds_no_server_error_and_no_hang(lab):
    pytest.importorskip("schemathesis")
    proc, url = start_router(
        "router-fuzz",
        lab["logs"],
        mlflow_url=lab["mlflow"],
        production_url=lab["prod"].url,
        canary_url=lab["canary"].url,
        workers=2,
        ADMIN_TOKEN=TOKEN,
        ALLOW_FORCED_ROUTE=1,
        CONTROLLER_URL=lab["controller"].url,
        FEEDBACK_SECRET="fuzz",
        BACKEND_TIMEOUT_S=2,
    )
    report = lab["logs"] / "schemathesis-junit.xml"
    config = lab["logs"] / "schemathesis.toml"
    # A schema-valid /predict or /feedback may still be refused: one truth per row, of the kind the
    # model answers (a label for a classifier, a value for a regressor), and what the rows hold is
    # the model's signature's to judge; so there only, a 400 is not a failure.
    config.write_text(
        '[[operations]]\ninclude-path = ["/predict", "/feedback"]\n'
        '[operations.checks.positive_data_acceptance]\nexpected-statuses = ["2XX", "400", "401", "403", "404", "409", "410", "422", "429"]\n'
    )
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        url + "/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(FUZZ_EXAMPLES),
        "--max-time",
        str(FUZZ_TIME_S),
        "--request-timeout",
        "10",
        "--max-response-time",
        "5",
        "--seed",
        "4",
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--generation-allow-x00",
        "false",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        "--no-color",
    ]
    try:
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=FUZZ_TIME_S + 90, env=dict(os.environ, SCHEMATHESIS_HOOKS="")
        )
        output = result.stdout + result.stderr
        (lab["logs"] / "schemathesis.log").write_text(output)
        assert result.returncode == 0, output[-6000:]
        # Still answering after the fuzzing, and it never answered 500 (its own errors).
        assert requests.get(url + "/health", timeout=5).status_code == 200
        metrics = requests.get(url + "/metrics/prometheus", timeout=5).text
        assert 'canary_router_responses_total{code="500"}' not in metrics, output[-3000:]
    finally:
        proc.stop()


def test_sigterm_during_a_slow_request_still_answers_200(lab):
    """gunicorn's graceful stop: the replica stops accepting, finishes what is in flight."""
    slow = StandInModelServer("production", "1").start()
    slow.mode, slow.slow_s = "slow", 2.0
    proc, url = start_router(
        "router-graceful",
        lab["logs"],
        mlflow_url=lab["mlflow"],
        production_url=slow.url,
        canary_url=slow.url,
        workers=1,
        BACKEND_TIMEOUT_S=5,
        ROUTER_GRACEFUL_TIMEOUT_S=10,
    )
    result = {}

    def call():
        try:
            result["resp"] = requests.post(url + "/predict", json={"text": "good"}, timeout=15)
        except requests.RequestException as exc:
            result["error"] = exc

    try:
        thread = threading.Thread(target=call)
        thread.start()
        deadline = time.monotonic() + 5
        while slow.calls == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slow.calls == 1, "the request did not reach the backend"
        sent = time.monotonic()
        os.kill(proc.popen.pid, signal.SIGTERM)  # the gunicorn master, as `docker stop` does
        thread.join(15)
        assert "error" not in result, result
        assert result["resp"].status_code == 200 and result["resp"].json()["prediction"] == 1
        proc.popen.wait(15)
        assert time.monotonic() - sent < 12
        # Stopped: new connections are refused (nginx then tries the next replica).
        with pytest.raises(requests.ConnectionError):
            requests.get(url + "/health", timeout=2)
    finally:
        proc.stop()
        slow.stop()
