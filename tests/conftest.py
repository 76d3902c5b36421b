"""Shared fixtures. The services are packages installed in the venv (`make venv`); `support` is
importable because pytest puts this folder (the rootdir conftest's) on the path."""

import pytest

from support import standin as standin_server


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
