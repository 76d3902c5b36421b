"""The model server under real gunicorn (2 workers) against a real MLflow registry."""

import threading
import time

import pytest
import requests
from mlflow.tracking import MlflowClient

from support.models import setup_models, start_model_server
from support.procs import start_mlflow

CLEAR = {"wrong_rate": 0, "error_rate": 0, "latency_ms": 0}
TEXTS = [
    "The battery is not good.",
    "The screen wasn't bad at all.",
    "Excellent sound, highly recommend it.",
    "It stopped working after a week. Returning it.",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("model-server")
    mlflow_proc, mlflow_url = start_mlflow(log_dir)
    server = None
    try:
        setup_models(mlflow_url, log_dir)
        server, url = start_model_server(mlflow_url, "canary", log_dir, workers=2)
        yield mlflow_url, url
    finally:
        if server:
            server.stop()
        mlflow_proc.stop()


@pytest.fixture
def url(stack):
    yield stack[1]
    requests.post(stack[1] + "/faults", json=CLEAR, timeout=5)


def post(url, path, body=None, data=None):
    return requests.post(url + path, json=body, data=data, timeout=10)


def test_ready_health_and_predict(url):
    ready = requests.get(url + "/ready", timeout=5).json()
    assert ready["ready"] is True and ready["version"] == "2" and ready["alias"] == "canary"
    assert ready["classes"] == [0, 1]
    assert ready["task"] == "classification" and ready["task_source"] == "estimator"
    assert ready["text_input"] is True and ready["load_error"] is None
    assert requests.get(url + "/health", timeout=5).status_code == 200
    one = post(url, "/predict", {"text": TEXTS[0]}).json()
    assert one == {
        "prediction": 0,
        "version": "2",
        "model": "sentiment",
        "alias": "canary",
        "classes": [0, 1],
        "task": "classification",
    }
    many = post(url, "/predict", {"texts": TEXTS}).json()
    assert many["predictions"] == [0, 1, 1, 0]


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["text"], "data": [[t] for t in TEXTS]}},
        {"dataframe_records": [{"text": t} for t in TEXTS]},
        {"instances": TEXTS},
        {"inputs": {"text": TEXTS}},
    ],
)
def test_invocations(url, body):
    resp = post(url, "/invocations", body)
    assert resp.status_code == 200
    assert resp.json() == {
        "predictions": [0, 1, 1, 0],
        "version": "2",
        "model": "sentiment",
        "alias": "canary",
        "classes": [0, 1],
        "task": "classification",
    }


@pytest.mark.parametrize(
    "path, data, status",
    [
        ("/predict", b"{oops", 400),
        ("/predict", b'{"text": ""}', 400),
        ("/predict", b'{"text": 42}', 400),
        ("/predict", b'{"texts": []}', 400),
        ("/predict", b'{"texts": ' + str(["a"] * 257).replace("'", '"').encode() + b"}", 400),
        ("/predict", b'{"text": "' + b"x" * 70000 + b'"}', 413),
        ("/invocations", b'{"text": "good"}', 400),
        ("/invocations", b'{"dataframe_split": {"columns": ["review"], "data": [["good"]]}}', 400),
        ("/faults", b'{"wrong_rate": 2}', 400),
        ("/faults", b'{"latency_ms": 10001}', 400),
    ],
)
def test_bad_input_is_a_4xx_with_a_message(url, path, data, status):
    resp = requests.post(url + path, data=data, headers={"Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == status
    assert resp.json()["error"]


def test_faults_apply_to_every_worker(url):
    truth = post(url, "/predict", {"texts": TEXTS}).json()["predictions"]
    assert post(url, "/faults", {"wrong_rate": 1.0}).json()["wrong_rate"] == 1.0
    # A new connection per request, so both workers answer; go on until both have, 40 at least.
    pids = set()
    for i in range(200):
        text_index = i % len(TEXTS)
        resp = requests.post(url + "/predict", json={"text": TEXTS[text_index]}, timeout=10)
        assert resp.json()["prediction"] == 1 - truth[text_index], i
        pids.add(resp.headers["X-Worker-Pid"])
        if i >= 39 and len(pids) == 2:
            break
    assert len(pids) == 2
    post(url, "/faults", {"wrong_rate": 0, "error_rate": 1.0})
    for _ in range(20):
        resp = requests.post(url + "/predict", json={"text": TEXTS[0]}, timeout=10)
        assert resp.status_code == 500 and resp.json() == {"error": "injected fault"}
    post(url, "/faults", {"error_rate": 0, "latency_ms": 200})
    for _ in range(6):
        started = time.perf_counter()
        assert requests.post(url + "/predict", json={"text": TEXTS[0]}, timeout=10).status_code == 200
        assert time.perf_counter() - started >= 0.2
    assert requests.get(url + "/faults", timeout=5).json() == {
        "wrong_rate": 0.0,
        "error_rate": 0.0,
        "latency_ms": 200.0,
    }
    metrics = requests.get(url + "/metrics", timeout=5).text
    assert 'model_server_fault_setting{alias="canary",kind="latency_ms"} 200.0' in metrics


def test_metrics_use_the_contract_names(url):
    post(url, "/predict", {"text": TEXTS[0]})
    text = requests.get(url + "/metrics", timeout=5).text
    assert 'model_server_model_info{alias="canary",version="2"} 1.0' in text
    assert 'model_server_model_reloads_total{alias="canary",result="success"}' in text
    assert 'model_server_requests_total{alias="canary",endpoint="/predict",status="200",version="2"}' in text
    assert 'model_server_request_duration_seconds_bucket{alias="canary",endpoint="/predict",le="0.05"}' in text


def test_alias_move_is_followed_without_failed_requests(stack, url):
    client = MlflowClient(stack[0])
    answers, failures, stop = [], [], threading.Event()  # answers: (time, version, worker pid)

    def keep_sending():
        while not stop.is_set():
            try:  # a new connection each time, so every worker is exercised
                resp = requests.post(url + "/predict", json={"text": TEXTS[2]}, timeout=10)
                if resp.status_code == 200:
                    answers.append((time.monotonic(), resp.json()["version"], resp.headers["X-Worker-Pid"]))
                else:
                    failures.append((resp.status_code, resp.text))
            except requests.RequestException as exc:
                failures.append(repr(exc))

    def latest_by_worker(since):
        latest = {}
        for t, version, pid in list(answers):
            if t > since:
                latest[pid] = version
        return latest

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        time.sleep(0.5)
        moved = time.monotonic()
        client.set_registered_model_alias("sentiment", "canary", "3")
        deadline = moved + 15
        while time.monotonic() < deadline:  # until both workers answer with version 3
            latest = latest_by_worker(moved)
            if len(latest) == 2 and set(latest.values()) == {"3"}:
                break
            time.sleep(0.1)
        all_switched = time.monotonic()
        time.sleep(0.5)
    finally:
        stop.set()
        sender.join(15)
    try:
        assert not failures
        assert len(answers) > 20
        first_v3 = min((t for t, v, _ in answers if v == "3"), default=None)
        assert first_v3 is not None and first_v3 - moved < 5.0
        assert all_switched - moved < 6.0, latest_by_worker(moved)
        assert {v for t, v, _ in answers if t > all_switched} == {"3"}
        assert requests.get(url + "/ready", timeout=5).json()["version"] == "3"
    finally:
        client.set_registered_model_alias("sentiment", "canary", "2")
