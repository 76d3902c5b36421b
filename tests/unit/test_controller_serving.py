"""Whether the canary server serves the canary version, from its gauges: serving, still loading,
failed to load, or no gauges at all. A stand-in HTTP server answers Prometheus's query API here
(the real gauges, from real model servers and a real Prometheus, are in the integration suite)."""

import json

import pytest
from werkzeug import Request, Response

from canary_controller.prometheus import PrometheusClient
from canary_controller.serving import FAILED, LOADING, SERVING, UNKNOWN, canary_serving


class StandInPrometheus:
    """Answers /api/v1/query with `answers[metric name]` (a list of (labels, value))."""

    def __init__(self, standin):
        self.answers: dict[str, list] = {}
        self.queries: list[str] = []
        self.status = 200
        standin.expect_request("/api/v1/query").respond_with_handler(self.answer)
        self.client = PrometheusClient(standin.url_for(""), timeout=2)

    def answer(self, request: Request) -> Response:
        query = request.args["query"]
        self.queries.append(query)
        rows = next((v for k, v in self.answers.items() if k in query), [])
        body = {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": m, "value": [0, str(v)]} for m, v in rows]},
        }
        if self.status != 200:
            body = {"status": "error", "error": "stand-in failure"}
        return Response(json.dumps(body), status=self.status, content_type="application/json")


@pytest.fixture
def prom(standin):
    return StandInPrometheus(standin)


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
