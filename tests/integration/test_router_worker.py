"""The router's gunicorn worker (canary_router.datapath.worker.ConnectionThreadWorker), as a real gunicorn
process on loopback, driven over raw sockets: keep-alive, bad requests, idle and stalled clients,
the connection limit, and graceful shutdown."""

import os
import signal
import socket
import threading
import time

import pytest
import requests

from support.procs import ROOT, Proc, free_port, python_cmd

WORKER = "canary_router.datapath.worker.ConnectionThreadWorker"


def start(tmp_path, name, connections=50, keepalive=2, graceful=5):
    port = free_port()
    proc = Proc(
        name,
        python_cmd(
            "-m",
            "gunicorn",
            "-k",
            WORKER,
            "-w",
            "1",
            "--worker-connections",
            str(connections),
            "--keep-alive",
            str(keepalive),
            "--graceful-timeout",
            str(graceful),
            "-b",
            f"127.0.0.1:{port}",
            "--chdir",
            str(ROOT / "tests"),
            "support.worker_app:app",
        ),
        tmp_path,
    ).start()
    proc.wait_http(f"http://127.0.0.1:{port}/", timeout=30)
    return proc, port


@pytest.fixture
def server(tmp_path):
    proc, port = start(tmp_path, "worker")
    yield proc, port
    proc.stop()


def connect(port, timeout=5.0):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def request(path="/", body=b"", close=False):
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


_buffers: dict[int, bytes] = {}  # bytes read past a response, per socket (pipelined answers)


def read_response(sock) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length: (status, body)."""
    buf = _buffers.pop(id(sock), b"")
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {buf!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    length = next(int(v) for k, v in (h.split(":", 1) for h in lines[1:]) if k.lower() == "content-length")
    while len(rest) < length:
        rest += sock.recv(4096)
    _buffers[id(sock)] = rest[length:]
    return int(lines[0].split()[1]), rest[:length]


def closed_within(sock, seconds) -> float:
    """Seconds until the server closes the connection; fails past `seconds`."""
    sock.settimeout(seconds)
    started = time.monotonic()
    assert sock.recv(1) == b"", "expected the server to close the connection"
    return time.monotonic() - started


def test_keep_alive_serves_many_requests_on_one_connection_pipelined_too(server):
    _, port = server
    with connect(port) as s:
        for i in range(20):
            s.sendall(request(body=b"x" * i))
            assert read_response(s) == (200, f"ok {i} pid {pid_of(port)}".encode())
        s.sendall(request(body=b"ab") + request(body=b"abc"))  # two requests in one write
        assert read_response(s)[1].startswith(b"ok 2 ")
        assert read_response(s)[1].startswith(b"ok 3 ")
        s.sendall(request(close=True))
        assert read_response(s)[0] == 200
        closed_within(s, 3)


def pid_of(port) -> str:
    return requests.get(f"http://127.0.0.1:{port}/", timeout=5).text.rsplit(" ", 1)[1]


def test_a_bad_request_gets_400_and_the_worker_carries_on(server):
    _, port = server
    with connect(port) as s:
        s.sendall(b"NOT A REQUEST\r\n\r\n")
        status, _ = read_response(s)
        assert status == 400
    with connect(port) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"y" * 10000 + b"\r\n\r\n")
        assert read_response(s)[0] == 431  # Request Header Fields Too Large
    assert requests.post(f"http://127.0.0.1:{port}/", data=b"fine", timeout=5).text.startswith("ok 4 ")


def test_idle_and_stalled_connections_are_closed_after_the_keep_alive_timeout(server):
    _, port = server
    idle, stalled = connect(port), connect(port)
    try:
        idle.sendall(request())
        read_response(idle)
        stalled.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")  # 8 bytes never come
        assert 1.0 < closed_within(idle, 6) < 5.0  # --keep-alive 2
        closed_within(stalled, 6)
        assert requests.post(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    finally:
        idle.close()
        stalled.close()


def test_at_the_connection_limit_the_longest_idle_connection_makes_room(tmp_path):
    proc, port = start(tmp_path, "worker-limit", connections=2, keepalive=30)
    try:
        older, newer = connect(port), connect(port)
        for s in (older, newer):
            s.sendall(request())
            read_response(s)
            time.sleep(0.1)
        with connect(port) as third:  # both slots held by idle keep-alive connections
            third.sendall(request())
            assert read_response(third)[0] == 200
        closed_within(older, 5)
        newer.sendall(request())
        assert read_response(newer)[0] == 200
        older.close()
        newer.close()
    finally:
        proc.stop()


def test_at_the_limit_with_every_connection_busy_a_new_one_waits_without_spinning(tmp_path):
    proc, port = start(tmp_path, "worker-busy", connections=2, keepalive=30)
    try:
        busy = [connect(port) for _ in range(2)]
        for s in busy:
            s.sendall(request("/slow?ms=1500"))
        time.sleep(0.3)
        worker = worker_pid(proc)
        cpu_before = cpu_seconds(worker)
        started = time.monotonic()
        answer = requests.post(f"http://127.0.0.1:{port}/", timeout=10)  # waits for a free slot
        waited = time.monotonic() - started
        assert answer.status_code == 200 and waited > 0.8, waited
        # Waiting at the limit must not busy-loop on the readable listener.
        assert cpu_seconds(worker) - cpu_before < 0.5 * waited
        for s in busy:
            assert read_response(s)[0] == 200
            s.close()
    finally:
        proc.stop()


def worker_pid(proc) -> int:
    children = open(f"/proc/{proc.popen.pid}/task/{proc.popen.pid}/children").read().split()
    assert len(children) == 1, children
    return int(children[0])


def cpu_seconds(pid) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_sigterm_finishes_requests_in_flight_and_closes_idle_connections(tmp_path):
    proc, port = start(tmp_path, "worker-stop", keepalive=30, graceful=10)
    idle = connect(port)
    idle.sendall(request())
    read_response(idle)
    slow = connect(port)
    slow.sendall(request("/slow?ms=2000", body=b"payload"))
    time.sleep(0.3)
    result = {}
    reader = threading.Thread(target=lambda: result.update(answer=read_response(slow)))
    reader.start()
    os.kill(proc.popen.pid, signal.SIGTERM)  # the master, as docker stop does
    assert closed_within(idle, 3) < 3  # not left waiting for a next request
    reader.join(10)
    assert result.get("answer", (0, b""))[0] == 200 and result["answer"][1].startswith(b"ok 7 ")
    proc.popen.wait(10)
    assert proc.popen.returncode == 0, proc.tail()
    with pytest.raises(OSError):
        connect(port, timeout=1).sendall(request())
    idle.close()
    slow.close()
