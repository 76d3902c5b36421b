"""The OpenAPI description stays true to the app's routes (the fuzz test checks the answers)."""

import re

from canary_router import create_app
from canary_router.api.openapi import SPEC
from canary_router.config import Settings

DEAD = "http://127.0.0.1:9"


def _routes():
    app = create_app(Settings(production_url=DEAD, canary_url=DEAD, tracking_uri=DEAD))
    app.extensions["canary_router"].follower.stop()
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.defaults:  # '/set_canary/' etc.: the same handler, no value
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower()))
    return app, routes


def _normalise(path):
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_every_route_is_described_and_nothing_else():
    _, routes = _routes()
    described = {(_normalise(p), m) for p, ops in SPEC["paths"].items() for m in ops}
    assert {(_normalise(p), m) for p, m in routes} == described


def test_served_and_well_formed():
    app, _ = _routes()
    spec = app.test_client().get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (path, method)
            for param in op.get("parameters", []):
                if param["in"] == "path":
                    assert "{" + param["name"] + "}" in path
            # Admin operations declare the bearer token.
            if path not in ("/predict", "/feedback", "/feedback/owner") and method == "post":
                assert op.get("security") == [{"bearerAuth": []}], path
