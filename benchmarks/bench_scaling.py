"""What changes at scale, measured on one machine with real processes (docs/scaling.md).

    PYTHONPATH=tests python benchmarks/bench_scaling.py [--quick] [--fanout 1,3,10,30] [--replicas 1,2,4]

Starts MLflow, trains and registers the demo models, starts the production and canary model
servers (gunicorn, 2 workers each), then:

  1. throughput: 1, 2 and 4 router replicas (gunicorn, 2 workers each, as shipped) behind one nginx
     rendered by nginx/entrypoint.sh (one upstream of all of them); wrk drives POST /predict through
     the edge for a fixed time at a few connection counts, in two rounds (1 2 4, then 4 2 1), and
     each replica count keeps its best run by answered requests/s: p50/p99, non-2xx and socket
     errors, what the routers answered, the CPU per request of the routers, the model servers and
     nginx (read from /proc), and how busy the whole machine was.
  2. /stats fan-out: N routers (1 worker each) that list each other in ROUTER_PEERS, some traffic to
     each, then 50 sequential GET /stats on one of them: latency p50/p95/max and the CPU the whole
     fleet spent per call (its idle CPU over the same time taken off). N=1 is a lone replica (no
     peers), the baseline. At the largest N, Prometheus (prometheus/process.yml, 1 s scrapes) scrapes
     the same fleet, and the same figures are read with PromQL instead: its latency, and the CPU
     the scrapes cost the routers.

Every process is stopped at the end, even on failure or timeout (--max-seconds). Traffic only to
127.0.0.1. The last line is one JSON object; ratios are against the 1-replica figures of the same
run. Not a timed test: the figures depend on the machine (and on what else it runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from bench_router import BODY, LUA, log, wrk

from canary_common import contracts as c
from support import edge, promconfig
from support.models import setup_models, start_model_server
from support.procs import Proc, free_port, start_mlflow
from support.router_standins import start_router
from support.stack import prometheus_binary

CLK_TCK = os.sysconf("SC_CLK_TCK")
SECRET = "bench-scaling"
# The figures /stats shows, from Prometheus: counts summed over every replica (and worker), the
# p95 from the summed buckets. The same label sets /stats sums (api/stats.py, raw_counts).
PROMQL = {
    "requests": f"sum by (model, version, status) ({c.ROUTER_REQUESTS})",
    "labelled": f"sum by (model, version, outcome) ({c.ROUTER_LABELLED})",
    "p95_s": f"histogram_quantile(0.95, sum by (model, le) ({c.ROUTER_DURATION}_bucket))",
}


# -- CPU and memory from /proc ----------------------------------------------------------------------
def _group_pids(pgids: set[int]) -> list[int]:
    """Every live process whose process group is one of `pgids` (Proc starts each in its own)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids:  # fields after "(comm)": state ppid pgrp ...
            pids.append(int(entry))
    return pids


def cpu_seconds(procs: list[Proc]) -> float:
    """User + system CPU of the processes (gunicorn masters and workers, nginx workers) so far."""
    total = 0
    for pid in _group_pids({p.popen.pid for p in procs}):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def rss_mib(procs: list[Proc]) -> float:
    total_kib = 0
    for pid in _group_pids({p.popen.pid for p in procs}):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    total = sum(values[:8])
    return total - idle, total


def percentiles(samples_ms: list[float]) -> dict:
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50_ms": round(statistics.median(ordered), 2), "p95_ms": at(0.95), "max_ms": round(ordered[-1], 2)}


# -- starting things ---------------------------------------------------------------------------------
def start_routers(
    count: int, tag: str, work: Path, ends: dict, procs: list, workers: int = 2, peered: bool = False
) -> list[str]:
    """`count` routers started in parallel, each added to `procs`; with `peered`, each lists all of
    them in ROUTER_PEERS (as compose's dns:router:8000 does). Returns their URLs."""
    ports = [free_port() for _ in range(count)]
    env = {"ROUTER_PEERS": ",".join(f"http://127.0.0.1:{p}" for p in ports)} if peered and count > 1 else {}

    def one(i: int) -> str:
        proc, url = start_router(
            f"{tag}-router-{i}",
            work,
            mlflow_url=ends["mlflow"],
            production_url=ends["production"],
            canary_url=ends["canary"],
            port=ports[i],
            workers=workers,
            timeout=180,
            FEEDBACK_SECRET=SECRET,
            ROUTER_LOG_LEVEL="warning",
            STATE_POLL_S=1,  # the shipped default
            **env,
        )
        procs.append(proc)
        return url

    with ThreadPoolExecutor(max_workers=min(count, 8)) as pool:
        return list(pool.map(one, range(count)))


