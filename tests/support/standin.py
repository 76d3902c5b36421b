"""The tests' one stand-in HTTP server (pytest-httpserver, threaded, on loopback), for a service
that cannot be the real one in the test at hand: a Prometheus query API, an exporter, a webhook
receiver, a controller, router replicas behind nginx. Threaded, so a handler that hangs does not
hold up other requests. A test says what it answers with
`server.expect_request(path).respond_with_handler(...)`; `server.log` keeps what it was sent.
Fixtures `standin` (one per test) and `standins` (a factory) are in tests/conftest.py.
"""

from __future__ import annotations

import re

from pytest_httpserver import HTTPServer

ANY_PATH = re.compile(".*")


def start(port: int = 0) -> HTTPServer:
    server = HTTPServer(host="127.0.0.1", port=port, threaded=True)
    server.start()
    return server


def address(server: HTTPServer) -> str:
    """host:port, as a scrape target or an upstream is written."""
    return f"{server.host}:{server.port}"


def stop(server: HTTPServer) -> None:
    server.clear()
    if server.is_running():
        server.stop()
