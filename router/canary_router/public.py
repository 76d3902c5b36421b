"""Read-only endpoints: /stats (whole fleet), /stats/local (this replica), /, /health, /ready, /metrics."""
from __future__ import annotations

import html
import os

from flask import Blueprint, Response, current_app, jsonify

from . import metrics, stats
from .fleet import fleet_counts

bp = Blueprint("public", __name__)


def _rt():
    return current_app.extensions["canary_router"]


def fleet_summary() -> dict:
    rt = _rt()
    counts, replicas = fleet_counts(rt.settings.router_peers)
    state = rt.state_dict()
    summary = stats.summarize(counts, state)
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
def prometheus_metrics():
    payload, content_type = metrics.exposition()
    return Response(payload, content_type=content_type)


@bp.get("/")
def status_page():
    s = fleet_summary()
    e = html.escape

    def cell(value):
        return e("-" if value is None else str(value))

    rows = "".join(
        f"<tr><td>{e(arm)}</td><td>{cell(s[arm]['version'])}</td><td>{cell(s[arm]['requests'])}</td>"
        f"<td>{cell(s[arm]['errors'])}</td><td>{cell(s[arm]['accuracy'])}</td>"
        f"<td>{cell(s[arm]['avg_latency_ms'])}</td><td>{cell(s[arm]['p95_latency_ms'])}</td></tr>"
        for arm in ("production", "canary"))
    warn = "<p class=warn>FAIL CLOSED: rollout state unconfirmed, all traffic to production</p>" \
        if s["fail_closed"] else ""
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Canary router</title><meta http-equiv="refresh" content="5">
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.3em .8em;border-bottom:1px solid #ccc}}
.warn{{color:#b00;font-weight:bold}}</style></head><body>
<h1>Canary router</h1>{warn}
<p>Canary weight: <b>{cell(s['canary_percentage'])} %</b> (observed {cell(s['observed_canary_percentage'])} %)
&middot; mode <b>{cell(s['mode'])}</b> &middot; phase <b>{cell(s['phase'])}</b>
&middot; replicas answering {cell(s['replicas']['answered'])}/{cell(s['replicas']['queried'])}</p>
<table><tr><th>model</th><th>version</th><th>requests</th><th>errors</th><th>accuracy %</th>
<th>avg ms</th><th>p95 ms</th></tr>{rows}</table>
<p>Fallbacks to production: {cell(s['totals']['fallbacks'])} &middot; <a href="/stats">/stats</a> JSON</p>
</body></html>"""
    return Response(page, content_type="text/html; charset=utf-8")