def start_edge(router_urls: list[str], work: Path, tag: str) -> tuple[Proc, str]:
    """The project's edge (nginx/entrypoint.sh's rendering), one upstream of these routers."""
    port = free_port()
    prefix = work / f"{tag}-nginx"
    prefix.mkdir()
    conf = edge.render(
        [u.split("//", 1)[1] for u in router_urls],
        f"127.0.0.1:{free_port()}",  # no controller: /controller/* is not used here
        public_port=port,
        access_log="/dev/null",
        worker_processes="auto",
    )
    (prefix / "nginx.conf").write_text(conf)
    proc = Proc(f"{tag}-nginx", ["nginx", "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf")], work).start()
    url = f"http://127.0.0.1:{port}"
    proc.wait_http(url + "/health", timeout=30)
    return proc, url


def stop_all(procs: list[Proc]) -> None:
    for p in reversed(procs):
        p.stop()
    procs.clear()


# -- 1. throughput at 1, 2, 4 replicas ---------------------------------------------------------------
def throughput(replicas: int, tag: str, args, work: Path, ends: dict, models: list[Proc]) -> dict:
    procs: list[Proc] = []
    try:
        urls = start_routers(replicas, f"tp{replicas}-{tag}", work, ends, procs, peered=True)
        routers = list(procs)
        nginx, edge_url = start_edge(urls, work, f"tp{replicas}-{tag}")
        procs.append(nginx)
        lua = work / "post.lua"
        lua.write_text(LUA.format(body=BODY))
        wrk(edge_url + "/predict", lua, 8, 3)  # warm-up: connections, lazy imports, every worker
        best = None
        for conns in args.levels:
            codes = responses(edge_url)
            before = (cpu_seconds(routers), cpu_seconds(models), cpu_seconds([nginx]), machine_busy())
            res = wrk(edge_url + "/predict", lua, conns, args.duration)
            after = (cpu_seconds(routers), cpu_seconds(models), cpu_seconds([nginx]), machine_busy())
            # What the routers answered (the fleet's /stats), so a non-2xx is told apart: the
            # router's own (a model server too slow: 504) or nginx's (no router answered).
            codes = {k: v - codes.get(k, 0) for k, v in responses(edge_url).items() if v - codes.get(k, 0)}
            n = max(1, res["requests"])
            busy = (after[3][0] - before[3][0]) / max(1, after[3][1] - before[3][1])
            res.update(
                ok_rps=round(res["rps"] * (n - res["non2xx"]) / n, 1),
                router_responses=codes,
                connections=conns,
                router_cpu_ms_per_req=round(1000 * (after[0] - before[0]) / n, 3),
                model_cpu_ms_per_req=round(1000 * (after[1] - before[1]) / n, 3),
                nginx_cpu_ms_per_req=round(1000 * (after[2] - before[2]) / n, 3),
                router_cores=round((after[0] - before[0]) / args.duration, 2),
                machine_busy_pct=round(100 * busy, 1),
            )
            log(
                f"{replicas} replica(s), c={conns:<3}: {res['rps']:8.1f} req/s p50 {res['p50_ms']:.2f} ms "
                f"p99 {res['p99_ms']:.2f} ms non2xx {res['non2xx']} {res['socket_errors']}; router CPU "
                f"{res['router_cpu_ms_per_req']} ms/req ({res['router_cores']} cores), model servers "
                f"{res['model_cpu_ms_per_req']}, nginx {res['nginx_cpu_ms_per_req']}; machine "
                f"{res['machine_busy_pct']} % busy; router answers {codes}"
            )
            if best is None or res["ok_rps"] > best["ok_rps"]:  # answered requests, not fast errors
                best = res
        return {"replicas": replicas, **best}
    finally:
        stop_all(procs)


def responses(edge_url: str) -> dict:
    """The fleet's answers so far by HTTP status (all replicas: they list each other)."""
    return requests.get(edge_url + "/stats", timeout=30).json()["totals"]["responses"]


