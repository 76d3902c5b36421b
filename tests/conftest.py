"""Puts every service's source folder on sys.path, as the images' PYTHONPATH does."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for folder in ("common", "mlflow", "model-server", "router", "controller", "loadgen", "canaryctl", "tests"):
    path = str(ROOT / folder)
    if path not in sys.path:
        sys.path.insert(0, path)

from support import standin as standin_server  # noqa: E402  (tests/ is on sys.path from here)


@pytest.fixture
def standin():
    """One stand-in HTTP server for this test (support/standin.py)."""
    server = standin_server.start()
    yield server
    standin_server.stop(server)


@pytest.fixture
def standins():
    """Make as many stand-in servers as the test needs (router replicas, say); all stopped after."""
    made = []

    def make():
        made.append(standin_server.start())
        return made[-1]

    yield make
    for server in made:
        standin_server.stop(server)
