"""The router's Prometheus metrics (names and labels fixed in docs/contracts.md).

In gunicorn every worker writes its own files under PROMETHEUS_MULTIPROC_DIR and /metrics merges
them, so a scrape sees the whole replica whichever worker answers it. Without that variable
(a single dev process, unit tests) the default in-process registry is used.
"""
from __future__ import annotations

import os

from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge,
                               Histogram, generate_latest)
from prometheus_client import multiprocess

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5)

REQUESTS = Counter("canary_router_requests_total", "Backend attempts per arm, version and outcome.",
                   ["model", "version", "status"])
FALLBACKS = Counter("canary_router_fallbacks_total", "Canary failures answered by production.")
DURATION = Histogram("canary_router_request_duration_seconds", "Duration of successful backend calls.",
                     ["model", "version"], buckets=BUCKETS)
LABELLED = Counter("canary_router_labelled_predictions_total",
                   "Predictions whose true label was given, by outcome.", ["model", "version", "outcome"])
# mostrecent: the newest write from any worker wins, which is the state just read from the registry.
WEIGHT = Gauge("canary_router_canary_weight_ratio", "Canary share actually applied (0..1).",
               multiprocess_mode="mostrecent")
# livemax: 1 if any live worker is failing closed; a dead worker's value is dropped.
FAIL_CLOSED = Gauge("canary_router_fail_closed", "1 while the router sends everything to production "
                    "because it cannot confirm the rollout state.", multiprocess_mode="livemax")
RESPONSES = Counter("canary_router_responses_total", "Responses by HTTP status code.", ["code"])


def multiproc_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def collect():
    """Metric families for this replica: all workers' files, or this process alone."""
    if multiproc_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry.collect()
    return REGISTRY.collect()


def exposition() -> tuple[bytes, str]:
    if multiproc_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
