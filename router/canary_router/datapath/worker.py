"""A gunicorn worker that gives each client connection its own thread.

The router's clients are the nginx edge's keep-alive connections: few, long-lived and busy.
gunicorn's gthread worker hands every request on such a connection from its event loop to a
thread pool and back (poller register and unregister, a future, a wakeup pipe): two thread
switches and ~60 µs of CPU per request on top of the work. Here the connection's thread reads
the next request itself, blocking, and the main thread only accepts connections and keeps the
heartbeat. HTTP parsing, WSGI environ, errors, hooks and the access log stay gunicorn's own.

Bounds: at most `worker_connections` connections per worker; when a new one waits at the
limit, the longest-idle kept connection is closed to make room (as gthread does with its
keep-alive cap). A connection idle, or stalled mid-request, for `keepalive` seconds is closed.
On SIGTERM: stop accepting, close idle connections, let requests in flight finish for up to
`graceful_timeout`, then exit.
"""

from __future__ import annotations

import errno
import json
import os
import selectors
import socket
import sys
import threading
import time
from datetime import datetime

from gunicorn import http, util
from gunicorn.http import wsgi
from gunicorn.workers import base

# How long a connection may sit before its first request when keep-alive is off.
READ_TIMEOUT_S = 5.0

# Others, an over-long request line included (as gunicorn does), are 400 Bad Request.
_PARSE_STATUS = {
    http.errors.LimitRequestHeaders: (431, "Request Header Fields Too Large"),
    http.errors.ExpectationFailed: (417, "Expectation Failed"),
    http.errors.UnsupportedTransferCoding: (501, "Not Implemented"),
}