# -- 2. /stats fan-out at N replicas -----------------------------------------------------------------
def fanout(n: int, args, work: Path, ends: dict, mlflow: Proc, with_prometheus: bool) -> dict:
    procs: list[Proc] = []
    try:
        urls = start_routers(n, f"fan{n}", work, ends, procs, workers=1, peered=True)
        routers = list(procs)
        # Some traffic on every replica, half of it labelled, so each has both arms' series.
        per_router = args.predictions_per_router
        with requests.Session() as http:
            for url in urls:
                for i in range(per_router):
                    body = {"text": "a wonderful, moving film" if i % 2 else "a dull, tired plot"}
                    if i % 2 == 0:
                        body["actual_label"] = 1
                    http.post(url + "/predict", json=body, timeout=10).raise_for_status()
        time.sleep(1.0)
        rss = rss_mib(routers)
        # The fleet's idle CPU (state polls, heartbeats) over a few seconds, taken off below.
        t0, cpu0, ml0 = time.monotonic(), cpu_seconds(routers), cpu_seconds([mlflow])
        time.sleep(args.idle_window)
        idle_rate = (cpu_seconds(routers) - cpu0) / (time.monotonic() - t0)
        mlflow_rate = (cpu_seconds([mlflow]) - ml0) / (time.monotonic() - t0)  # the state polls
        latencies, answered, total = [], set(), None
        with requests.Session() as http:
            http.get(urls[0] + "/stats", timeout=30).raise_for_status()  # warm
            t0, cpu0 = time.monotonic(), cpu_seconds(routers)
            for _ in range(args.calls):
                start = time.perf_counter()
                resp = http.get(urls[0] + "/stats", timeout=30)
                latencies.append(1000 * (time.perf_counter() - start))
                resp.raise_for_status()
                summary = resp.json()
                answered.add(summary["replicas"]["answered"])
                total = summary["totals"]["requests"]
            elapsed = time.monotonic() - t0
            spent = cpu_seconds(routers) - cpu0
        out = {
            "replicas": n,
            **percentiles(latencies),
            "fleet_cpu_ms_per_call": round(1000 * max(0.0, spent - idle_rate * elapsed) / args.calls, 2),
            "fleet_idle_cpu_pct": round(100 * idle_rate, 1),
            "mlflow_idle_cpu_pct": round(100 * mlflow_rate, 1),
            "routers_rss_mib": round(rss),
            "answered": sorted(answered),
            "requests_counted": total,
            "requests_sent": n * per_router,
        }
        log(
            f"/stats at {n:>2} replica(s): p50 {out['p50_ms']} ms p95 {out['p95_ms']} ms max {out['max_ms']} ms, "
            f"{out['fleet_cpu_ms_per_call']} ms fleet CPU per call (idle fleet {out['fleet_idle_cpu_pct']} % of a "
            f"core, MLflow {out['mlflow_idle_cpu_pct']} %), answered {out['answered']}, counted {total} of {n * per_router}, RSS {out['routers_rss_mib']} MiB"
        )
        if with_prometheus:
            out["prometheus"] = prometheus_side(urls, routers, args, work, expected=n * per_router)
        return out
    finally:
        stop_all(procs)


