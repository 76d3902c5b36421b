"""Prometheus metrics of the model server (names fixed in docs/contracts.md).

Gunicorn runs several worker processes, so the metrics use prometheus-client's multiprocess
mode when PROMETHEUS_MULTIPROC_DIR is set (gunicorn.conf.py sets it); /metrics then sums the
files of all workers.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from canary_common import contracts as c

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5)

REQUESTS = Counter(c.MODEL_SERVER_REQUESTS, "HTTP requests answered", ["alias", "version", "endpoint", "status"])
DURATION = Histogram(c.MODEL_SERVER_DURATION, "Time to answer a request", ["alias", "endpoint"], buckets=BUCKETS)
# livemax: a version shows 1 while at least one live worker still serves it.
MODEL_INFO = Gauge(
    c.MODEL_SERVER_MODEL_INFO, "The model version served (1)", ["alias", "version"], multiprocess_mode="livemax"
)
RELOADS = Counter(c.MODEL_SERVER_RELOADS, "Model loads by result", ["alias", "result"])
# Failed load attempts of one version (download, deserialisation, a missing dependency, ...).
LOAD_FAILURES = Counter(c.MODEL_SERVER_LOAD_FAILURES, "Failed loads of a model version", ["alias", "version"])
# 1 while the alias points at this version and (at least one live worker) could not load it;
# the worker goes on serving what it had. Back to 0 once loaded or once the alias moves away.
LOAD_ERROR = Gauge(
    c.MODEL_SERVER_LOAD_ERROR,
    "The alias points at a version that failed to load (1)",
    ["alias", "version"],
    multiprocess_mode="livemax",
)
# livemostrecent: every worker writes the same setting after reading the shared faults file.
FAULT_SETTING = Gauge(
    c.MODEL_SERVER_FAULT_SETTING, "Injected fault setting", ["alias", "kind"], multiprocess_mode="livemostrecent"
)


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
