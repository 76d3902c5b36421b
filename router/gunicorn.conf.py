"""gunicorn settings for the router: `gunicorn -c router/gunicorn.conf.py` (the app is named below).

Workers give each client connection its own thread (canary_router/datapath/worker.py): the clients are
nginx's few, busy keep-alive connections, and a thread that reads its connection's next request
itself costs a third less CPU per prediction than gunicorn's gthread hand-offs. A slow model
server stalls only the connections waiting on it. Knobs come from the environment.
"""

import glob
import os
import secrets
import sys


def _env(*names, default):
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    return default


bind = _env("ROUTER_BIND", default=f"{_env('HOST', default='0.0.0.0')}:{_env('PORT', default='8000')}")
workers = int(_env("ROUTER_WORKERS", "WORKERS", default="2"))
worker_class = _env("ROUTER_WORKER_CLASS", default="canary_router.datapath.worker.ConnectionThreadWorker")
# Connections (so requests in flight) per worker; past it, the longest-idle kept one is closed
# to make room, or new ones wait in the backlog if all are busy.
worker_connections = int(_env("ROUTER_MAX_CONNECTIONS", default="64"))
threads = int(_env("ROUTER_THREADS", "THREADS", default="4"))  # gthread only (ROUTER_WORKER_CLASS=gthread)
timeout = int(os.environ.get("ROUTER_WORKER_TIMEOUT_S", "30"))
# SIGTERM: stop accepting, finish the requests in flight for up to this long (then nginx sends
# the next ones to another replica). Keep it above BACKEND_TIMEOUT_S.
graceful_timeout = int(os.environ.get("ROUTER_GRACEFUL_TIMEOUT_S", "10"))
keepalive = int(os.environ.get("ROUTER_KEEPALIVE_S", "5"))
accesslog = os.environ.get("ROUTER_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("ROUTER_LOG_LEVEL", "info")
preload_app = False  # the app (and its threads) must be built in each worker, after the fork
wsgi_app = "canary_router:create_app()"
# Not needed, and replicas sharing a host (tests) would fight over its one default path.
control_socket_disable = True
# The workers' heartbeat file, touched on every loop: in memory, not on a container's overlay disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


# One secret for all workers of this replica when none is configured (a dev run): request ids
# then verify on this replica only, and not after its restart. Set FEEDBACK_SECRET for a fleet.
if not os.environ.get("FEEDBACK_SECRET"):
    os.environ["FEEDBACK_SECRET"] = secrets.token_hex(32)
    print(
        "router: FEEDBACK_SECRET is not set; generated one for this replica only: POST /feedback "
        "works only on the replica that issued the id, and not after a restart",
        file=sys.stderr,
    )


def on_starting(server):
    # Files of a previous run would be summed in as if its workers were still here.
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for path in glob.glob(os.path.join(directory, "*.db")) + glob.glob(os.path.join(directory, "*.json")):
            os.remove(path)


def post_worker_init(worker):
    # Start the state follower in the worker (never in the master) and read the state once
    # before serving, so a fresh worker is /ready and routes with the real weight at once.
    worker.wsgi.extensions["canary_router"].start(first_read=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
