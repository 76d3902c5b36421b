"""Read-only endpoints: /stats and /metrics (whole fleet), /stats/local (this replica), /health, /ready,
and the Prometheus exposition."""

from __future__ import annotations

import os

from flask import Blueprint, Response, current_app, jsonify

from canary_router import metrics
from canary_router.api import stats
from canary_router.control.fleet import fleet_counts

bp = Blueprint("public", __name__)


def _rt():
    return current_app.extensions["canary_router"]


def fleet_summary() -> dict:
    rt = _rt()
    counts, replicas = fleet_counts(rt.settings.router_peers, rt.settings.peer_timeout_s)
    state = rt.state_dict()
    tasks = {f"{arm}_task": getattr(rt.backends.profile(arm, None), "task", None) for arm in ("production", "canary")}
    summary = stats.summarize(counts, {**state, **tasks})
    summary["mode"] = state.get("mode")
    summary["phase"] = state.get("phase")
    summary["fail_closed"] = state.get("fail_closed")
    summary["replicas"] = replicas
    return summary


@bp.get("/stats")
def fleet_stats():
    return jsonify(fleet_summary())


@bp.get("/stats/local")
def local_stats():
    """This replica's counts since its last reset (all its workers), for /stats to sum."""
    rt = _rt()
    resp = jsonify({"pid": os.getpid(), "counts": stats.local_counts(), "state": rt.state_dict()})
    resp.headers["X-Router-Weight"] = f"{rt.follower.effective_weight():g}"
    return resp


@bp.get("/health")
def health():
    return jsonify({"status": "ok"})


@bp.get("/ready")
def ready():
    rt = _rt()
    body = {"ready": rt.follower.ready, **rt.state_dict()}
    if not rt.follower.ready:
        body["error"] = f"rollout state not read yet: {rt.follower.last_error or 'first read pending'}"
        return jsonify(body), 503
    return jsonify(body)


@bp.get("/metrics")
def lab_metrics():
    """The lab's GET /metrics: per arm requests, accuracy % and average latency, whole fleet."""
    return jsonify(stats.lab_metrics(fleet_summary()))


@bp.get(metrics.EXPOSITION_PATH)
def prometheus_metrics():
    """This replica's Prometheus exposition, scraped directly (never through the edge)."""
    payload, content_type = metrics.exposition()
    return Response(payload, content_type=content_type)
