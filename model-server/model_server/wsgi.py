"""Gunicorn entry point: one app per worker, built from the environment."""

from model_server.app import create_app

app = create_app()
