"""The fault suite's client (tests/support/openloop.py): its figures and its retry rule, against
real sockets on loopback."""

import socket
import threading
import time

from support import standin
from support.openloop import Client, Result, summary


def test_percentiles_are_nearest_rank_and_errors_are_counted_by_kind():
    results = [
        Result(scheduled=i, latency_s=(i + 1) / 1000, status=200, error=None, retries=0, arm="production")
        for i in range(100)
    ]
    results[0].error, results[1].error, results[2].retries = "http_503", "connection", 2
    s = summary(results)
    assert (s["p50_ms"], s["p99_ms"], s["max_ms"]) == (50.0, 99.0, 100.0)
    assert s["client_errors"] == 2 and s["errors_by_kind"] == {"http_503": 1, "connection": 1}
    assert s["retried"] == 1 and s["answered_by"] == {"production": 100}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_is_retried_until_the_deadline():
    client = Client(f"http://127.0.0.1:{_closed_port()}", deadline_s=0.5)
    started = time.monotonic()
    resp, error, retries = client.post("/predict", {}, scheduled=started)
    assert resp is None and error == "connection" and retries >= 2
    assert time.monotonic() - started < 1.0


def test_a_server_that_comes_up_within_the_deadline_answers_the_retried_request():
    port = _closed_port()
    up = []

    def serve_later():
        time.sleep(0.3)
        server = standin.start(port)
        server.expect_request("/predict", method="POST").respond_with_data("", status=503)  # an answer: not retried
        up.append(server)

    threading.Thread(target=serve_later, daemon=True).start()
    try:
        resp, error, retries = Client(f"http://127.0.0.1:{port}", deadline_s=3).post("/predict", {}, time.monotonic())
    finally:
        for server in up:
            standin.stop(server)
    assert error is None and resp.status_code == 503 and retries >= 1
