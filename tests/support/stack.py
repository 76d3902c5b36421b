"""The whole stack as real processes on loopback ports: MLflow, two model servers, router
replicas under gunicorn, Prometheus scraping them, the controller, and nginx in front.

Same code, same configuration files as the images; only addresses differ.
"""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from support import edge, promconfig
from support.models import setup_models, start_model_server
from support.procs import ROOT, Proc, free_port, python_cmd, start_mlflow


def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if not path:
        raise RuntimeError("prometheus binary missing: run `make deps` (apt-get install prometheus)")
    return path


def nginx_binary() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not path:
        raise RuntimeError("nginx binary missing: run `make deps` (apt-get install nginx)")
    return path


@dataclass
class Stack:
    log_dir: Path
    mlflow_url: str = ""
    production_url: str = ""
    canary_url: str = ""
    router_urls: list = field(default_factory=list)
    prometheus_url: str = ""
    controller_url: str = ""
    public_url: str = ""
    admin_url: str = ""
    admin_token: str = "test-token"
    model_name: str = "sentiment"  # a bundled demo that model-setup trains
    procs: dict = field(default_factory=dict)
    controller_env: dict = field(default_factory=dict)
    router_ports: list = field(default_factory=list)

    # -- start ---------------------------------------------------------------------------
    def start(self, routers: int = 2, controller_env: dict | None = None, with_nginx: bool = True) -> Stack:
        self.procs["mlflow"], self.mlflow_url = start_mlflow(self.log_dir)
        setup_models(self.mlflow_url, self.log_dir, model_name=self.model_name)
        for alias in ("production", "canary"):
            self.procs[alias], url = start_model_server(
                self.mlflow_url, alias, self.log_dir, model_name=self.model_name
            )
            setattr(self, f"{alias}_url", url)
        self.controller_port = free_port()
        self.controller_url = f"http://127.0.0.1:{self.controller_port}"
        self.router_ports = [free_port() for _ in range(routers)]
        self.router_urls = [f"http://127.0.0.1:{p}" for p in self.router_ports]
        for i in range(routers):
            self.start_router(i)
        self.start_prometheus()
        self.controller_env = dict(controller_env or {})
        self.start_controller()
        if with_nginx:
            self.start_nginx()
        return self

    def use_model(self, model_name: str, **controller_env) -> None:
        """Roll out another registered model on the same MLflow, Prometheus and nginx: model-setup
        for it, then the model servers (same ports), routers and controller with MODEL_NAME."""
        self.model_name = model_name
        setup_models(self.mlflow_url, self.log_dir, model_name=model_name)
        for alias in ("production", "canary"):
            port = int(getattr(self, f"{alias}_url").rsplit(":", 1)[1])
            self.procs[alias].stop()
            self.procs[alias], _ = start_model_server(
                self.mlflow_url, alias, self.log_dir, model_name=model_name, port=port
            )
        for i in range(len(self.router_ports)):
            self.procs[f"router-{i}"].stop()
            self.start_router(i)
        self.restart_controller(**controller_env)

    def start_router(self, index: int) -> Proc:
        port = self.router_ports[index]
        mp_dir = self.log_dir / f"router-{index}-metrics"
        mp_dir.mkdir(exist_ok=True)
        env = {
            "PORT": port,
            "WORKERS": 2,
            "PROMETHEUS_MULTIPROC_DIR": mp_dir,
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "MODEL_NAME": self.model_name,
            "PRODUCTION_URL": self.production_url,
            "CANARY_URL": self.canary_url,
            "CONTROLLER_URL": self.controller_url,
            "ADMIN_TOKEN": self.admin_token,
            "ROUTER_PEERS": ",".join(self.router_urls),
            "STATE_POLL_S": "0.5",
        }
        proc = Proc(
            f"router-{index}",
            python_cmd("-m", "gunicorn", "-c", str(ROOT / "router/gunicorn.conf.py")),
            self.log_dir,
            env=env,
            cwd=ROOT / "router",
        ).start()
        self.procs[f"router-{index}"] = proc
        proc.wait_http(f"http://127.0.0.1:{port}/ready", timeout=60)
        return proc

    def start_prometheus(self) -> None:
        port = getattr(self, "prometheus_port", None) or free_port()
        self.prometheus_port = port
        self.prometheus_url = f"http://127.0.0.1:{port}"

        def hostports(urls):
            return [u.replace("http://", "") for u in urls]

        cfg = promconfig.prepare(
            self.log_dir / "prometheus",
            {
                "router": hostports(self.router_urls),
                "model-server-production": hostports([self.production_url]),
                "model-server-canary": hostports([self.canary_url]),
                "controller": hostports([self.controller_url]),
                "mlflow": hostports([self.mlflow_url]),
            },
        )
        data = self.log_dir / "prometheus-data"
        data.mkdir(exist_ok=True)
        proc = Proc(
            "prometheus",
            [
                prometheus_binary(),
                f"--config.file={cfg}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            self.log_dir,
        ).start()
        self.procs["prometheus"] = proc
        proc.wait_http(f"{self.prometheus_url}/-/ready", timeout=60)

    def start_controller(self, **extra_env) -> None:
        self.controller_env.update(extra_env)
        env = {
            "PORT": self.controller_port,
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "MODEL_NAME": self.model_name,
            "PROMETHEUS_URL": self.prometheus_url,
            "PRODUCTION_URL": self.production_url,
            "POLL_INTERVAL_S": "1",
            "SCRAPE_WAIT_S": "5",
            "ADMIN_TOKEN": self.admin_token,
            **self.controller_env,
        }
        proc = Proc(
            "controller",
            python_cmd("-m", "gunicorn", "-c", str(ROOT / "controller/gunicorn.conf.py")),
            self.log_dir,
            env=env,
            cwd=ROOT / "controller",
        ).start()
        self.procs["controller"] = proc
        proc.wait_http(f"{self.controller_url}/health", timeout=60)

    def restart_controller(self, **extra_env) -> None:
        self.procs["controller"].stop()
        self.start_controller(**extra_env)

    def start_nginx(self) -> None:
        public = free_port()
        prefix = self.log_dir / "nginx"
        prefix.mkdir(exist_ok=True)
        conf = edge.render(
            [u.replace("http://", "") for u in self.router_urls],
            self.controller_url.replace("http://", ""),
            public_port=public,
            admin_token=self.admin_token,
        )
        (prefix / "nginx.conf").write_text(conf)
        proc = Proc(
            "nginx", [nginx_binary(), "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf")], self.log_dir
        ).start()
        self.procs["nginx"] = proc
        self.public_url = f"http://127.0.0.1:{public}"
        self.admin_url = self.public_url  # one edge: admin calls carry the token
        proc.wait_http(f"{self.public_url}/health", timeout=30)

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            self.procs[name].stop()

    # -- helpers for tests ---------------------------------------------------------------
    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def registry(self):
        from canary_common.registry import RegistryClient

        return RegistryClient(self.mlflow_url, self.model_name, timeout=5)

    def deploy(self, version: str, production: str | None = None) -> dict:
        body = {"version": version}
        if production:
            body["production"] = production
        resp = requests.post(f"{self.controller_url}/deploy", json=body, headers=self.auth, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def set_faults(self, **faults) -> None:
        body = {"wrong_rate": 0, "error_rate": 0, "latency_ms": 0, **faults}
        requests.post(f"{self.canary_url}/faults", json=body, timeout=5).raise_for_status()

    def wait_for(self, predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; controller: {self.controller_summary()}")

    def controller_summary(self) -> str:
        """The controller's phase, weight and latest decisions, short enough to survive CI's log cut."""
        try:
            status = requests.get(self.controller_url + "/status", timeout=5).json()
        except (requests.RequestException, ValueError) as exc:
            return f"/status unreadable: {exc}"
        recent = [{k: e.get(k) for k in ("decision", "summary") if k in e} for e in status.get("history", [])[:6]]
        return (
            f"phase={status.get('phase')} weight={status.get('weight')} note={status.get('note')!r} "
            f"recent decisions (newest first)={recent}"
        )

    def roll_out_a_bad_canary(
        self, wrong_rate: float = 0.4, weight: int = 20, rate: float = 50, timeout: float = 60
    ) -> tuple[float, Traffic]:
        """Version 2 as the canary at `weight` with `wrong_rate` of its predictions flipped, under
        labelled traffic, until the controller sets the weight to 0: (seconds taken, traffic)."""
        self.deploy("2", production="1")
        requests.post(f"{self.admin_url}/set_canary/{weight}", headers=self.auth, timeout=5).raise_for_status()
        self.set_faults(wrong_rate=wrong_rate)
        registry = self.registry()
        try:
            with Traffic(self.public_url, rate=rate) as traffic:
                started = time.monotonic()
                self.wait_for(
                    lambda: registry.read_state().weight == 0,
                    timeout=timeout,
                    what=f"rollback to weight 0 within {timeout}s",
                )
                took = time.monotonic() - started
        finally:
            self.set_faults()
        return took, traffic

    def query(self, promql: str) -> list:
        resp = requests.get(f"{self.prometheus_url}/api/v1/query", params={"query": promql}, timeout=5)
        resp.raise_for_status()
        return resp.json()["data"]["result"]


def demo_bodies(name: str) -> list[dict]:
    """/predict bodies of a bundled tabular demo's held-out rows, one row each, with the truth."""
    from canary_common.demo_data import held_out_rows

    columns, rows, truths, task = held_out_rows(name)
    truth = "actual_label" if task == "classification" else "actual_value"
    return [{"dataframe_split": {"columns": columns, "data": [row]}, truth: t} for row, t in zip(rows, truths)]


class Traffic:
    """Labelled held-out traffic at a steady rate from a few threads, counting every answer."""

    def __init__(self, url: str, rate: float, threads: int = 6, seed: int = 7, bodies: list | None = None):
        """`bodies`: the /predict bodies to cycle through (default: the sentiment held-out reviews)."""
        if bodies is None:
            from canary_common.dataset import load_split

            bodies = [{"text": r.text, "actual_label": r.label} for r in load_split()[1]]
        self.bodies = bodies
        self.url = url.rstrip("/") + "/predict"
        self.rate = rate
        self.threads = threads
        self.rng = random.Random(seed)
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.codes: dict = {}
        self.by_model: dict = {}
        self.by_version: dict = {}
        self.failures: list = []
        self._workers: list = []

    def _run(self, index: int) -> None:
        session = requests.Session()
        interval = self.threads / self.rate
        next_at = time.monotonic() + index * interval / self.threads
        i = index
        while not self.stop_event.is_set():
            request_body = self.bodies[i % len(self.bodies)]
            i += self.threads
            try:
                resp = session.post(self.url, json=request_body, timeout=10)
                code = resp.status_code
                body = resp.json() if code == 200 else {}
            except requests.RequestException as exc:
                code, body = "exception", {}
                with self.lock:
                    self.failures.append(repr(exc))
            with self.lock:
                self.codes[code] = self.codes.get(code, 0) + 1
                if code == 200:
                    self.by_model[body["model_version"]] = self.by_model.get(body["model_version"], 0) + 1
                    key = (body["model_version"], str(body["version"]))
                    self.by_version[key] = self.by_version.get(key, 0) + 1
                elif code != "exception":
                    self.failures.append(f"{code}")
            next_at += interval
            self.stop_event.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Traffic:
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        for t in self._workers:
            t.join(15)

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.codes.values())

    @property
    def non_ok(self) -> int:
        with self.lock:
            return sum(n for c, n in self.codes.items() if c != 200)
