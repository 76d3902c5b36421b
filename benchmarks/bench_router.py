"""What the router costs: nginx straight to the model servers vs nginx -> router -> model servers.

    python benchmarks/bench_router.py [--quick] [--profile]

Starts real processes on loopback: MLflow, the trained models (model_setup), the production and
canary model servers (gunicorn), the router (gunicorn) and one nginx with two servers of the same
minimal config: (a) "direct" splits 80/20 itself (split_clients) over keep-alive upstreams to the
two model servers; (b) "routed" proxies to the router (weight 20 from the registry). wrk (POST via
a Lua script) measures, alternating a/b at each step:
  - throughput at rising concurrency: each side's peak requests/s (each level twice, the
    order alternating, the better run kept: noise only ever slows a run down);
  - latency at half the direct peak rate: wrk with a per-connection Lua delay (an approximately
    fixed rate; wrk2 is not available), p50 and p99 of both sides.
The last line is one JSON object. Not a timed test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The test suite's process helpers: `make bench-router` puts tests/ on PYTHONPATH.
from support.models import setup_models, start_model_server
from support.procs import Proc, free_port, start_mlflow

ROOT = Path(__file__).resolve().parents[1]


DEFAULT_ROUTER_CLASS = "canary_router.datapath.worker.ConnectionThreadWorker"  # as in router/gunicorn.conf.py
BODY = '{"text": "a wonderful, moving film with a weak ending"}'

NGINX_CONF = """
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    upstream production {{ server {prod}; keepalive 64; }}
    upstream canary {{ server {canary}; keepalive 64; }}
    upstream router {{ server {router}; keepalive 64; }}
    split_clients "${{request_id}}" $arm {{ 20% canary; * production; }}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server {{ listen 127.0.0.1:{direct_port}; location /predict {{ proxy_pass http://$arm; }} location / {{ return 404; }} }}
    server {{ listen 127.0.0.1:{routed_port}; location /predict {{ proxy_pass http://router; }} location / {{ return 404; }} }}
}}
"""

LUA = """
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "0")
function delay() return pause end
"""


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def _ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)$", value)
    number, unit = float(m.group(1)), m.group(2)
    return number / 1000.0 if unit == "us" else number * 1000.0 if unit == "s" else number


def wrk(url: str, lua: Path, connections: int, duration_s: float, delay_ms: float = 0.0) -> dict:
    env = dict(os.environ, WRK_DELAY_MS=f"{delay_ms:.3f}")
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration_s:g}s", "--latency", "-s", str(lua), url],
        capture_output=True,
        text=True,
        env=env,
        timeout=duration_s + 30,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    done = re.search(r"(\d+) requests in", out)
    pct = {int(p): _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps,
        "requests": int(done.group(1)) if done else 0,
        "p50_ms": pct.get(50),
        "p99_ms": pct.get(99),
        "non2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--profile", action="store_true", help="py-spy a router worker during a routed run")
    parser.add_argument("--router-workers", type=int, default=2)
    parser.add_argument("--router-threads", type=int, default=4)
    parser.add_argument(
        "--router-class",
        default="",
        help="gunicorn worker class of the router (default: router/gunicorn.conf.py's, "
        "canary_router.datapath.worker.ConnectionThreadWorker); e.g. gthread to compare",
    )
    parser.add_argument("--model-workers", type=int, default=2)
    parser.add_argument("--model-threads", type=int, default=4, help="threads per model-server worker")
    parser.add_argument(
        "--serve",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="start everything, print the two URLs, keep serving this long (for profiling)",
    )
    args = parser.parse_args()
    # Stopped by a signal, still stop what we started (the `finally` below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not shutil.which("wrk") or not shutil.which("nginx"):
        log("needs wrk and nginx on PATH")
        return 2
    duration = 4 if args.quick else 8
    levels = [4, 16, 32] if args.quick else [4, 8, 16, 32, 64]
    work = Path(tempfile.mkdtemp(prefix="bench-router-"))
    procs: list[Proc] = []
    try:
        mlflow, ml_url = start_mlflow(work)
        procs.append(mlflow)
        log("training and registering the models")
        setup_models(ml_url, work)
        prod, prod_url = start_model_server(
            ml_url, "production", work, workers=args.model_workers, threads=args.model_threads
        )
        procs.append(prod)
        canary, canary_url = start_model_server(
            ml_url, "canary", work, workers=args.model_workers, threads=args.model_threads
        )
        procs.append(canary)
        router_port = free_port()
        (work / "router-prom").mkdir()
        router = Proc(
            "router",
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "router/gunicorn.conf.py")],
            work,
            env={
                "ROUTER_BIND": f"127.0.0.1:{router_port}",
                "ROUTER_WORKERS": args.router_workers,
                "ROUTER_THREADS": args.router_threads,
                "ROUTER_WORKER_CLASS": args.router_class or DEFAULT_ROUTER_CLASS,
                "PROMETHEUS_MULTIPROC_DIR": work / "router-prom",
                "MLFLOW_TRACKING_URI": ml_url,
                "PRODUCTION_URL": prod_url,
                "CANARY_URL": canary_url,
                "FEEDBACK_SECRET": "bench",
                "ROUTER_LOG_LEVEL": "warning",
            },
        ).start()
        procs.append(router)
        router.wait_http(f"http://127.0.0.1:{router_port}/ready", timeout=60)
        direct_port, routed_port = free_port(), free_port()
        prefix = work / "nginx"
        (prefix / "tmp").mkdir(parents=True)
        (prefix / "nginx.conf").write_text(
            NGINX_CONF.format(
                prefix=prefix,
                prod=prod_url.split("//")[1],
                canary=canary_url.split("//")[1],
                router=f"127.0.0.1:{router_port}",
                direct_port=direct_port,
                routed_port=routed_port,
            )
        )
        nginx = Proc("nginx", ["nginx", "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf")], work).start()
        procs.append(nginx)
        lua = work / "post.lua"
        lua.write_text(LUA.format(body=BODY))
        urls = {
            "direct": f"http://127.0.0.1:{direct_port}/predict",
            "routed": f"http://127.0.0.1:{routed_port}/predict",
        }
        for side in urls:
            nginx.wait_http(urls[side].replace("/predict", "/nope"), timeout=10, status=404)
            wrk(urls[side], lua, 4, 2)  # warm-up: connections, caches, lazy imports
        if args.serve:
            print(json.dumps({**urls, "router_pid": router.popen.pid, "lua": str(lua)}), flush=True)
            time.sleep(args.serve)
            return 0
        router_desc = (
            f"{args.router_workers}x{args.router_threads} gthread"
            if args.router_class == "gthread"
            else f"{args.router_workers} workers {(args.router_class or DEFAULT_ROUTER_CLASS).rsplit('.', 1)[-1]}"
        )
        log(
            f"machine: {os.cpu_count()} cores; router {router_desc}, "
            f"model servers {args.model_workers}x{args.model_threads} each"
        )

        # Noise on a shared machine only ever slows a run down: each level runs `rounds` times,
        # alternating which side goes first, and each side keeps its best.
        rounds = 1 if args.quick else 2
        peak = {"direct": None, "routed": None}
        for c in levels:
            for r in range(rounds):
                for side in ("direct", "routed") if r % 2 == 0 else ("routed", "direct"):
                    res = wrk(urls[side], lua, c, duration)
                    log(
                        f"throughput c={c:<3} {side:6}: {res['rps']:8.1f} req/s p50 {res['p50_ms']:.2f} ms "
                        f"p99 {res['p99_ms']:.2f} ms non2xx {res['non2xx']} {res['socket_errors']}"
                    )
                    if peak[side] is None or res["rps"] > peak[side]["rps"]:
                        peak[side] = dict(res, connections=c)

        if args.profile:
            profile(router, urls["routed"], lua, peak["routed"]["connections"], work)

        # Latency at half the direct peak: 8 connections, each pausing so that together they
        # offer about that rate (the pause is not part of the measured latency).
        target = peak["direct"]["rps"] / 2
        conns = 8
        lat = {"direct": [], "routed": []}
        for r in range(2 if args.quick else 3):
            for side in ("direct", "routed") if r % 2 == 0 else ("routed", "direct"):
                base = lat[side][-1]["p50_ms"] if lat[side] else 2.0
                delay_ms = max(0.0, conns * 1000.0 / target - base)
                res = wrk(urls[side], lua, conns, duration, delay_ms)
                lat[side].append(res)
                log(
                    f"latency at ~{target:.0f} req/s {side:6}: {res['rps']:8.1f} req/s p50 {res['p50_ms']:.2f} ms "
                    f"p99 {res['p99_ms']:.2f} ms"
                )
        # Each side's best p50 and best p99 over its runs (noise only ever adds latency).
        best = {side: {q: min(run[q] for run in runs) for q in ("p50_ms", "p99_ms")} for side, runs in lat.items()}
        result = {
            "direct_rps": round(peak["direct"]["rps"], 1),
            "routed_rps": round(peak["routed"]["rps"], 1),
            "throughput_ratio": round(peak["routed"]["rps"] / peak["direct"]["rps"], 3),
            "added_p50_ms": round(best["routed"]["p50_ms"] - best["direct"]["p50_ms"], 3),
            "added_p99_ms": round(best["routed"]["p99_ms"] - best["direct"]["p99_ms"], 3),
            "latency_rate_rps": round(target, 1),
            "direct_peak_connections": peak["direct"]["connections"],
            "routed_peak_connections": peak["routed"]["connections"],
            "cores": os.cpu_count(),
            "router": router_desc,
            "model_servers": f"{args.model_workers}x{args.model_threads} gthread",
        }
        print(json.dumps(result), flush=True)
        return 0
    finally:
        # A second SIGTERM (e.g. from `timeout` and pkill both) must not cut the cleanup short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for p in reversed(procs):
            p.stop()
        log(f"logs in {work}")


def profile(router: Proc, url: str, lua: Path, connections: int, work: Path) -> None:
    """py-spy on the router's workers while wrk drives it; prints the hottest frames."""
    if not shutil.which("py-spy"):
        log("py-spy not installed: skipping the profile")
        return
    children = subprocess.run(["pgrep", "-P", str(router.popen.pid)], capture_output=True, text=True).stdout.split()
    out = work / "router-profile.txt"
    spy = subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            children[0],
            "--duration",
            "8",
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wrk(url, lua, connections, 9)
    spy.wait(30)
    totals: dict[str, int] = {}
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        for frame in set(stack.split(";")):
            totals[frame] = totals.get(frame, 0) + int(count)
    samples = sum(int(line.rpartition(" ")[2]) for line in out.read_text().splitlines())
    log(f"profile of one router worker ({samples} samples), inclusive share of the hottest frames:")
    for frame, n in sorted(totals.items(), key=lambda kv: -kv[1])[:40]:
        log(f"  {100.0 * n / samples:5.1f}%  {frame[:140]}")


if __name__ == "__main__":
    sys.exit(main())
