"""One writer of the rollout state, in one atomic write: a real MLflow server and the real
controller under gunicorn. Its Prometheus is a closed port, so the control loop polls and holds
(it still writes where it needs no metrics: a promotion's end, a weight it adopts); the admin
calls are what the test fires."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from canary_common.registry import MODE_TAG, PHASE_TAG, REASON_TAG, STATE_TAG, WEIGHT_TAG, RegistryClient, StateConflict
from support.procs import ROOT, Proc, free_port, python_cmd, start_mlflow
from support.router_standins import seed_registry

TOKEN = "writer-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    logs = tmp_path_factory.mktemp("state-writer")
    mlflow, ml_url = start_mlflow(logs)
    port = free_port()
    env = {
        "PORT": str(port),
        "MLFLOW_TRACKING_URI": ml_url,
        "MODEL_NAME": "sentiment",
        "PROMETHEUS_URL": f"http://127.0.0.1:{free_port()}",
        "POLL_INTERVAL_S": "0.2",
        "SCRAPE_WAIT_S": "0.5",
        "ADMIN_TOKEN": TOKEN,
    }
    controller = None
    try:
        seed_registry(ml_url, weight=20)
        controller = Proc(
            "controller",
            python_cmd("-m", "gunicorn", "-c", str(ROOT / "controller/gunicorn.conf.py")),
            logs,
            env=env,
            cwd=ROOT / "controller",
        ).start()
        url = f"http://127.0.0.1:{port}"
        controller.wait_http(url + "/health", timeout=60)
        yield {"url": url, "registry": RegistryClient(ml_url), "mlflow": ml_url}
    finally:
        if controller is not None:
            controller.stop()
        mlflow.stop()


def test_concurrent_admin_calls_and_decisions_never_interleave(lab):
    registry = lab["registry"]
    seen, stop = [], threading.Event()

    def watch():  # a reader all along: every state it sees must be one that a writer wrote whole
        while not stop.is_set():
            seen.append(registry.read_state())

    def set_weight(i: int) -> dict:
        weight = 1 + i % 97
        body = {"weight": weight, "fresh": i % 5 == 0, "reason": f"test weight {weight}"}
        resp = requests.post(lab["url"] + "/weight", json=body, headers=AUTH, timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def roll_back(_: int) -> int:
        resp = requests.post(lab["url"] + "/rollback", headers=AUTH, timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.status_code

    before = registry.read_state().generation
    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        weights = pool.map(set_weight, range(48))
        rollbacks = pool.map(roll_back, range(8))
        answers, _ = list(weights), list(rollbacks)
    stop.set()
    reader.join(10)

    generations = [a["generation"] for a in answers]
    # Each call read and wrote under the controller's one lock: no two writes from the same base.
    assert len(set(generations)) == len(generations), sorted(generations)
    assert registry.read_state().generation >= before + 48 + 8
    for a in answers:
        assert a["canary_percentage"] > 0 and a["mode"] == "manual" and a["phase"] == "progressing", a
    assert len(seen) > 20
    for state in seen:  # the weight and its reason always come together, never a mix of two writes
        if state.reason.startswith("test weight "):
            assert state.reason == f"test weight {state.weight:g}", state
        elif "rolled back by hand" in state.reason:
            assert (state.weight, state.phase) == (0.0, "rolled_back"), state
    status = requests.get(lab["url"] + "/status", timeout=10).json()
    assert any(h["decision"] == "set_by_hand" for h in status["history"])


def test_a_write_based_on_a_stale_generation_is_refused(lab):
    mine, other = RegistryClient(lab["mlflow"]), RegistryClient(lab["mlflow"])
    base = mine.read_state()
    # Weight 0: the loop has nothing to adopt, so the other writer's state stays as written.
    written = other.write_state(weight=0, reason="test: another writer", expected_generation=base.generation)
    assert written.generation == base.generation + 1
    with pytest.raises(StateConflict):
        mine.write_state(weight=50, reason="test: stale", expected_generation=base.generation)
    now = mine.read_state()
    assert (now.weight, now.reason, now.generation) == (0.0, "test: another writer", written.generation)


def test_the_controller_answers_a_bad_weight_with_400(lab):
    for body in ({}, {"weight": 101}, {"weight": "x"}, {"weight": True}, {"weight": 5, "fresh": "yes"}):
        resp = requests.post(lab["url"] + "/weight", json=body, headers=AUTH, timeout=10)
        assert resp.status_code == 400 and "error" in resp.json(), (body, resp.text)
    assert requests.post(lab["url"] + "/weight", json={"weight": 5}, timeout=10).status_code == 401


def test_the_previous_release_tags_are_read_and_kept_in_step(lab):
    registry = lab["registry"]
    # A registry written by the previous release: separate tags, no state tag.
    requests.delete(
        lab["mlflow"] + "/api/2.0/mlflow/registered-models/delete-tag",
        json={"name": "sentiment", "key": STATE_TAG},
        timeout=10,
    ).raise_for_status()
    registry.set_model_tags({MODE_TAG: "manual", PHASE_TAG: "progressing", REASON_TAG: "old release", WEIGHT_TAG: "35"})
    old = registry.read_state()
    assert (old.weight, old.mode, old.phase, old.reason, old.generation) == (
        35.0,
        "manual",
        "progressing",
        "old release",
        0,
    )
    new = registry.write_state(weight=12, reason="test: first write of this release", expected_generation=0)
    tags = registry.read_state().tags
    assert new.generation == 1 and STATE_TAG in tags
    # Readers of the old tags still see the state (for one release).
    assert (tags[WEIGHT_TAG], tags[MODE_TAG], tags[PHASE_TAG]) == ("12", "manual", "progressing")
    assert tags[REASON_TAG] == "test: first write of this release"


def test_a_rollback_refused_as_stale_takes_its_reason_off_the_version(lab):
    from canary_controller.actions import ROLLBACK_REASON_TAG, Actions

    registry = RegistryClient(lab["mlflow"])
    stale = registry.read_state()
    registry.write_state(weight=0, reason="test: another writer first", expected_generation=stale.generation)
    with pytest.raises(StateConflict):
        Actions(registry).rollback(stale, "test: a rollback on a stale state")
    tags = {t["key"]: t["value"] for t in registry.get_version(stale.canary_version).get("tags", [])}
    assert ROLLBACK_REASON_TAG not in tags and registry.read_state().reason == "test: another writer first"
