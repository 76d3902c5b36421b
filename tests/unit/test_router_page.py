"""The live rollout page's blueprint: GET / is the self-contained HTML page, GET /rollout.json
what it polls, answering 200 with "errors" when the controller cannot be asked. The page
drawing real data in a browser is tested in tests/integration/test_live_page.py."""

import re

import pytest

from canary_router import create_app
from canary_router.config import Settings

DEAD = "http://127.0.0.1:9"  # discard port: connection refused at once


def make_client(**overrides):
    settings = Settings(production_url=DEAD, canary_url=DEAD, tracking_uri=DEAD, **overrides)
    app = create_app(settings)
    return app, app.test_client()


@pytest.fixture()
def client():
    app, c = make_client(controller_url=DEAD)
    yield c
    app.extensions["canary_router"].follower.stop()


def test_page_is_self_contained_html_with_the_chart_containers(client):
    resp = client.get("/")
    assert resp.status_code == 200
    assert resp.content_type == "text/html; charset=utf-8"
    html = resp.get_data(as_text=True)
    for marker in (
        'id="weight-chart"',
        'id="metrics"',
        'id="decision-log"',
        'id="versions"',
        'id="status-badge"',
        'id="note"',
        'id="rollback-box"',
        "metric-chart",
        "rollout.json",
    ):
        assert marker in html, marker
    # Nothing from elsewhere: no CDN, fonts or scripts by URL (the machines have no internet).
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(http" not in html
    # Data goes in as text, never as markup.
    assert "innerHTML" not in html and "insertAdjacentHTML" not in html and "document.write" not in html
    # Only the page's own inline script may run (its hash), and it may only call back home.
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "'sha256-" in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert client.head("/").status_code == 200


def test_rollout_json_says_why_when_the_controller_is_unreachable(client):
    resp = client.get("/rollout.json")
    assert resp.status_code == 200 and resp.content_type == "application/json"
    body = resp.get_json()
    assert set(body) == {"generated_at", "model", "status", "timeline", "fleet", "errors"}
    assert body["model"] == "sentiment"  # the default MODEL_NAME
    assert body["status"] is None and body["timeline"] is None
    assert any("controller /status" in e and "unreachable" in e for e in body["errors"])
    assert any("controller /timeline" in e for e in body["errors"])
    # What the router knows is still there.
    assert body["fleet"]["production"]["requests"] == 0 and "canary_percentage" in body["fleet"]


def test_rollout_json_without_a_controller_configured():
    app, c = make_client()
    try:
        body = c.get("/rollout.json").get_json()
        assert body["errors"] == [
            "controller: not configured (CONTROLLER_URL is empty); showing the router's view only"
        ]
    finally:
        app.extensions["canary_router"].follower.stop()


def test_rollout_json_names_any_model_and_has_the_regression_fields():
    app, c = make_client(model_name="house-prices")
    try:
        body = c.get("/rollout.json").get_json()
        assert body["model"] == "house-prices"
        for arm in ("production", "canary"):  # the /stats summary per arm (canary_router.api.stats)
            assert {"task", "labelled_values", "mae", "accuracy"} <= set(body["fleet"][arm]), body["fleet"][arm]
    finally:
        app.extensions["canary_router"].follower.stop()


def test_page_knows_the_regression_kinds_and_names_no_model():
    html = make_page_text()
    # The header shows whatever model rollout.json names; nothing assumes one.
    assert 'id="model-name"' in html and "data.model" in html
    assert "sentiment" not in html.lower()
    # Both regression kinds of the analysis have their own words (not the threshold-mode fallback).
    for kind in ("within_tolerance", "mae"):
        assert f'kind === "{kind}"' in html, kind
    assert "Mean absolute error" in html and "Share within tolerance" in html
    assert "mean absolute error" in html and "labelled values" in html  # the router counts table


def make_page_text() -> str:
    app, c = make_client()
    try:
        return c.get("/").get_data(as_text=True)
    finally:
        app.extensions["canary_router"].follower.stop()


def test_rollout_json_passes_the_controllers_status_and_timeline_on(standin):
    status = {"phase": "progressing", "canary_percentage": 10, "analysis_file": "/etc/secret.yaml", "history": []}
    timeline = {"points": [{"at": 5.0, "weight": 10, "metrics": None}], "history": [], "started_at": 1}
    standin.expect_request("/status").respond_with_json(status)
    standin.expect_request("/timeline").respond_with_json(timeline)
    app, c = make_client(controller_url=standin.url_for("").rstrip("/"))

    def asked() -> list[str]:  # the controller paths the router asked, with their queries
        return [r.full_path.rstrip("?") for r, _ in standin.log]

    try:
        body = c.get("/rollout.json?since=4.5").get_json()
        assert body["errors"] == []
        assert body["status"]["phase"] == "progressing" and "analysis_file" not in body["status"]
        assert body["timeline"]["points"][0]["weight"] == 10
        assert "/timeline?since=4.5" in asked()
        before = len(asked())
        for bad in ("nonsense", "null", "nan", "inf"):
            resp = c.get(f"/rollout.json?since={bad}")
            assert resp.status_code == 400 and "since must be a number" in resp.get_json()["error"], bad
        assert len(asked()) == before  # a bad query asks the controller nothing
        c.get("/rollout.json")
        assert [p for p in asked() if p.startswith("/timeline")][-1] == "/timeline"
    finally:
        app.extensions["canary_router"].follower.stop()
