"""The live rollout page for people: GET / (HTML) and GET /rollout.json (the data it polls).

The page is one self-contained file (static/rollout.html: inline CSS and vanilla JS, charts
drawn as inline SVG; nothing from a CDN, the machines have no internet), read once at import. It
needs no login: like /stats it is read-only. /rollout.json gathers what the page shows: the
model's name, the controller's /status and /timeline (fetched with a short timeout, in
parallel) and the fleet summary that /stats gives (per arm accuracy, or for regression models
the mean absolute error and labelled values). When the controller cannot be asked, it still
answers 200 with what the router knows, and "errors" says why the rest is missing.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from flask import Blueprint, Response, current_app, jsonify, request

from canary_router.api.errors import error
from canary_router.api.public import fleet_summary

bp = Blueprint("page", __name__)

PAGE_FILE = Path(__file__).resolve().parent / "static" / "rollout.html"
PAGE = PAGE_FILE.read_bytes()
CONTROLLER_FETCH_TIMEOUT_S = 2.0
# Not for the public: where the controller's configuration file lives on its machine.
PRIVATE_STATUS_KEYS = ("analysis_file",)


def _script_hashes(page: bytes) -> str:
    """CSP sources for the page's own inline scripts: only they run, nothing else is loaded."""
    scripts = re.findall(rb"<script>(.*?)</script>", page, flags=re.S)
    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in scripts)


CSP = (
    "default-src 'none'; "
    f"script-src {_script_hashes(PAGE)}; "
    "style-src 'unsafe-inline'; img-src data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _rt():
    return current_app.extensions["canary_router"]


@bp.get("/")
def rollout_page():
    resp = Response(PAGE, content_type="text/html; charset=utf-8")
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _get_json(url: str, timeout: float, params: dict | None = None) -> tuple[dict | None, str | None]:
    try:
        resp = requests.get(url, params=params, timeout=timeout)
    except requests.Timeout:
        return None, f"no answer within {timeout:g} s"
    except requests.RequestException as exc:
        return None, f"unreachable ({type(exc).__name__})"
    if resp.status_code != 200:
        return None, f"HTTP {resp.status_code}"
    try:
        body = resp.json()
    except ValueError:
        return None, "answered without JSON"
    if not isinstance(body, dict):
        return None, "answered JSON that is not an object"
    return body, None


@bp.get("/rollout.json")
def rollout_json():
    """{"generated_at", "model", "status", "timeline", "fleet", "errors"}; `model` is the registered
    model's name (MODEL_NAME), so the page never has to assume one; ?since=<epoch s> asks the
    controller's timeline only for the points after it."""
    settings = _rt().settings
    raw_since = request.args.get("since")
    since = None
    if raw_since is not None:
        try:
            since = float(raw_since)
        except ValueError:
            since = math.nan
        if not math.isfinite(since):
            return error(f"since must be a number of epoch seconds, got {raw_since[:40]!r}", 400)
    params = {"since": repr(since)} if since is not None else None
    errors: list[str] = []
    status = timeline = None
    base = settings.controller_url
    if not base:
        errors.append("controller: not configured (CONTROLLER_URL is empty); showing the router's view only")
        fleet = fleet_summary()
    else:
        timeout = CONTROLLER_FETCH_TIMEOUT_S
        if settings.controller_timeout_s > 0:
            timeout = min(timeout, settings.controller_timeout_s)
        with ThreadPoolExecutor(max_workers=2) as pool:
            asked_status = pool.submit(_get_json, base + "/status", timeout)
            asked_timeline = pool.submit(_get_json, base + "/timeline", timeout, params)
            fleet = fleet_summary()  # the replicas are asked meanwhile
            status, status_error = asked_status.result()
            timeline, timeline_error = asked_timeline.result()
        if status_error:
            errors.append(f"controller /status: {status_error}")
        if timeline_error:
            errors.append(f"controller /timeline: {timeline_error}")
    if status is not None:
        for key in PRIVATE_STATUS_KEYS:
            status.pop(key, None)
    resp = jsonify(
        {
            "generated_at": time.time(),
            "model": settings.model_name,
            "status": status,
            "timeline": timeline,
            "fleet": fleet,
            "errors": errors,
        }
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp
