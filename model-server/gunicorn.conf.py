"""Gunicorn settings for the model server (`gunicorn -c gunicorn.conf.py`)."""

import os
import shutil
import tempfile

wsgi_app = "model_server.wsgi:app"
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("THREADS", "4"))
timeout = 30  # a worker silent this long is restarted
graceful_timeout = 10
keepalive = 5
accesslog = None  # the metrics count requests; access lines would drown the model logs
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# One default control socket path per host: several servers side by side (tests) would clash.
control_socket_disable = True
# The workers' heartbeat file, touched on every loop: in memory, not on a container's overlay disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Files the workers share. Set here, in the master, so that every forked worker inherits them.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="model-server-prom-")
if not os.environ.get("FAULTS_FILE"):
    os.environ["FAULTS_FILE"] = os.path.join(tempfile.mkdtemp(prefix="model-server-faults-"), "faults.json")


def on_starting(server):
    # Metric files of an earlier run would be summed into this one's; old faults would linger.
    prom_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(prom_dir, ignore_errors=True)
    os.makedirs(prom_dir, exist_ok=True)
    try:
        os.remove(os.environ["FAULTS_FILE"])
    except FileNotFoundError:
        pass


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
