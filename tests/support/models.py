"""Registered model versions and model servers for tests, as real processes."""

from __future__ import annotations

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from support.procs import ROOT, Proc, free_port, python_cmd


def setup_models(mlflow_url: str, log_dir, model_name: str = "sentiment", timeout: float = 180) -> str:
    """Run `python -m model_setup` against the server; returns its log, raises if it failed."""
    log_path = Path(log_dir) / "model-setup.log"
    env = dict(
        os.environ,
        MLFLOW_TRACKING_URI=mlflow_url,
        MODEL_NAME=model_name,
        MLFLOW_WAIT_S="60",
    )
    result = subprocess.run(
        python_cmd("-m", "model_setup"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    output = result.stdout + result.stderr
    with open(log_path, "a") as fh:
        fh.write(output)
    if result.returncode != 0:
        raise RuntimeError(f"model_setup exited {result.returncode}:\n{output[-4000:]}")
    return output


def start_model_server(
    mlflow_url: str,
    alias: str,
    log_dir,
    workers: int = 2,
    model_name: str = "sentiment",
    alias_poll_s: float = 1.0,
    port: int | None = None,
    name: str | None = None,
    timeout: float = 90,
    threads: int = 4,
) -> tuple[Proc, str]:
    """The model server under real gunicorn on a loopback port, waited for until /ready is 200."""
    port = port or free_port()
    log_dir = Path(log_dir)
    scratch = log_dir / f"model-server-{alias}-{port}"
    (scratch / "prom").mkdir(parents=True, exist_ok=True)
    env = {
        "MLFLOW_TRACKING_URI": mlflow_url,
        "MODEL_NAME": model_name,
        "MODEL_ALIAS": alias,
        "ALIAS_POLL_S": alias_poll_s,
        "HOST": "127.0.0.1",
        "PORT": port,
        "WORKERS": workers,
        "THREADS": threads,
        "PROMETHEUS_MULTIPROC_DIR": scratch / "prom",
        "FAULTS_FILE": scratch / "faults.json",
    }
    proc = Proc(
        name or f"model-server-{alias}",
        python_cmd("-m", "gunicorn", "-c", str(ROOT / "model-server" / "gunicorn.conf.py")),
        log_dir,
        env=env,
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        proc.wait_http(url + "/ready", timeout=timeout)
        _wait_all_workers_ready(proc, url, workers, timeout)
    except Exception:
        proc.stop()
        raise
    return proc, url


def _wait_all_workers_ready(proc: Proc, url: str, workers: int, timeout: float) -> None:
    """Each worker loads its own model, and one worker may take most connections, so ask in
    concurrent bursts until every worker (told apart by X-Worker-Pid) has answered ready."""
    deadline = time.monotonic() + timeout
    ready_pids: set[str] = set()

    def ask(_):
        try:
            resp = requests.get(url + "/ready", timeout=5)
            return resp.headers.get("X-Worker-Pid") if resp.status_code == 200 else None
        except requests.RequestException:
            return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        while len(ready_pids) < workers:
            if time.monotonic() > deadline or not proc.alive():
                raise TimeoutError(f"{proc.name}: {len(ready_pids)} of {workers} workers ready; log:\n{proc.tail()}")
            ready_pids.update(p for p in pool.map(ask, range(16)) if p)
            time.sleep(0.1)
