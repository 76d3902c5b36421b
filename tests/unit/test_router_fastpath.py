"""The WSGI fast path for POST /predict, called with hand-made WSGI environs: bodies with and
without Content-Length (gunicorn decodes chunked requests and gives no length), the body limit,
and the JSON 500 for a bug. Nothing listens behind it: a parsed prediction ends in a 503."""

import io
import json

import pytest

from canary_router import create_app
from canary_router.config import Settings
from canary_router.datapath import predict

DEAD = "http://127.0.0.1:9"


@pytest.fixture()
def app():
    settings = Settings(
        production_url=DEAD, canary_url=DEAD, tracking_uri=DEAD, max_body_bytes=100, backend_timeout_s=0.5
    )
    app = create_app(settings)
    yield app
    app.extensions["canary_router"].follower.stop()


def call(app, body: bytes, length: str | None = "auto", path="/predict", method="POST", **headers):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "t",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    if length == "auto":
        environ["CONTENT_LENGTH"] = str(len(body))
    elif length is not None:
        environ["CONTENT_LENGTH"] = length
    environ.update({"HTTP_" + k.upper(): v for k, v in headers.items()})
    seen = {}

    def start_response(status, hdrs, exc_info=None):
        seen["status"], seen["headers"] = status, dict(hdrs)

    out = b"".join(app.wsgi_app(environ, start_response))
    return int(seen["status"].split()[0]), seen["headers"], json.loads(out)


def test_a_body_without_length_is_read_to_its_end(app):
    status, headers, body = call(app, b'{"text": "fine"}', length=None)
    assert status == 503 and "production model unavailable" in body["error"]  # parsed, then no backend
    assert headers["Content-Type"] == "application/json" and headers["X-Router-Worker"].isdigit()
    assert headers["X-Request-ID"] == body["request_id"]
    status, _, body = call(app, b'{"text": ', length=None)
    assert status == 400 and "not valid JSON" in body["error"]


def test_the_body_limit_holds_with_and_without_length(app):
    big = b'{"text": "' + b"x" * 200 + b'"}'
    for length in ("auto", None):
        status, _, body = call(app, big, length=length)
        assert status == 413 and "limit of 100 bytes (MAX_BODY_BYTES)" in body["error"]
    status, _, _ = call(app, b'{"text": "' + b"x" * 88 + b'"}')  # exactly 100 bytes
    assert status == 503


def test_a_bad_content_length_is_a_400(app):
    status, _, body = call(app, b"{}", length="ten")
    assert status == 400 and "Content-Length" in body["error"]


def test_a_client_request_id_is_echoed_and_an_empty_body_named(app):
    status, headers, body = call(app, b"", X_REQUEST_ID="abc-123")
    assert status == 400 and "empty" in body["error"]
    status, headers, body = call(app, b'{"text": "x"}', X_REQUEST_ID="abc-123")
    assert headers["X-Request-ID"] == "abc-123" == body["request_id"]


def test_a_bug_is_a_json_500_not_a_traceback(app, monkeypatch, caplog):
    def broken(*_):
        raise KeyError("oops")

    monkeypatch.setattr(predict, "serve", broken)
    status, _, body = call(app, b'{"text": "x"}')
    assert status == 500 and body == {"error": "internal error: KeyError"}
    assert "unhandled error on POST /predict" in caplog.text


def test_other_requests_go_to_flask(app):
    status, _, body = call(app, b"", path="/predict", method="GET")
    assert status == 405 and "POST" in body["error"]
    status, _, body = call(app, b"", path="/health", method="GET")
    assert status == 200 and body == {"status": "ok"}