def prometheus_side(urls: list[str], routers: list[Proc], args, work: Path, expected: int) -> dict:
    """The same figures from Prometheus scraping the same fleet (1 s scrapes, process.yml)."""
    procs: list[Proc] = []
    try:
        port = free_port()
        cfg = promconfig.prepare(work / "prometheus", {"router": [u.split("//", 1)[1] for u in urls]})
        data = work / "prometheus-data"
        data.mkdir()
        prom = Proc(
            "prometheus",
            [
                prometheus_binary(),
                f"--config.file={cfg}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            work,
        ).start()
        procs.append(prom)
        base = f"http://127.0.0.1:{port}"
        prom.wait_http(base + "/-/ready", timeout=60)
        http = requests.Session()

        def query(expr: str) -> list:
            resp = http.get(base + "/api/v1/query", params={"query": expr}, timeout=10)
            resp.raise_for_status()
            return resp.json()["data"]["result"]

        def counted() -> float:
            return sum(float(r["value"][1]) for r in query(PROMQL["requests"]) if r["metric"]["status"] == "ok")

        deadline = time.monotonic() + 60
        while counted() < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Prometheus did not see the {expected} requests within 60 s")
            time.sleep(1)
        # What the 1 s scrapes cost the fleet (each scrape reads a replica's metric files, as a
        # /stats/local does), against the idle rate measured the same way just before Prometheus.
        time.sleep(2)
        t0, cpu0 = time.monotonic(), cpu_seconds(routers)
        time.sleep(args.idle_window)
        scraped_rate = (cpu_seconds(routers) - cpu0) / (time.monotonic() - t0)
        latencies = []
        t0, cpu0 = time.monotonic(), cpu_seconds([prom])
        for _ in range(args.calls):
            start = time.perf_counter()
            for expr in PROMQL.values():
                query(expr)
            latencies.append(1000 * (time.perf_counter() - start))
        prom_cpu = (cpu_seconds([prom]) - cpu0) / args.calls
        out = {
            **percentiles(latencies),
            "queries_per_call": len(PROMQL),
            "prometheus_cpu_ms_per_call": round(1000 * prom_cpu, 2),
            "fleet_cpu_pct_while_scraped": round(100 * scraped_rate, 1),
            "requests_counted": counted(),
        }
        log(
            f"PromQL at {len(urls)} replicas: p50 {out['p50_ms']} ms p95 {out['p95_ms']} ms max {out['max_ms']} ms "
            f"({len(PROMQL)} queries), {out['prometheus_cpu_ms_per_call']} ms Prometheus CPU per call; fleet "
            f"{out['fleet_cpu_pct_while_scraped']} % of a core while scraped every 1 s"
        )
        return out
    finally:
        stop_all(procs)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short runs, small sizes (a smoke test)")
    parser.add_argument("--replicas", default="1,2,4", help="router replica counts for the throughput run")
    parser.add_argument("--fanout", default="1,3,10,30", help="router replica counts for /stats (1 = baseline)")
    parser.add_argument("--levels", default="16,32,64", help="wrk connection counts at each replica count")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of wrk per point")
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds over the replica counts")
    parser.add_argument("--calls", type=int, default=50, help="sequential /stats calls per replica count")
    parser.add_argument("--predictions-per-router", type=int, default=20)
    parser.add_argument("--idle-window", type=float, default=5.0, help="seconds to measure idle CPU")
    parser.add_argument("--skip", choices=["throughput", "fanout"], action="append", default=[])
    parser.add_argument("--max-seconds", type=int, default=1800, help="stop everything after this long")
    args = parser.parse_args()
    if args.quick:
        args.replicas, args.fanout, args.levels = "1,2", "1,3", "8"
        args.duration, args.calls, args.idle_window, args.rounds = 3.0, 10, 2.0, 1
    replica_counts = [int(x) for x in args.replicas.split(",")]
    fan_counts = [int(x) for x in args.fanout.split(",")]
    args.levels = [int(x) for x in str(args.levels).split(",")]
    if not shutil.which("wrk") or not shutil.which("nginx"):
        log("needs wrk and nginx on PATH (scripts/install-bench-deps.sh; nginx is in /usr/sbin)")
        return 2

    def give_up(*_):
        raise TimeoutError(f"--max-seconds {args.max_seconds} reached")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGALRM, give_up)
    signal.alarm(args.max_seconds)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    procs: list[Proc] = []
    try:
        mlflow, ml_url = start_mlflow(work)
        procs.append(mlflow)
        log("training and registering the models")
        setup_models(ml_url, work)
        prod, prod_url = start_model_server(ml_url, "production", work)
        procs.append(prod)
        canary, canary_url = start_model_server(ml_url, "canary", work)
        procs.append(canary)
        ends = {"mlflow": ml_url, "production": prod_url, "canary": canary_url}
        log(f"machine: {os.cpu_count()} cores; model servers 2x4 gthread each")
        result: dict = {"cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}

        if "throughput" not in args.skip:
            # Each replica count `rounds` times, the order reversed every other round (1 2 4 4 2 1):
            # noise on a shared machine only ever slows a run down, so each keeps its best.
            best: dict[int, dict] = {}
            for r in range(args.rounds):
                for k in replica_counts if r % 2 == 0 else replica_counts[::-1]:
                    row = throughput(k, f"r{r}", args, work, ends, [prod, canary])
                    if k not in best or row["ok_rps"] > best[k]["ok_rps"]:
                        best[k] = row
            rows = [best[k] for k in replica_counts]
            base = rows[0]
            for row in rows:
                row["ok_rps_ratio"] = round(row["ok_rps"] / base["ok_rps"], 3)
                row["router_cpu_per_req_ratio"] = round(
                    row["router_cpu_ms_per_req"] / max(1e-9, base["router_cpu_ms_per_req"]), 3
                )
            result["throughput"] = rows
            result["throughput_setup"] = (
                f"routers 2 workers each behind one nginx (worker_processes auto); wrk {args.duration:g} s per "
                f"point at {args.levels} connections, {args.rounds} rounds, best answered requests/s kept"
            )

        if "fanout" not in args.skip:
            rows = [fanout(n, args, work, ends, mlflow, with_prometheus=(n == max(fan_counts))) for n in fan_counts]
            base = rows[0]
            for row in rows:
                row["p50_ratio"] = round(row["p50_ms"] / base["p50_ms"], 2)
                row["cpu_ratio"] = round(row["fleet_cpu_ms_per_call"] / max(1e-9, base["fleet_cpu_ms_per_call"]), 2)
            result["stats_fanout"] = rows
            result["stats_setup"] = f"routers 1 worker each, {args.calls} sequential GET /stats on one of them"

        result["seconds"] = round(time.monotonic() - started)
        print(json.dumps(result), flush=True)
        return 0
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_all(procs)
        log(f"logs in {work}")


if __name__ == "__main__":
    sys.exit(main())
