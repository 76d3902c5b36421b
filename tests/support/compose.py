"""A compose project for the Docker suites (e2e, faults): its own project name and host ports, so
a stack someone left running is not touched; run as a new user runs it (none of a developer's
exported settings); logs kept and `down -v` at the end, even on failure."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import requests

from support.procs import ROOT, free_port

PORT_KEYS = (
    "CANARY_HTTP_PORT",
    "MLFLOW_PORT",
    "PROMETHEUS_PORT",
    "CONTROLLER_PORT",
    "GRAFANA_PORT",
    "ALERTMANAGER_PORT",
)
# What a developer may have exported here and a new user has not.
USER_SETTINGS = (
    "ADMIN_TOKEN",
    "CANARY_BIND",
    "CANARY_TOOLS_BIND",
    "MODEL_NAME",
    "MLFLOW_TRACKING_URI",
    "ANALYSIS_CONFIG",
    "LOADGEN_DATA",
    "LOADGEN_ROWS",
)


class Compose:
    def __init__(self, prefix: str, files: tuple[Path, ...] = (), **env):
        self.project = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.files = (ROOT / "docker-compose.yml", *files)
        self.ports = {name: free_port() for name in PORT_KEYS}
        base = {k: v for k, v in os.environ.items() if k not in USER_SETTINGS}
        self.env = dict(
            base,
            COMPOSE_PROJECT_NAME=self.project,
            **{k: str(v) for k, v in self.ports.items()},
            **{k: str(v) for k, v in env.items()},
        )

    def run(self, *args, check=True, timeout=900, capture=True, env=None):
        files = [arg for path in self.files for arg in ("-f", str(path))]
        cmd = ["docker", "compose", "-p", self.project, *files, *args]
        return subprocess.run(
            cmd,
            env=dict(self.env, **(env or {})),
            cwd=ROOT,
            check=check,
            timeout=timeout,
            capture_output=capture,
            text=True,
        )

    def url(self, key):
        return f"http://127.0.0.1:{self.ports[key]}"

    def canaryctl(self, *args):
        out = self.run("run", "--rm", "-T", "canaryctl", *args, check=False)
        return out.returncode, out.stdout + out.stderr

    @contextmanager
    def up(self, services: list[str], log_dir: Path):
        """Build and start `services` (waiting until healthy); logs to log_dir, then down -v."""
        started = time.monotonic()
        self.run("build", *services, capture=False)
        print(f"images built in {time.monotonic() - started:.0f}s")
        try:
            self.up_at = time.monotonic()
            self.run("up", "-d", "--wait", "--wait-timeout", "400", *services, capture=False)
            yield self
        finally:
            logs = self.run("logs", "--no-color", "--timestamps", check=False)
            log_dir.mkdir(parents=True, exist_ok=True)
            (log_dir / "compose.log").write_text(logs.stdout + logs.stderr)
            print(f"every service's log: {log_dir / 'compose.log'}; the last lines:")
            print(logs.stdout[-8000:])
            self.run("down", "-v", "--remove-orphans", check=False, capture=False)


def wait_for(predicate, timeout, what, interval=1.0, errors: tuple = (requests.RequestException,)):
    """The predicate's first truthy value; `errors` raised by it mean "not yet"."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except errors as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} ({last})")
