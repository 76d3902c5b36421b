"""The evidence tagged on a version stays valid JSON within MLflow's cap, however many metrics."""

import json

from canary_controller.actions import TAG_MAX_CHARS, _evidence_tag


def metric(i: int) -> dict:
    return {
        "name": f"m{i}",
        "kind": "mae",
        "p": {"canary": 0.8, "production": 0.81},
        "g_hat": -0.01,
        "bounds": {"lower": -0.05, "upper": 0.03},
        "rollback": i == 0,
        "explanation": "x" * 400,
        "since": {"at": 1.0, "n": {"canary": 10}},
        "regression": {"clip": 250.0, "measure": "y" * 200, "clipped_mae": {"canary": 50.0}},
    }


def test_small_evidence_is_kept_whole():
    evidence = {"decision": "hold", "summary": "ok", "metrics": [metric(0)], "guards": []}
    assert json.loads(_evidence_tag(evidence)) == evidence


def test_large_evidence_is_compacted_not_cut():
    evidence = {
        "decision": "rollback",
        "summary": "Roll back: m0 is worse.",
        "detector": "from_start",
        "metrics": [metric(i) for i in range(8)],
        "guards": [{"name": "sample_ratio", "fired": False, "log_bf": 0.1, "explanation": "z" * 300}],
    }
    text = _evidence_tag(evidence)
    assert len(text) <= TAG_MAX_CHARS
    tag = json.loads(text)
    assert tag["compacted"] and tag["decision"] == "rollback" and tag["metrics"][0]["rollback"] is True
    assert tag["metrics"][0]["regression"] == {"clip": 250.0, "clipped_mae": {"canary": 50.0}}
    huge = dict(evidence, metrics=[metric(i) for i in range(60)], summary="s" * 9000)
    assert len(_evidence_tag(huge)) <= TAG_MAX_CHARS and json.loads(_evidence_tag(huge))["decision"] == "rollback"
