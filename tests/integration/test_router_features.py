"""The router's features end to end: sticky keys, forced routes, late labels (/feedback) and shadow traffic.

All real processes: a real MLflow server, the real model servers (sentiment v1 production, v2
canary, trained by model_setup), two router replicas under real gunicorn (2 workers each) that
know each other (ROUTER_PEERS) and share FEEDBACK_SECRET. Replica A allows X-Canary-Route, B not.
The controller behind their admin calls is a STAND-IN without a control loop (StandInController).
"""

from __future__ import annotations

import re
import time

import pytest
import requests

from canary_common.registry import RegistryClient
from canary_router.labels.feedback import owner_of
from canary_router.labels.ids import IdSigner
from support.models import setup_models, start_model_server
from support.procs import free_port, start_mlflow
from support.router_standins import StandInController, start_router

TOKEN = "adm"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "test-feedback-secret"
TEXTS = [
    "a wonderful, moving film",
    "dull and far too long",
    "I loved every minute",
    "the worst plot ever",
    "not bad at all",
    "not good",
    "great acting but a weak story",
    "boring",
    "brilliant",
    "awful",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    logs = tmp_path_factory.mktemp("router-features")
    procs = []
    routers: dict = {}  # a test may restart a replica: the new process takes the old one's place here
    mlflow, ml_url = start_mlflow(logs)
    procs.append(mlflow)
    try:
        setup_models(ml_url, logs)
        for alias in ("production", "canary"):
            proc, url = start_model_server(ml_url, alias, logs, workers=1)
            procs.append(proc)
            if alias == "production":
                prod_url = url
            else:
                canary_url = url
        controller = StandInController(ml_url).start()
        procs.append(controller)
        port_a, port_b = free_port(), free_port()
        env = dict(
            mlflow_url=ml_url,
            production_url=prod_url,
            canary_url=canary_url,
            workers=2,
            CONTROLLER_URL=controller.url,
            ADMIN_TOKEN=TOKEN,
            FEEDBACK_SECRET=SECRET,
            STATE_POLL_S=0.5,
            ROUTER_PEERS=f"http://127.0.0.1:{port_a},http://127.0.0.1:{port_b}",
        )
        routers["a"], url_a = start_router("router-a", logs, port=port_a, ALLOW_FORCED_ROUTE=1, **env)
        routers["b"], url_b = start_router("router-b", logs, port=port_b, **env)
        yield {
            "a": url_a,
            "b": url_b,
            "procs": routers,
            "ports": {"a": port_a, "b": port_b},
            "env": env,
            "logs": logs,
            "prod": prod_url,
            "canary": canary_url,
            "registry": RegistryClient(ml_url),
        }
    finally:
        for p in [*routers.values(), *reversed(procs)]:
            p.stop()


def set_weight(lab, weight):
    requests.post(f"{lab['a']}/set_canary/{weight}", headers=AUTH, timeout=10).raise_for_status()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        seen = {
            float(requests.get(f"{lab[r]}/stats/local", timeout=5).headers["X-Router-Weight"])
            for r in ("a", "b")
            for _ in range(6)
        }
        if seen == {float(weight)}:
            return
        time.sleep(0.1)
    raise AssertionError(f"weight {weight} not applied everywhere: {seen}")


def local_counts(url):
    return requests.get(url + "/stats/local", timeout=5).json()["counts"]


def labelled_total(lab):
    return sum(v for r in ("a", "b") for k, v in local_counts(lab[r]).items() if k.startswith("lab|"))


def metric(url, name, **labels):
    """Sum of one metric's samples whose labels include `labels`."""
    total = 0.0
    for line in requests.get(url + "/metrics/prometheus", timeout=5).text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_sticky_keys_agree_across_replicas_and_only_move_to_the_canary(lab):
    set_weight(lab, 30)
    keys = [f"user-{i}" for i in range(60)]

    def arms(key_in):
        out = {}
        with requests.Session() as s:
            for i, key in enumerate(keys):
                url = lab["a" if i % 2 else "b"] + "/predict"
                if key_in == "header":
                    resp = s.post(url, json={"text": TEXTS[i % 10]}, headers={"X-Canary-Key": key}, timeout=10)
                else:
                    resp = s.post(url, json={"text": TEXTS[i % 10], "user_id": key}, timeout=10)
                assert resp.status_code == 200 and resp.headers["X-Canary-Assignment"] == "sticky", resp.text
                out[key] = resp.json()["model_version"]
        return out

    at30 = arms("header")
    # The other replica (and the body's user_id) gives every key the same arm.
    keys.reverse()
    assert arms("body") == at30
    assert 5 <= list(at30.values()).count("canary") <= 35
    set_weight(lab, 60)
    at60 = arms("header")
    moved_back = [k for k in keys if at30[k] == "canary" and at60[k] != "canary"]
    assert not moved_back, f"keys moved from the canary back to production: {moved_back}"
    assert list(at60.values()).count("canary") > list(at30.values()).count("canary")
    # No key: the seed's random split, said so in a header.
    resp = requests.post(lab["a"] + "/predict", json={"text": "fine"}, timeout=10)
    assert resp.headers["X-Canary-Assignment"] == "random"
    bad = requests.post(lab["a"] + "/predict", json={"text": "x", "user_id": [1]}, timeout=10)
    assert bad.status_code == 400 and "user_id" in bad.json()["error"]


def test_forced_route_is_counted_apart(lab):
    set_weight(lab, 0)
    before = local_counts(lab["a"])
    forced_before = metric(lab["a"], "canary_router_forced_requests_total", model="canary")
    for _ in range(5):
        resp = requests.post(
            lab["a"] + "/predict",
            json={"text": "fine", "actual_label": 1},
            headers={"X-Canary-Route": "canary"},
            timeout=10,
        )
        assert resp.status_code == 200 and resp.json()["model_version"] == "canary"
        assert resp.headers["X-Canary-Assignment"] == "forced"
    assert metric(lab["a"], "canary_router_forced_requests_total", model="canary") == forced_before + 5
    after = local_counts(lab["a"])
    analysed = lambda c: {k: v for k, v in c.items() if k.split("|")[0] in ("req", "lab", "cnt")}  # noqa: E731
    assert analysed(after) == analysed(before), "forced requests reached the analysed series"
    off = requests.post(lab["b"] + "/predict", json={"text": "fine"}, headers={"X-Canary-Route": "canary"}, timeout=10)
    assert off.status_code == 403 and "ALLOW_FORCED_ROUTE" in off.json()["error"]
    bad = requests.post(lab["a"] + "/predict", json={"text": "fine"}, headers={"X-Canary-Route": "both"}, timeout=10)
    assert bad.status_code == 400 and "X-Canary-Route" in bad.json()["error"]


def test_late_labels_across_replicas_and_a_restart(lab):
    set_weight(lab, 50)
    requests.post(lab["a"] + "/reset", headers=AUTH, timeout=10).raise_for_status()
    set_weight(lab, 50)
    peers = lab["env"]["ROUTER_PEERS"].split(",")
    owner_b = peers[1]
    issued = []
    with requests.Session() as s:
        for i in range(40):
            resp = s.post(
                lab["a" if i % 2 else "b"] + "/predict",
                json={"text": TEXTS[i % 10]},
                headers={"X-Request-ID": f"client-{i}"},
                timeout=10,
            )
            assert resp.status_code == 200
            assert resp.headers["X-Request-ID"] == f"client-{i}"  # the client's id is still echoed
            issued.append(resp.json())
    assert {b["model_version"] for b in issued} == {"production", "canary"}
    assert {owner_of(peers, b["request_id"]) for b in issued} == set(peers)

    expected: dict = {}
    with requests.Session() as s:
        for i, body in enumerate(issued):
            label = i % 2
            resp = s.post(
                lab["b" if i % 3 else "a"] + "/feedback",
                json={"request_id": body["request_id"], "actual_label": label},
                timeout=10,
            )
            assert resp.status_code == 200, resp.text
            got = resp.json()
            assert (got["model_version"], got["version"], got["prediction"]) == (
                body["model_version"],
                body["version"],
                body["prediction"],
            )
            outcome = "correct" if body["prediction"] == label else "incorrect"
            assert got["outcome"] == outcome
            key = f"lab|{body['model_version']}|{body['version']}|{outcome}"
            expected[key] = expected.get(key, 0) + 1
    merged: dict = {}
    for r in ("a", "b"):
        for k, v in local_counts(lab[r]).items():
            if k.startswith("lab|") and v:
                merged[k] = merged.get(k, 0) + v
    assert merged == expected

    # Replica B restarts: the ids it owns stay labelled; new ones are still taken.
    lab["procs"]["b"].stop()
    proc, url = start_router("router-b", lab["logs"], port=lab["ports"]["b"], **lab["env"])
    lab["procs"]["b"] = proc
    owned_by_b = [b for b in issued if owner_of(peers, b["request_id"]) == owner_b]
    for body in owned_by_b[:5]:
        for r in ("a", "b"):
            dup = requests.post(
                lab[r] + "/feedback", json={"request_id": body["request_id"], "actual_label": 1}, timeout=10
            )
            assert dup.status_code == 409 and "duplicate" in dup.json()["error"], dup.text
    fresh = requests.post(lab["a"] + "/predict", json={"text": "fine"}, timeout=10).json()
    ok = requests.post(lab["b"] + "/feedback", json={"request_id": fresh["request_id"], "actual_label": 1}, timeout=10)
    assert ok.status_code == 200, ok.text


def test_bad_feedback_gets_the_right_4xx_and_counts_nowhere(lab):
    good = requests.post(lab["a"] + "/predict", json={"text": "fine"}, timeout=10).json()["request_id"]
    inline = requests.post(lab["a"] + "/predict", json={"text": "fine", "actual_label": 1}, timeout=10).json()[
        "request_id"
    ]
    forced = requests.post(
        lab["a"] + "/predict", json={"text": "fine"}, headers={"X-Canary-Route": "production"}, timeout=10
    ).json()["request_id"]
    expired = IdSigner(SECRET, clock=lambda: time.time() - 200_000).issue("canary", "2", 1)
    forged = IdSigner("another-secret").issue("canary", "2", 1)
    body, mac = good.split(".")
    cases = [
        ({"request_id": "nonsense", "actual_label": 1}, 400, "not a router-issued id"),
        ({"request_id": 5, "actual_label": 1}, 400, "non-empty string"),
        ({"actual_label": 1}, 400, "'request_id' is missing"),
        ({"request_id": good}, 400, "exactly one of 'actual_label'"),
        ({"request_id": good, "actual_label": 1, "actual_value": 1.0}, 400, "exactly one of 'actual_label'"),
        ({"request_id": good, "actual_label": 1.5}, 400, "an integer or a string"),
        ({"request_id": good, "actual_label": "1"}, 400, "model's classes"),
        ({"request_id": good, "actual_value": 1.0}, 400, "came from a classifier"),
        ({"request_id": good, "actual_label": 7}, 400, "model's classes"),
        ({"request_id": forged, "actual_label": 1}, 403, "signature"),
        (
            {"request_id": body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac, "actual_label": 1},
            403,
            "signature",
        ),
        ({"request_id": expired, "actual_label": 1}, 410, "expired"),
        ({"request_id": inline, "actual_label": 1}, 409, "inline"),
        ({"request_id": forced, "actual_label": 1}, 403, "X-Canary-Route"),
    ]
    before = labelled_total(lab)
    for payload, status, words in cases:
        for r in ("a", "b"):
            resp = requests.post(lab[r] + "/feedback", json=payload, timeout=10)
            assert resp.status_code == status and words in resp.json()["error"], (payload, resp.text)
    for raw in (b"", b"{", b"[]", b"\xff"):
        resp = requests.post(lab["b"] + "/feedback", data=raw, headers={"Content-Type": "application/json"}, timeout=10)
        assert resp.status_code == 400 and "error" in resp.json()
    # The owner path is for replicas only.
    sneak = requests.post(lab["a"] + "/feedback/owner", json={"request_id": good, "actual_label": 1}, timeout=10)
    assert sneak.status_code == 403
    assert labelled_total(lab) == before
    first = requests.post(lab["b"] + "/feedback", json={"request_id": good, "actual_label": 1}, timeout=10)
    again = requests.post(lab["a"] + "/feedback", json={"request_id": good, "actual_label": 0}, timeout=10)
    assert (first.status_code, again.status_code) == (200, 409)
    assert labelled_total(lab) == before + 1


def test_shadow_changes_no_answer_and_exports_agreement(lab):
    set_weight(lab, 0)
    requests.post(lab["a"] + "/shadow/0", headers=AUTH, timeout=10).raise_for_status()

    def answers():
        with requests.Session() as s:
            out = []
            for i in range(30):
                resp = s.post(lab["a" if i % 2 else "b"] + "/predict", json={"text": TEXTS[i % 10]}, timeout=10)
                assert resp.status_code == 200
                body = resp.json()
                out.append((body["prediction"], body["model_version"], body["version"], sorted(body)))
            return out

    plain = answers()
    shadow_metric = lambda: sum(metric(lab[r], "canary_router_shadow_agreement_total") for r in ("a", "b"))  # noqa
    dropped = lambda: sum(metric(lab[r], "canary_router_shadow_dropped_total") for r in ("a", "b"))  # noqa
    before, dropped_before = shadow_metric(), dropped()
    canary_before = sum(v for r in ("a", "b") for k, v in local_counts(lab[r]).items() if k.startswith("req|canary"))
    on = requests.post(lab["b"] + "/shadow/100", headers=AUTH, timeout=10)
    assert on.status_code == 200 and on.json()["shadow_active"] is True, on.text
    time.sleep(1.2)  # every worker follows the tag within STATE_POLL_S
    assert answers() == plain
    deadline = time.monotonic() + 10
    while shadow_metric() + dropped() - before - dropped_before < 30 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert shadow_metric() + dropped() - before - dropped_before == 30
    assert shadow_metric() > before
    text = requests.get(lab["a"] + "/metrics/prometheus", timeout=5).text
    assert re.search(r'canary_router_shadow_agreement_total\{outcome="(agree|disagree)",version="2"\}', text)
    assert 'canary_router_shadow_duration_seconds_bucket{le="0.005",version="2"}' in text
    assert re.search(r'canary_router_predicted_class_total\{class="[01]",model="shadow",version="2"\}', text)
    assert re.search(r'canary_router_predicted_class_total\{class="[01]",model="production",version="1"\}', text)
    canary_after = sum(v for r in ("a", "b") for k, v in local_counts(lab[r]).items() if k.startswith("req|canary"))
    assert canary_after == canary_before, "shadow copies reached canary_router_requests_total"
    # With live canary traffic, shadow stands aside.
    set_weight(lab, 20)
    state = requests.get(lab["a"] + "/stats/local", timeout=5).json()["state"]
    assert state["shadow_percentage"] == 100 and state["shadow_active"] is False
    requests.post(lab["a"] + "/shadow/0", headers=AUTH, timeout=10).raise_for_status()