class _Connection:
    """One client connection; `idle` while its thread waits for the next request, `kept` once it
    has answered one (a fresh connection is about to send its first request: never evicted)."""

    __slots__ = ("sock", "client", "server", "idle", "idle_since", "kept", "closing")

    def __init__(self, sock, client, server):
        self.sock, self.client, self.server = sock, client, server
        self.idle, self.idle_since, self.kept, self.closing = True, time.monotonic(), False, False

    def wake(self) -> None:
        """End a wait for the next request (the thread sees end of stream and closes)."""
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class ConnectionThreadWorker(base.Worker):
    def init_process(self):
        if self.cfg.is_ssl:  # TLS ends at the nginx edge; this worker speaks plain HTTP/1.1
            raise RuntimeError("ConnectionThreadWorker does not serve TLS: use gthread, or end TLS at nginx")
        self.conns: set[_Connection] = set()
        self.conns_lock = threading.Lock()
        self.idle_changed = threading.Condition(self.conns_lock)
        self.limit = max(1, self.cfg.worker_connections)
        super().init_process()

    # -- the main thread: accept, heartbeat, shutdown -------------------------------------------
    def run(self):
        selector = selectors.DefaultSelector()
        for listener in self.sockets:
            listener.setblocking(False)
            selector.register(listener, selectors.EVENT_READ)
        while self.alive:
            self.notify()
            with self.conns_lock:
                full = len(self.conns) >= self.limit and not self._idle(kept_only=True)
                if full:  # every connection is busy: new ones wait in the backlog
                    self.idle_changed.wait(timeout=1.0)
            if not full:
                for key, _ in selector.select(timeout=1.0):
                    self.accept_from(key.fileobj)
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                break
        selector.close()
        self.drain()

    def accept_from(self, listener) -> None:
        while self.alive:
            with self.conns_lock:
                if len(self.conns) >= self.limit and not self._idle(kept_only=True):
                    return
            try:
                sock, client = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.ECONNABORTED, errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.log.warning("accept failed: %s", exc)
                    return
                raise
            conn = _Connection(sock, client, listener.getsockname())
            with self.conns_lock:
                if len(self.conns) >= self.limit:  # make room: close the longest-idle kept connection
                    idle = self._idle(kept_only=True)
                    if idle:
                        min(idle, key=lambda c: c.idle_since).wake()
                self.conns.add(conn)
            threading.Thread(target=self.serve, args=(conn,), name="conn", daemon=True).start()

    def _idle(self, kept_only: bool = False) -> list[_Connection]:
        """Connections waiting for a request and not already closing (conns_lock held)."""
        return [c for c in self.conns if c.idle and not c.closing and (c.kept or not kept_only)]

    def drain(self) -> None:
        for listener in self.sockets:
            listener.close()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        with self.conns_lock:
            while self.conns:
                for conn in self._idle():
                    conn.wake()
                left = deadline - time.monotonic()
                if left <= 0:
                    self.log.warning("graceful timeout: %d connections still busy", len(self.conns))
                    break
                self.idle_changed.wait(timeout=min(left, 1.0))
                self.notify()

    def handle_error(self, req, client, addr, exc):
        """A request gunicorn cannot parse gets the API's JSON error, not gunicorn's HTML page;
        anything else (a server-side failure) is gunicorn's to log and answer."""
        if not isinstance(exc, http.errors.ParseException):
            return super().handle_error(req, client, addr, exc)
        status, reason = _PARSE_STATUS.get(type(exc), (400, "Bad Request"))
        self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        body = json.dumps({"error": f"{reason.lower()}: {exc}"}).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        try:
            client.sendall(head + body)
        except OSError:
            pass  # the client is gone: nobody to tell

    # -- a connection's thread ---------------------------------------------------------------
    def serve(self, conn: _Connection) -> None:
        req = None
        try:
            conn.sock.setblocking(True)
            conn.sock.settimeout(self.cfg.keepalive or READ_TIMEOUT_S)
            parser = http.get_parser(self.cfg, conn.sock, conn.client)
            while self.alive:
                req = next(parser)  # blocks until the next request's head is in (or the timeout)
                self._set_idle(conn, False)
                if not self.handle_request(req, conn):
                    break
                req = None
                self._set_idle(conn, True)
        except (TimeoutError, StopIteration, http.errors.NoMoreData):
            pass  # the client closed, or stayed idle (or stalled) past the keep-alive timeout
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.EBADF):
                self.log.exception("Socket error processing request.")
        except Exception as exc:  # bad requests: gunicorn answers 400/431/... and closes
            self.handle_error(req, conn.sock, conn.client, exc)
        finally:
            util.close_graceful(conn.sock)
            with self.conns_lock:
                self.conns.discard(conn)
                self.idle_changed.notify_all()

    def _set_idle(self, conn: _Connection, idle: bool) -> None:
        with self.conns_lock:
            conn.idle = idle
            if idle:
                conn.idle_since, conn.kept = time.monotonic(), True
                if not self.alive:
                    conn.wake()  # shutting down: no next request on this connection
            self.idle_changed.notify_all()

    def handle_request(self, req, conn: _Connection) -> bool:
        """Answer one request; True if the connection stays open for the next."""
        environ, resp = {}, None
        try:
            self.cfg.pre_request(self, req)
            started = datetime.now()
            resp, environ = wsgi.create(req, conn.sock, conn.client, conn.server, self.cfg)
            environ["wsgi.multithread"] = True
            self.nr += 1
            if self.nr >= self.max_requests:
                if self.alive:
                    self.log.info("Autorestarting worker after current request.")
                    self.alive = False
            if not self.alive or not self.cfg.keepalive:
                resp.force_close()
            respiter = self.wsgi(environ, resp.start_response)
            try:
                if isinstance(respiter, environ["wsgi.file_wrapper"]):
                    resp.write_file(respiter)
                else:
                    for item in respiter:
                        resp.write(item)
                resp.close()
            finally:
                self.log.access(resp, req, environ, datetime.now() - started)
                if hasattr(respiter, "close"):
                    respiter.close()
            return not resp.should_close()
        except OSError:
            util.reraise(*sys.exc_info())
        except Exception:
            if resp and resp.headers_sent:
                # Half an answer is out: only closing the connection can tell the client.
                self.log.exception("Error handling request")
                raise StopIteration() from None
            raise
        finally:
            try:
                self.cfg.post_request(self, req, environ, resp)
            except Exception:
                self.log.exception("Exception in post_request hook")
