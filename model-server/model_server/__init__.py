"""Serves one alias (production or canary) of the registered sentiment model over HTTP."""
from model_server.app import create_app

__all__ = ["create_app"]
