"""Helpers for the router's integration tests (no tests here).

The stand-in model server is a tiny stdlib HTTP server in the test process, NOT the real
model-server: it speaks the same contract (POST /predict, GET /ready with `classes`, POST /faults)
so that the router can be tested alone, and it can be told to fail, hang, or stop listening.
The lead's full-stack suite runs the router against the real model servers.
"""

from __future__ import annotations

import json
import random
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from canary_common.payload import SCORING_KEYS, raw_rows
from support.procs import ROOT, Proc, free_port


class _KillableServer(ThreadingHTTPServer):
    """Also cuts the open keep-alive connections on close, as a dying process would."""

    daemon_threads = True

    def __init__(self, *args, **kwargs):
        self.open_sockets = set()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.open_sockets.discard(request)
        super().shutdown_request(request)

    def kill(self):
        self.shutdown()
        self.server_close()
        for sock in list(self.open_sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass


class _ServedInThread:
    """Serves a handler class on self.port in a daemon thread; stop() cuts it off as a dying
    process would."""

    _server = None

    def _serve(self, handler) -> None:
        self._server = _KillableServer(("127.0.0.1", self.port), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.kill()
            self._server = None


class StandInModelServer:
    """Answers /predict with a deterministic prediction: 1 if the text contains "good"."""

    def __init__(self, alias: str, version: str, port: int | None = None):
        self.alias = alias
        self.version = version
        self.port = port or free_port()
        self.mode = "ok"  # ok | error500 | badjson | slow
        self.slow_s = 5.0
        self.faults = {"wrong_rate": 0.0, "error_rate": 0.0, "latency_ms": 0}
        self.calls = 0
        self._server = None
        self._thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StandInModelServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 65536  # headers and body in one write: no 40 ms delayed-ACK stall
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _send(self, status, payload, raw=None):
                data = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def do_GET(self):
                if self.path == "/ready":
                    self._send(
                        200,
                        {
                            "ready": True,
                            "version": owner.version,
                            "alias": owner.alias,
                            "classes": [0, 1],
                            "task": "classification",
                        },
                    )
                elif self.path == "/faults":
                    self._send(200, owner.faults)
                else:
                    self._send(404, {"error": "no such path"})

            def do_POST(self):
                body = self._body()
                if self.path == "/check":  # plays the controller for /check_rollback
                    self._send(200, {"status": "waiting", "message": "stand-in controller", "decision": "hold"})
                    return
                if self.path == "/faults":
                    owner.faults.update(body)
                    self._send(200, owner.faults)
                    return
                if self.path == "/invocations":  # MLflow's protocol: one prediction per row, no signature
                    keys = [k for k in SCORING_KEYS if k in body]
                    rows = raw_rows(keys[0], body[keys[0]]) if len(keys) == 1 else None
                    if not rows:
                        self._send(400, {"error": "stand-in: cannot count the rows of this payload"})
                        return
                    owner.calls += 1
                    self._send(
                        200,
                        {
                            "predictions": [0] * rows,
                            "version": owner.version,
                            "model": "sentiment",
                            "alias": owner.alias,
                            "classes": [0, 1],
                            "task": "classification",
                        },
                    )
                    return
                if self.path != "/predict":
                    self._send(404, {"error": "no such path"})
                    return
                owner.calls += 1
                if owner.mode == "error500":
                    self._send(500, {"error": "boom"})
                    return
                if owner.mode == "badjson":
                    self._send(200, None, raw=b"{not json")
                    return
                if owner.mode == "slow":
                    time.sleep(owner.slow_s)
                text = body.get("text", "")
                prediction = 1 if "good" in text else 0
                if random.random() < float(owner.faults.get("wrong_rate") or 0):
                    prediction = 1 - prediction
                self._send(
                    200,
                    {
                        "prediction": prediction,
                        "version": owner.version,
                        "model": "sentiment",
                        "alias": owner.alias,
                        "classes": [0, 1],
                        "task": "classification",
                    },
                )

        self._server = _KillableServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: new connections are refused (as if the container died)."""
        if self._server is not None:
            self._server.kill()
            self._server = None


def seed_registry(
    url: str, production: str = "1", canary: str | None = "2", weight: float = 20.0, versions: int = 2
) -> None:
    """A registered model `sentiment` with `versions` versions, aliases and a weight, via REST."""
    from canary_common.registry import RegistryClient

    api = url + "/api/2.0/mlflow"
    requests.post(api + "/registered-models/create", json={"name": "sentiment"}, timeout=10)
    run = requests.post(api + "/runs/create", json={"experiment_id": "0"}, timeout=10).json()["run"]["info"]
    existing = (
        requests.get(api + "/model-versions/search", params={"filter": "name='sentiment'"}, timeout=10)
        .json()
        .get("model_versions", [])
    )
    for _ in range(versions - len(existing)):
        requests.post(
            api + "/model-versions/create",
            timeout=10,
            json={"name": "sentiment", "source": f"runs:/{run['run_id']}/model", "run_id": run["run_id"]},
        ).raise_for_status()
    client = RegistryClient(url)
    client.set_alias("production", production)
    if canary:
        client.set_alias("canary", canary)
    else:
        try:
            client.delete_alias("canary")
        except Exception:
            pass
    client.write_state(weight=weight, mode="auto", phase="progressing", reason="test setup")


def start_router(
    name: str,
    log_dir: Path,
    *,
    mlflow_url: str,
    production_url: str,
    canary_url: str,
    port: int | None = None,
    workers: int = 2,
    timeout: float = 60,
    **env,
) -> tuple[Proc, str]:
    """The router under real gunicorn (router/gunicorn.conf.py), on a free loopback port; stopped
    again if it is not ready within `timeout` seconds."""
    port = port or free_port()
    mp_dir = Path(log_dir) / f"{name}-prom"
    mp_dir.mkdir(parents=True, exist_ok=True)
    full_env = {
        "ROUTER_BIND": f"127.0.0.1:{port}",
        "ROUTER_WORKERS": str(workers),
        "ROUTER_THREADS": "4",
        "PROMETHEUS_MULTIPROC_DIR": str(mp_dir),
        "MLFLOW_TRACKING_URI": mlflow_url,
        "PRODUCTION_URL": production_url,
        "CANARY_URL": canary_url,
        "MODEL_NAME": "sentiment",
        "STATE_POLL_S": "0.5",
    }
    full_env.update({k: str(v) for k, v in env.items()})
    proc = Proc(
        name, [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "router" / "gunicorn.conf.py")], log_dir, env=full_env
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        proc.wait_http(url + "/ready", timeout=timeout)
    except Exception:
        proc.stop()
        raise
    return proc, url


class RegistryProxy(_ServedInThread):
    """A switchable TCP-level stand-in for the network path to the real MLflow server: while
    on, it forwards HTTP requests to MLflow; `stop()` makes the registry unreachable."""

    def __init__(self, target: str):
        self.target = target
        self.port = free_port()
        self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RegistryProxy:
        target = self.target

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 65536
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                resp = requests.request(
                    self.command,
                    target + self.path,
                    data=data,
                    timeout=5,
                    headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
                )
                self.send_response(resp.status_code)
                self.send_header("Content-Type", resp.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            do_GET = do_POST = do_DELETE = do_PATCH = _forward

        self._serve(Handler)
        return self


class StandInController(_ServedInThread):
    """The controller's HTTP contract for the routers, WITHOUT its control loop (no Prometheus
    here): POST /check answers "waiting"; POST /weight and /shadow write the rollout state with
    the real controller's own commands (canary_controller.commands), as its one writer, against
    the real MLflow server. The full-stack suites run the real controller."""

    def __init__(self, mlflow_url: str, model_name: str = "sentiment"):
        from canary_common.registry import RegistryClient

        self.registry = RegistryClient(mlflow_url, model_name, timeout=10)
        self.lock = threading.RLock()
        self.decisions: list = []
        self.port = free_port()

    def record(self, decision: str, summary: str) -> dict:
        self.decisions.append((decision, summary))
        return {"decision": decision, "summary": summary}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _answer(self, path: str, body: dict) -> tuple[int, dict]:
        from canary_controller import commands

        if path == "/check":
            return 200, {"status": "waiting", "message": "stand-in controller", "decision": "hold"}
        try:
            if path == "/weight":
                weight = commands.parse_request(body, "weight")
                return 200, commands.set_weight(self, weight, bool(body.get("fresh")), body.get("reason") or "test")
            if path == "/shadow":
                share = commands.parse_request(body, "percentage")
                return 200, commands.set_shadow(self, share, body.get("reason") or "test")
        except ValueError as exc:
            return 400, {"error": str(exc)}
        return 404, {"error": "no such path"}

    def start(self) -> StandInController:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                status, answer = owner._answer(self.path, body if isinstance(body, dict) else {})
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._serve(Handler)
        return self
