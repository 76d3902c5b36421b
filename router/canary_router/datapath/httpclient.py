"""A small HTTP/1.1 keep-alive client for the prediction path.

Why not urllib3: profiling the router under load put over a third of its CPU in urllib3 and
http.client (request preparation, URL parsing, email-based header parsing). The router only ever
POSTs JSON to its own model servers, so a client that writes each request in one send and reads
the status, Content-Length or chunked body of the answer is enough, and several times cheaper.

One pool per server, shared by a worker's threads: each connection serves one request at a time,
at most `max_idle` wait between requests. A kept connection the server has since closed (its
keep-alive ran out) is noticed before use, or, if it closes while we write, the request goes once
more on a fresh connection: nothing of it was answered, so nothing is counted twice.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEADER_LINE = 65536
MAX_HEADERS = 100


class HTTPFailure(Exception):
    """The exchange failed; the subclasses say how."""


class ConnectFailed(HTTPFailure):
    """No connection: refused, unreachable, or the connect timed out."""


class ReadTimeout(HTTPFailure):
    """Connected, but the server did not answer in time."""


class ProtocolError(HTTPFailure):
    """The answer was cut off or is not HTTP we understand."""


class _NoAnswer(ProtocolError):
    """The connection closed before a single byte of the answer: on a kept connection this is
    the server's keep-alive timeout, not a failed request."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


# A connection used this recently is taken as it is (servers keep idle connections for seconds:
# gunicorn 2 s by default, the model server 5 s); older ones are checked first. A close that
# races us anyway is caught by the one retry on a fresh connection.
CHECK_IDLE_AFTER_S = 1.0


class _Connection:
    __slots__ = ("sock", "file", "used_at")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.file = sock.makefile("rb", buffering=65536)
        self.used_at = 0.0

    def dropped(self) -> bool:
        """True if the server closed it (or sent something unasked) while it sat idle: an idle
        HTTP connection has nothing to read. (poll, not recv: a socket with a timeout would wait.)"""
        if time.monotonic() - self.used_at < CHECK_IDLE_AFTER_S:
            return False
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))

    def close(self) -> None:
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass


class KeepAlivePool:
    def __init__(
        self,
        base_url: str,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_idle: int = 4,
        max_body_bytes: int = 1 << 20,
    ):
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"a model server URL must look like http://host:port, got {base_url!r}")
        self.address = (parts.hostname, parts.port or 80)
        self.prefix = parts.path.rstrip("/")
        netloc = parts.netloc.rpartition("@")[2]
        self._host = netloc.encode("ascii") if netloc.isascii() else netloc.encode("idna")
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.max_idle = max(1, max_idle)
        self.max_body_bytes = max_body_bytes
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def post_json(self, path: str, body: bytes) -> Response:
        head = (
            b"POST "
            + (self.prefix + path).encode("ascii")
            + b" HTTP/1.1\r\nHost: "
            + self._host
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode("ascii")
            + b"\r\n\r\n"
        )
        request = head + body
        conn, reused = self._take()
        try:
            return self._exchange(conn, request)
        except _NoAnswer:
            if not reused:
                raise
        # The kept connection had gone stale under us: once more on a fresh one.
        conn, _ = self._take(fresh=True)
        return self._exchange(conn, request)

    # -- plumbing ---------------------------------------------------------------------------
    def _take(self, fresh: bool = False) -> tuple[_Connection, bool]:
        while not fresh:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                break
            if not conn.dropped():
                return conn, True
            conn.close()
        try:
            sock = socket.create_connection(self.address, timeout=self.connect_timeout_s)
        except TimeoutError:
            raise ConnectFailed(f"connect to {self.address[0]}:{self.address[1]} timed out") from None
        except OSError as exc:
            raise ConnectFailed(f"connect to {self.address[0]}:{self.address[1]}: {exc.strerror or exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.read_timeout_s)
        return _Connection(sock), False

    def _give_back(self, conn: _Connection) -> None:
        conn.used_at = time.monotonic()
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def _exchange(self, conn: _Connection, request: bytes) -> Response:
        try:
            try:
                conn.sock.sendall(request)
                status_line = conn.file.readline(MAX_HEADER_LINE + 1)
            except (ConnectionResetError, BrokenPipeError):
                raise _NoAnswer("the connection closed before an answer") from None
            if not status_line:
                raise _NoAnswer("the connection closed before an answer")
            status, keep_alive, body = self._read_rest(conn.file, status_line)
        except TimeoutError:
            conn.close()
            raise ReadTimeout(f"no answer within {self.read_timeout_s:g}s") from None
        except HTTPFailure:
            conn.close()
            raise
        except OSError as exc:
            conn.close()
            raise ProtocolError(f"connection failed mid-answer: {exc.strerror or exc}") from None
        if keep_alive:
            self._give_back(conn)
        else:
            conn.close()
        return Response(status, body)

    def _read_rest(self, f, status_line: bytes) -> tuple[int, bool, bytes]:
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP status line: {status_line[:80]!r}")
        status = int(parts[1])
        length = None
        chunked = False
        close = parts[0] != b"HTTP/1.1"
        for _ in range(MAX_HEADERS + 1):
            line = f.readline(MAX_HEADER_LINE + 1)
            if line in (b"\r\n", b"\n"):
                break
            if not line or not line.endswith(b"\n"):
                raise ProtocolError("the answer's headers were cut off")
            name, sep, value = line.partition(b":")
            if not sep:
                raise ProtocolError(f"not a header line: {line[:80]!r}")
            name = name.strip().lower()
            if name == b"content-length":
                if not value.strip().isdigit():
                    raise ProtocolError(f"bad Content-Length: {value.strip()[:40]!r}")
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = close or b"close" in value.lower()
        else:
            raise ProtocolError(f"more than {MAX_HEADERS} header lines")
        if status in (204, 304) or 100 <= status < 200:
            return status, not close, b""
        if chunked:
            return status, not close, self._read_chunked(f)
        if length is not None:
            if length > self.max_body_bytes:
                raise ProtocolError(f"answer of {length} bytes is over the {self.max_body_bytes}-byte limit")
            body = f.read(length)
            if len(body) != length:
                raise ProtocolError("the answer's body was cut off")
            return status, not close, body
        body = f.read(self.max_body_bytes + 1)  # delimited by the close
        if len(body) > self.max_body_bytes:
            raise ProtocolError(f"answer is over the {self.max_body_bytes}-byte limit")
        return status, False, body

    def _read_chunked(self, f) -> bytes:
        out = bytearray()
        while True:
            line = f.readline(MAX_HEADER_LINE + 1)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size: {size_text[:40]!r}") from None
            if size == 0:
                for _ in range(MAX_HEADERS + 1):  # trailers, up to the blank line
                    line = f.readline(MAX_HEADER_LINE + 1)
                    if line in (b"\r\n", b"\n"):
                        return bytes(out)
                    if not line:
                        raise ProtocolError("the chunked answer was cut off")
                raise ProtocolError("too many trailer lines")
            if len(out) + size > self.max_body_bytes:
                raise ProtocolError(f"answer is over the {self.max_body_bytes}-byte limit")
            chunk = f.read(size + 2)
            if len(chunk) != size + 2:
                raise ProtocolError("the chunked answer was cut off")
            out += chunk[:size]
