"""nginx edge proxy: the rendered config is valid and behaves as the contract says.

Runs Debian's real nginx on free loopback ports. The routers and the controller behind it are
STAND-INS (support/standin.py) that echo what they received, so the tests
can see which replica answered, what path and headers arrived, and can stop a replica.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from werkzeug import Request, Response

ROOT = Path(__file__).resolve().parents[2]
NGINX_DIR = ROOT / "nginx"


from support import edge, standin  # noqa: E402

TOKEN = "t0ken-Admin_42"


def _nginx() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed (apt-get install nginx-light or nginx)")
        pytest.skip("nginx is not installed")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandIn:
    """A stand-in for a router replica or the controller (support/standin.py): answers every
    request with JSON naming itself and echoing method, path, selected headers and body size."""

    def __init__(self, name: str):
        self.name = name
        self.seen: list[dict] = []
        self.status = 200  # what it answers; a router says 503 when production is down
        self.server = standin.start()
        self.address = standin.address(self.server)
        self.server.expect_request(standin.ANY_PATH).respond_with_handler(self.answer)

    def answer(self, request: Request) -> Response:
        body = request.get_data()
        record = {
            "server": self.name,
            "method": request.method,
            "path": request.full_path.rstrip("?"),
            "authorization": request.headers.get("Authorization"),
            "request_id": request.headers.get("X-Request-ID"),
            "body_bytes": len(body),
        }
        self.seen.append(record)
        return Response(json.dumps(record), status=self.status, content_type="application/json")

    def stop(self):
        standin.stop(self.server)


class Nginx:
    def __init__(self, prefix: Path, routers: list[str], controller: str, token: str):
        self.public = _free_port()
        prefix.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(edge.render(routers, controller, self.public, token))
        self.proc = subprocess.Popen(
            [_nginx(), "-p", f"{prefix}/", "-c", str(self.conf)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stdout.read().decode()}\n{self.error_log()}")
            try:
                socket.create_connection(("127.0.0.1", self.public), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(self.error_log())

    def url(self, path: str, admin: bool = False) -> str:
        # One edge: admin calls are on the same port as everything else (`admin` marks them).
        return f"http://127.0.0.1:{self.public}{path}"

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def stack(tmp_path):
    routers = [StandIn("router-a"), StandIn("router-b")]
    controller = StandIn("controller")
    nginx = Nginx(tmp_path / "nginx", [r.address for r in routers], controller.address, TOKEN)
    yield nginx, routers, controller
    nginx.stop()
    for s in (*routers, controller):
        try:
            s.stop()
        except OSError:
            pass


def _json(resp: requests.Response) -> dict:
    assert resp.headers["Content-Type"].startswith("application/json"), resp.headers
    return resp.json()


# ---- the config itself ---------------------------------------------------------------------


@pytest.mark.parametrize("token,resolver", [(TOKEN, None), ("", None), (TOKEN, "127.0.0.53")])
def test_rendered_config_passes_nginx_t(tmp_path, token, resolver):
    conf = tmp_path / "nginx.conf"
    conf.write_text(edge.render(["127.0.0.1:1", "127.0.0.1:2"], "127.0.0.1:3", _free_port(), token, resolver=resolver))
    proc = subprocess.run(
        [_nginx(), "-t", "-p", f"{tmp_path}/", "-c", str(conf)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "syntax is ok" in proc.stderr


@pytest.mark.parametrize(
    "routers, controller, token, says",
    [
        (["127.0.0.1:1"], "127.0.0.1:3", 'bad"token', "ADMIN_TOKEN may only contain"),
        (["127.0.0.1"], "127.0.0.1:3", "", "upstream must be host:port"),
        (["router; evil"], "127.0.0.1:3", "", "upstream must be host:port"),
        (["127.0.0.1:1"], "controller:80x", "", "upstream must be host:port"),
    ],
)
def test_the_entrypoint_refuses_unsafe_input_and_says_why(routers, controller, token, says):
    with pytest.raises(edge.RenderRefused, match=says):
        edge.render(routers, controller, 1, token)


def test_entrypoint_names_every_template_placeholder():
    script = (NGINX_DIR / "entrypoint.sh").read_text()
    listed = set(re.search(r"NGX_VARS='([^']*)'", script).group(1).replace("${", " ").replace("}", " ").split())
    assert listed == set(re.findall(r"\$\{(NGX_[A-Z0-9_]+)\}", (NGINX_DIR / "nginx.conf.template").read_text()))


def test_entrypoint_rejects_a_token_that_could_break_the_config():
    out = subprocess.run(
        ["sh", str(NGINX_DIR / "entrypoint.sh"), "render"],
        env={"PATH": os.environ["PATH"], "ADMIN_TOKEN": 'x"; deny all; #'},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode != 0 and "ADMIN_TOKEN" in out.stderr


# ---- behaviour, with real nginx in front of stand-ins ----------------------------------------


def test_public_paths_reach_the_routers_and_traffic_spreads(stack):
    nginx, (a, b), _ = stack
    for _ in range(20):
        resp = requests.post(nginx.url("/predict"), json={"text": "great film"}, timeout=5)
        assert resp.status_code == 200
        assert resp.json()["server"] in {"router-a", "router-b"}
    assert len(a.seen) >= 5 and len(b.seen) >= 5, (len(a.seen), len(b.seen))
    for path in ("/stats", "/", "/health", "/ready"):
        resp = requests.get(nginx.url(path), timeout=5)
        assert resp.status_code == 200, path
        assert resp.json()["path"] == path


def test_wrong_method_on_public_path_is_405_json(stack):
    nginx, _, _ = stack
    resp = requests.get(nginx.url("/predict"), timeout=5)
    assert resp.status_code == 405 and _json(resp)["error"] == "method not allowed"
    assert requests.post(nginx.url("/stats"), timeout=5).status_code == 405


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/metrics/prometheus"),
        ("GET", "/stats/local"),
        ("POST", "/stats/reset_local"),
        ("POST", "/feedback/owner"),
        ("POST", "/set_canary"),
        ("POST", "/controller"),
        ("GET", "/nope"),
        ("GET", "/predict/../stats/local"),
    ],
)
def test_internal_and_unknown_paths_are_404_at_the_edge(stack, method, path):
    nginx, routers, controller = stack
    resp = requests.request(method, nginx.url(path), headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert resp.status_code == 404
    assert _json(resp) == {"error": "not found"}
    assert not any(s.seen for s in (*routers, controller))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {TOKEN.lower()}"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
    ],
)
def test_admin_without_the_right_token_is_401(stack, headers):
    nginx, routers, controller = stack
    for path in ("/set_canary/50", "/controller/status", "/reset", "/simulate_failure/1", "/check_rollback"):
        resp = requests.post(nginx.url(path, admin=True), headers=headers, timeout=5)
        assert resp.status_code == 401
        assert _json(resp)["error"] == "unauthorized"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert not any(s.seen for s in (*routers, controller))


def test_admin_with_the_right_token_reaches_router_and_controller(stack):
    nginx, routers, controller = stack
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for method, path in [
        ("POST", "/set_canary/50"),
        ("POST", "/simulate_failure/1"),
        ("POST", "/reset"),
        ("POST", "/check_rollback"),
        ("POST", "/shadow/10"),
    ]:
        resp = requests.request(method, nginx.url(path, admin=True), headers=auth, timeout=5)
        assert resp.status_code == 200, (path, resp.text)
        body = resp.json()
        assert body["server"].startswith("router-") and body["path"] == path
        assert body["authorization"] == f"Bearer {TOKEN}"  # passed on: routers check it too
        assert "WWW-Authenticate" not in resp.headers
    resp = requests.post(
        nginx.url("/controller/deploy?dry=1", admin=True), headers=auth, json={"version": "3"}, timeout=5
    )
    assert resp.status_code == 200
    assert resp.json() == {**resp.json(), "server": "controller", "path": "/deploy?dry=1", "method": "POST"}
    assert controller.seen[-1]["authorization"] == f"Bearer {TOKEN}"
    # Right token, but not an admin path; right path, wrong method.
    for path in ("/set_canary", "/controller", "/set_canary/5/6"):
        assert requests.post(nginx.url(path, admin=True), headers=auth, timeout=5).status_code == 404
    assert requests.get(nginx.url("/reset", admin=True), headers=auth, timeout=5).status_code == 405


def test_the_labs_read_only_paths_need_no_token(stack):
    nginx, routers, _ = stack
    for path in ("/metrics", "/stats", "/", "/rollout.json", "/openapi.json"):
        resp = requests.get(nginx.url(path), timeout=5)
        assert resp.status_code == 200, path
        assert resp.json()["path"] == path and resp.json()["server"].startswith("router-")
        assert "WWW-Authenticate" not in resp.headers
    assert requests.post(nginx.url("/metrics"), timeout=5).status_code == 405


@pytest.mark.parametrize(
    "env,ok",
    [
        ({}, True),
        ({"CANARY_BIND": "127.0.0.1"}, True),
        ({"CANARY_BIND": "0.0.0.0"}, False),
        ({"CANARY_BIND": "0.0.0.0", "ADMIN_TOKEN": TOKEN}, True),
        ({"CANARY_TOOLS_BIND": "192.0.2.7"}, False),
        ({"CANARY_BIND": "::1"}, True),
    ],
)
def test_entrypoint_refuses_an_open_admin_beyond_loopback(env, ok):
    out = subprocess.run(
        ["sh", str(NGINX_DIR / "entrypoint.sh"), "check"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (out.returncode == 0) == ok, out.stderr
    if not ok:
        assert "ADMIN_TOKEN is not set" in out.stderr and "beyond loopback" in out.stderr


def test_admin_is_open_when_no_token_is_set(tmp_path):
    router, controller = StandIn("router-a"), StandIn("controller")
    nginx = Nginx(tmp_path / "nginx", [router.address], controller.address, "")
    try:
        assert requests.post(nginx.url("/reset", admin=True), timeout=5).status_code == 200
        resp = requests.get(nginx.url("/controller/status", admin=True), timeout=5)
        assert resp.status_code == 200 and resp.json()["path"] == "/status"
    finally:
        nginx.stop()
        router.stop()
        controller.stop()


def test_request_id_is_generated_passed_on_and_returned(stack):
    nginx, routers, _ = stack
    resp = requests.post(nginx.url("/predict"), json={"text": "x"}, timeout=5)
    rid = resp.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert resp.json()["request_id"] == rid

    resp = requests.post(nginx.url("/predict"), json={"text": "x"}, headers={"X-Request-ID": "client-42.a"}, timeout=5)
    assert resp.headers["X-Request-ID"] == "client-42.a"
    assert resp.json()["request_id"] == "client-42.a"
    assert resp.raw.headers.getlist("X-Request-ID") == ["client-42.a"]  # exactly one

    # Not a plausible id: replaced by nginx's own.
    resp = requests.get(nginx.url("/health"), headers={"X-Request-ID": "a b<script>"}, timeout=5)
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-ID"])
    # Returned on nginx's own answers too.
    assert re.fullmatch(r"[0-9a-f]{32}", requests.get(nginx.url("/nope"), timeout=5).headers["X-Request-ID"])
    assert requests.post(nginx.url("/reset", admin=True), timeout=5).headers["X-Request-ID"]


def test_body_over_4m_is_413_json_and_under_passes(stack):
    nginx, routers, _ = stack
    resp = requests.post(
        nginx.url("/predict"), data=b"x" * 4_200_000, headers={"Content-Type": "application/json"}, timeout=5
    )
    assert resp.status_code == 413
    assert _json(resp)["error"] == "request body too large"
    assert not any(r.seen for r in routers)
    # Below the limit but above nginx's in-memory buffer: goes through its temp file.
    resp = requests.post(
        nginx.url("/predict"), data=b"x" * 500_000, headers={"Content-Type": "application/json"}, timeout=5
    )
    assert resp.status_code == 200 and resp.json()["body_bytes"] == 500_000


def test_a_stopped_replica_is_skipped(stack):
    nginx, (a, b), _ = stack
    a.stop()
    for _ in range(20):
        resp = requests.post(nginx.url("/predict"), json={"text": "x"}, timeout=5)
        assert resp.status_code == 200, resp.text
        assert resp.json()["server"] == "router-b"
    assert len(b.seen) == 20


def test_a_routers_503_is_its_answer_not_a_broken_router(stack):
    """Production down: a router answers 503. nginx passes it on, and neither retries it on the
    other replica nor marks the router down (which would fail the canary's share too)."""
    nginx, (a, b), _ = stack
    a.status = 503
    codes = [requests.post(nginx.url("/predict"), json={"text": "x"}, timeout=5).status_code for _ in range(20)]
    assert codes.count(503) == len(a.seen) and codes.count(200) == len(b.seen), (codes, len(a.seen))
    assert len(a.seen) + len(b.seen) == 20 and len(a.seen) >= 8, (len(a.seen), len(b.seen))  # round robin


def test_idle_router_connections_are_closed_by_nginx_first():
    """nginx must close its idle upstream connections before a router does, or it may send a
    request on a connection the router is closing (the keep-alive race)."""
    text = (NGINX_DIR / "nginx.conf.template").read_text()
    nginx_s = float(re.search(r"upstream canary_routers \{.*?keepalive_timeout (\d+)s;", text, re.S).group(1))
    conf = (ROOT / "router" / "gunicorn.conf.py").read_text()
    router_s = float(re.search(r'"ROUTER_KEEPALIVE_S", "(\d+)"', conf).group(1))
    assert nginx_s < router_s


def test_all_replicas_down_is_502_json(stack):
    nginx, routers, _ = stack
    for r in routers:
        r.stop()
    resp = requests.post(nginx.url("/predict"), json={"text": "x"}, timeout=5)
    assert resp.status_code == 502
    body = _json(resp)
    assert body["error"] == "no router replica answered"
    assert body["request_id"] == resp.headers["X-Request-ID"]


def test_entrypoint_starts_nginx_with_a_host_name_upstream(tmp_path):
    """The Docker path end to end, minus Docker: entrypoint.sh renders into its run dir, waits for
    the router name to resolve, starts its DNS watcher and execs nginx."""
    if shutil.which("envsubst") is None or shutil.which("getent") is None:
        pytest.skip("envsubst or getent is not installed")
    router, controller = StandIn("router-a"), StandIn("controller")
    public = _free_port()
    env = {
        "PATH": os.environ["PATH"] + ":/usr/sbin",
        "ROUTER_UPSTREAM": f"localhost:{router.address.split(':')[1]}",
        "CONTROLLER_UPSTREAM": controller.address,
        "ADMIN_TOKEN": TOKEN,
        "NGINX_RESOLVER": "127.0.0.1",
        "NGINX_PUBLIC_PORT": str(public),
        "NGINX_LISTEN_HOST": "127.0.0.1",
        "NGINX_RUN_DIR": str(tmp_path / "run"),
        "NGINX_DNS_WATCH_S": "1",
        "NGINX_WORKER_PROCESSES": "1",
    }
    if os.geteuid() == 0:
        env["NGINX_USER"] = "root"
    proc = subprocess.Popen(
        ["sh", str(NGINX_DIR / "entrypoint.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                resp = requests.post(f"http://127.0.0.1:{public}/predict", json={"text": "x"}, timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert resp.status_code == 200 and resp.json()["server"] == "router-a"
        resp = requests.get(
            f"http://127.0.0.1:{public}/controller/status", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
        assert resp.status_code == 200 and resp.json()["path"] == "/status"
        assert (tmp_path / "run" / "nginx.conf").exists()
    finally:
        os.killpg(proc.pid, 15)  # nginx and the DNS watcher share the session
        proc.wait(10)
        router.stop()
        controller.stop()
