"""The canary router: splits /predict between the production and canary model servers."""

from __future__ import annotations

import os

from flask import Flask

from canary_router import metrics
from canary_router.api import errors, openapi, page, public
from canary_router.config import Settings
from canary_router.control import admin
from canary_router.datapath import fastpath
from canary_router.labels import feedback
from canary_router.runtime import Runtime


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    rt = Runtime(settings)
    app.extensions["canary_router"] = rt

    app.register_blueprint(fastpath.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(page.bp)
    app.register_blueprint(feedback.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(admin.bp)
    errors.install(app)

    @app.before_request
    def follow_state():
        # Lazily, in case the server did not call the post-fork hook (flask run, tests).
        rt.start()

    @app.after_request
    def count_response(resp):
        metrics.RESPONSES.labels(str(resp.status_code)).inc()
        resp.headers["X-Router-Worker"] = str(os.getpid())
        return resp

    # Predictions skip Flask altogether (see fastpath.py); everything else goes through it.
    app.wsgi_app = fastpath.PredictFastPath(app.wsgi_app, rt, settings.max_body_bytes)
    return app
