"""Whether the canary server serves the canary version, from its gauges: serving, still loading,
failed to load, or no gauges at all. A stand-in HTTP server answers Prometheus's query API here
(the real gauges, from real model servers and a real Prometheus, are in the integration suite)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from canary_controller.prometheus import PrometheusClient
from canary_controller.serving import FAILED, LOADING, SERVING, UNKNOWN, canary_serving


class StandIn:
    """Answers /api/v1/query with `answers[metric name]` (a list of (labels, value))."""

    def __init__(self):
        self.answers: dict[str, list] = {}
        self.queries: list[str] = []
        self.status = 200
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                query = parse_qs(urlparse(self.path).query)["query"][0]
                stand_in.queries.append(query)
                rows = next((v for k, v in stand_in.answers.items() if k in query), [])
                body = {
                    "status": "success",
                    "data": {
                        "resultType": "vector",
                        "result": [{"metric": labels, "value": [0, str(value)]} for labels, value in rows],
                    },
                }
                if stand_in.status != 200:
                    body = {"status": "error", "error": "stand-in failure"}
                data = json.dumps(body).encode()
                self.send_response(stand_in.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.client = PrometheusClient(f"http://127.0.0.1:{self.server.server_address[1]}", timeout=2)


@pytest.fixture
def prom():
    stand_in = StandIn()
    yield stand_in
    stand_in.server.shutdown()


def test_serving_loading_and_failed(prom):
    prom.answers = {"model_server_model_info": [({"version": "3"}, 1)]}
    assert canary_serving(prom.client, "3").status == SERVING
    still = canary_serving(prom.client, "4")
    assert still.status == LOADING and "serves version 3, not yet version 4" in still.detail
    prom.answers["model_server_model_load_error"] = [({"version": "4"}, 1)]
    failed = canary_serving(prom.client, "4")
    assert failed.status == FAILED and "could not load version 4" in failed.detail and "version 3" in failed.detail
    # Another version's load error is not this one's.
    assert canary_serving(prom.client, "3").status == SERVING
    assert all('alias="canary"' in q for q in prom.queries)


def test_no_gauges_or_no_prometheus_judge_as_before(prom):
    assert canary_serving(prom.client, "3").status == UNKNOWN
    prom.status = 500
    assert canary_serving(prom.client, "3").status == UNKNOWN


def test_labels_are_quoted():
    class Recorder:
        def __init__(self):
            self.queries = []

        def instant(self, query):
            self.queries.append(query)
            return []

    r = Recorder()
    canary_serving(r, "3", alias='we"ird')
    assert all('alias="we\\"ird"' in q for q in r.queries)
