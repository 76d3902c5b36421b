"""Serves one alias (production or canary) of a registered MLflow pyfunc model over HTTP."""

from model_server.app import create_app

__all__ = ["create_app"]
