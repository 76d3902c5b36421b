"""Real processes on loopback ports for the tests: start, wait until ready, stop, keep logs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process with its log file; `stop()` ends its whole process group."""

    def __init__(self, name: str, cmd: list[str], log_dir: Path, env: dict | None = None, cwd: Path | None = None):
        self.name = name
        self.cmd = cmd
        self.log_path = Path(log_dir) / f"{name}.log"
        full_env = dict(os.environ)
        full_env.update({k: str(v) for k, v in (env or {}).items()})
        self.env = full_env
        self.cwd = cwd or ROOT
        self.popen: subprocess.Popen | None = None

    def start(self) -> Proc:
        self.log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd, start_new_session=True
        )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_http(self, url: str, timeout: float = 60.0, status: int = 200) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited ({self.popen.returncode}); log:\n{self.tail()}")
            try:
                resp = requests.get(url, timeout=2)
                if resp.status_code == status:
                    return
                last = f"HTTP {resp.status_code}"
            except requests.RequestException as exc:
                last = exc
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready at {url} after {timeout}s ({last}); log:\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(5)
        finally:
            self.log.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def python_cmd(*args: str) -> list[str]:
    return [sys.executable, *args]


def start_mlflow(log_dir: Path, port: int | None = None) -> tuple[Proc, str]:
    """A real MLflow tracking server with a SQLite backend and served artifacts."""
    port = port or free_port()
    data = Path(log_dir) / "mlflow-data"
    data.mkdir(parents=True, exist_ok=True)
    proc = Proc(
        "mlflow",
        python_cmd(
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{data}/mlflow.db",
            "--artifacts-destination",
            str(data / "artifacts"),
            "--serve-artifacts",
            "--workers",
            "1",
        ),
        log_dir,
        env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    ).start()  # as in mlflow/serve.sh
    url = f"http://127.0.0.1:{port}"
    proc.wait_http(url + "/health", timeout=120)
    return proc, url
