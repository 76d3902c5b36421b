"""A tripwire for the router's own gunicorn worker (router/canary_router/datapath/worker.py): it leans on
gunicorn internals that are not a public API. When the pinned gunicorn changes, this fails first
and names what to re-check; the worker's behaviour itself is tested against real gunicorn in
tests/integration/test_router_worker.py."""

import inspect
import re

import gunicorn
from gunicorn import http, util
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.workers import base

from support.procs import ROOT

CHECKED_WITH = "26.2.0"  # the gunicorn version worker.py was last read against


def test_the_pinned_gunicorn_is_the_one_the_worker_was_checked_against():
    pinned = re.search(r"^gunicorn==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M).group(1)
    assert gunicorn.__version__ == pinned == CHECKED_WITH, (
        f"gunicorn {gunicorn.__version__} (lock: {pinned}): re-read router/canary_router/datapath/worker.py against it "
        "(every name this test checks), then set CHECKED_WITH"
    )


def test_the_internals_the_worker_calls_have_the_shapes_it_expects():
    assert list(inspect.signature(wsgi.create).parameters)[:5] == ["req", "sock", "client", "server", "cfg"]
    assert list(inspect.signature(http.get_parser).parameters)[:1] == ["cfg"]
    assert callable(util.close_graceful) and callable(util.reraise)
    for name in (
        "ParseException",
        "NoMoreData",
        "LimitRequestHeaders",
        "ExpectationFailed",
        "UnsupportedTransferCoding",
    ):
        assert isinstance(getattr(http.errors, name), type), name
    for name in ("init_process", "notify", "handle_error", "run"):
        assert callable(getattr(base.Worker, name)), name
    cfg = Config()
    for name in ("is_ssl", "worker_connections", "graceful_timeout", "keepalive", "pre_request", "post_request"):
        assert hasattr(cfg, name), name
