"""The Flask app through its test client, with nothing listening behind it: every error is JSON
with the right status (no registry and no model servers are reachable here)."""

import pytest

from canary_router import create_app
from canary_router.config import Settings

DEAD = "http://127.0.0.1:9"  # discard port: connection refused at once


@pytest.fixture()
def client():
    settings = Settings(
        production_url=DEAD,
        canary_url=DEAD,
        tracking_uri=DEAD,
        admin_token="tok",
        max_body_bytes=1000,
        backend_timeout_s=0.5,
    )
    app = create_app(settings)
    yield app.test_client()
    app.extensions["canary_router"].follower.stop()


def test_unreachable_production_is_503_json(client):
    resp = client.post("/predict", json={"text": "hello"})
    assert resp.status_code == 503 and "production model unavailable" in resp.get_json()["error"]
    assert resp.headers["X-Request-ID"]


def test_json_errors(client):
    assert client.post("/predict", data=b"x" * 2000).status_code == 413
    assert "1000 bytes" in client.post("/predict", data=b"x" * 2000).get_json()["error"]
    assert client.get("/nothing").get_json()["error"] == "no such path: /nothing"
    resp = client.put("/predict")
    assert resp.status_code == 405 and "POST" in resp.get_json()["error"].split("allowed:")[1]
    assert client.post("/predict", data=b"{").status_code == 400


def test_admin_token(client):
    assert client.post("/set_canary/5").status_code == 401
    assert client.post("/set_canary/5", headers={"Authorization": "Basic tok"}).status_code == 401
    assert client.post("/set_canary/5", headers={"Authorization": "Bearer bad"}).status_code == 401
    bad = client.post("/set_canary/500", headers={"Authorization": "Bearer tok"})
    assert bad.status_code == 400 and "0 to 100" in bad.get_json()["error"]
    # No controller (the one writer of the rollout state): a 503 that says so, not a 500.
    down = client.post("/set_canary/5", headers={"Authorization": "Bearer tok"})
    assert down.status_code == 503 and "CONTROLLER_URL" in down.get_json()["error"]
    sim = client.post("/simulate_failure/1", headers={"Authorization": "Bearer tok"})
    assert sim.status_code == 503 and "canary model server" in sim.get_json()["error"]
    chk = client.post("/check_rollback", headers={"Authorization": "Bearer tok"})
    assert chk.status_code == 503 and "CONTROLLER_URL" in chk.get_json()["error"]


def test_health_ready_metrics(client):
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503 and "not read yet" in ready.get_json()["error"]
    text = client.get("/metrics/prometheus").get_data(as_text=True)
    assert "canary_router_fail_closed" in text
    # GET /metrics is the lab's JSON: numbers the lab's client can format, never null.
    lab = client.get("/metrics").get_json()
    assert set(lab) >= {"canary_percentage", "production", "canary"}
    for arm in ("production", "canary"):
        assert {k: type(lab[arm][k]) for k in ("requests", "accuracy", "avg_latency_ms")} == {
            "requests": int,
            "accuracy": int,
            "avg_latency_ms": int,
        }
    assert client.get("/stats").get_json()["production"]["requests"] >= 0
    assert client.get("/").status_code == 200
