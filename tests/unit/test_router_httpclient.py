"""The router's keep-alive client against real sockets: a scripted TCP server in a thread answers
each request with the bytes a test gives it (the edge cases a real server produces rarely)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from canary_router.datapath import httpclient
from canary_router.datapath.httpclient import ConnectFailed, KeepAlivePool, ProtocolError, ReadTimeout

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class ScriptedServer:
    """Accepts connections; for each request read, sends the next answer of `answers`
    (bytes, or a callable taking the connection). Records connections and requests."""

    def __init__(self, answers, close_after_each=False):
        self.answers = list(answers)
        self.close_after_each = close_after_each
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        with conn:
            while self.answers:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, rest = buf.partition(b"\r\n\r\n")
                length = int(
                    [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")][
                        0
                    ]
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                buf = rest[length:]
                answer = self.answers.pop(0)
                if callable(answer):
                    answer(conn)
                else:
                    conn.sendall(answer)
                if self.close_after_each:
                    return

    def close_idle(self):
        """The server side of every connection goes away (a keep-alive timeout)."""
        for conn in self._open:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.sock.close()
        self.close_idle()


@pytest.fixture
def serve():
    servers = []

    def make(answers, **kw):
        server = ScriptedServer(answers, **kw)
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()


def pool(url, **kw):
    return KeepAlivePool(url, kw.pop("connect", 1.0), kw.pop("read", 1.0), **kw)


def test_keeps_the_connection_and_sends_a_well_formed_request(serve):
    server = serve([OK, OK, OK])
    p = pool(server.url + "/base/")
    for _ in range(3):
        resp = p.post_json("/predict", b'{"text": "x"}')
        assert (resp.status, resp.body) == (200, b"{}")
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /base/predict HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in first
    assert b"Content-Length: 13\r\n" in first and first.endswith(b'\r\n\r\n{"text": "x"}')


def test_a_connection_the_server_closed_while_idle_is_replaced_without_losing_the_request(serve, monkeypatch):
    server = serve([OK, OK])
    p = pool(server.url)
    p.post_json("/predict", b"{}")
    server.close_idle()
    time.sleep(0.05)
    # Checked before use (idle past the threshold) ...
    monkeypatch.setattr(httpclient, "CHECK_IDLE_AFTER_S", 0.0)
    assert p.post_json("/predict", b"{}").status == 200
    assert server.connections == 2 and len(server.requests) == 2


def test_a_close_that_races_the_request_is_retried_once_on_a_fresh_connection(serve):
    server = serve([OK, OK])
    p = pool(server.url)
    p.post_json("/predict", b"{}")
    server.close_idle()
    time.sleep(0.05)
    # ... or not checked (used just now): the EOF before any answer sends it once more.
    assert p.post_json("/predict", b"{}").status == 200
    assert server.connections == 2 and len(server.requests) == 2


def test_a_fresh_connection_closed_before_answering_is_an_error_not_a_retry(serve):
    server = serve([lambda conn: conn.shutdown(socket.SHUT_RDWR), OK])
    with pytest.raises(ProtocolError):
        pool(server.url).post_json("/predict", b"{}")
    assert len(server.requests) == 1


def test_chunked_answers_and_connection_close(serve):
    chunked = (
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3;ext=1\r\n:1}\r\n0\r\nX-Trailer: y\r\n\r\n'
    )
    closing = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    server = serve([chunked, closing, OK])
    p = pool(server.url)
    assert p.post_json("/predict", b"{}").body == b'{"a":1}'
    assert p.post_json("/predict", b"{}").status == 503
    assert p.post_json("/predict", b"{}").status == 200
    assert server.connections == 2  # the one after "Connection: close" is new


def test_an_answer_delimited_by_close(serve):
    server = serve([b'HTTP/1.0 200 OK\r\n\r\n{"b": 2}'], close_after_each=True)
    assert pool(server.url).post_json("/predict", b"{}").body == b'{"b": 2}'


@pytest.mark.parametrize(
    "answer, words",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", "cut off"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", "limit"),
        (b"SMTP ready\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "header"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "cut off"),
    ],
)
def test_malformed_answers_are_protocol_errors(serve, answer, words):
    def send_and_close(conn):
        try:
            conn.sendall(answer)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the client may give up (over the limit) before we are done

    server = serve([send_and_close])
    with pytest.raises(ProtocolError, match=words):
        pool(server.url, max_body_bytes=1000).post_json("/predict", b"{}")


def test_a_silent_server_times_out_and_the_connection_is_dropped(serve):
    server = serve([lambda conn: time.sleep(1.0), OK])
    p = pool(server.url, read=0.2)
    began = time.monotonic()
    with pytest.raises(ReadTimeout):
        p.post_json("/predict", b"{}")
    assert time.monotonic() - began < 0.9
    assert p._idle == []


def test_nobody_listening_is_a_connect_failure():
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ConnectFailed, match="refused"):
        pool(f"http://127.0.0.1:{port}").post_json("/predict", b"{}")


def test_only_plain_http_urls():
    with pytest.raises(ValueError, match="http://host:port"):
        KeepAlivePool("https://model:8443", 1, 1)


def echo_server():
    """Answers every request with its own body, on as many keep-alive connections as asked."""
    sock = socket.create_server(("127.0.0.1", 0))

    def serve_conn(conn):
        with conn:
            f = conn.makefile("rb")
            while f.readline():
                length = 0
                while (line := f.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length"):
                        length = int(line.split(b":")[1])
                body = f.read(length)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    def accept():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=serve_conn, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return sock


def test_threads_share_the_pool_without_mixing_answers():
    server = echo_server()
    p = pool(f"http://127.0.0.1:{server.getsockname()[1]}", max_idle=2)
    results = {}

    def call(i):
        results[i] = p.post_json("/predict", str(i).encode()).body

    threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    server.close()
    assert results == {i: str(i).encode() for i in range(40)}
    assert len(p._idle) <= 2  # the extra connections were closed, not hoarded
