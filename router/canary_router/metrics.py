"""The router's Prometheus metrics (names and labels fixed in docs/contracts.md).

In gunicorn every worker writes its own files under PROMETHEUS_MULTIPROC_DIR and /metrics merges
them, so a scrape sees the whole replica whichever worker answers it. Without that variable
(a single dev process, unit tests) the default in-process registry is used.
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
    multiprocess,
)

from canary_common import contracts as c
from canary_common.regression import ABS_ERROR_BUCKETS

# GET /metrics is the lab's JSON summary; Prometheus scrapes each replica here instead.
EXPOSITION_PATH = "/metrics/prometheus"

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5)

REQUESTS = Counter(c.ROUTER_REQUESTS, "Backend attempts per arm, version and outcome.", ["model", "version", "status"])
FALLBACKS = Counter(c.ROUTER_FALLBACKS, "Canary failures answered by production.")
DURATION = Histogram(
    c.ROUTER_DURATION,
    "Duration of successful backend calls.",
    ["model", "version"],
    buckets=BUCKETS,
)
LABELLED = Counter(
    c.ROUTER_LABELLED,
    "Predictions whose true label was given, by outcome.",
    ["model", "version", "outcome"],
)
# mostrecent: the newest write from any worker wins, which is the state just read from the registry.
WEIGHT = Gauge(c.ROUTER_WEIGHT, "Canary share actually applied (0..1).", multiprocess_mode="mostrecent")
# livemax: 1 if any live worker is failing closed; a dead worker's value is dropped.
FAIL_CLOSED = Gauge(
    c.ROUTER_FAIL_CLOSED,
    "1 while the router sends everything to production because it cannot confirm the rollout state.",
    multiprocess_mode="livemax",
)
# Outlier ejection (ejection.py), per arm: each time a worker stops sending to a model server,
# the requests it did not send there (a canary's go to production and count as canary errors;
# production's get a fast 503 and count as production errors), and whether a live worker has it out.
EJECTIONS = Counter(c.ROUTER_EJECTIONS, "Times a worker ejected a model server after consecutive failures.", ["model"])
EJECTED_REQUESTS = Counter(
    c.ROUTER_EJECTED_REQUESTS, "Predictions not sent to an ejected model server.", ["model", "version"]
)
EJECTED = Gauge(
    c.ROUTER_EJECTED,
    "1 while any worker of the replica has this model server ejected.",
    ["model"],
    multiprocess_mode="livemax",
)
RESPONSES = Counter(c.ROUTER_RESPONSES, "Responses by HTTP status code.", ["code"])

# Apart from the series above, so that testers' forced requests and shadow copies never reach
# the analysis (which reads requests_total, request_duration_seconds and labelled_predictions_total).
FORCED = Counter(
    c.ROUTER_FORCED,
    "Requests routed by X-Canary-Route (testers); never part of the analysis.",
    ["model", "version", "status"],
)
PREDICTED_CLASS = Counter(
    c.ROUTER_PREDICTED_CLASS,
    "Predicted classes: model is the arm that answered a user, or shadow.",
    ["model", "version", "class"],
)
SHADOW_REQUESTS = Counter(c.ROUTER_SHADOW_REQUESTS, "Shadow copies sent to the canary.", ["version", "status"])
SHADOW_DURATION = Histogram(
    c.ROUTER_SHADOW_DURATION, "Duration of successful shadow calls.", ["version"], buckets=BUCKETS
)
SHADOW_AGREEMENT = Counter(
    c.ROUTER_SHADOW_AGREEMENT,
    "Shadow predictions compared with production's answer.",
    ["version", "outcome"],
)
SHADOW_LABELLED = Counter(
    c.ROUTER_SHADOW_LABELLED,
    "Shadow predictions of labelled requests, by outcome against the label.",
    ["version", "outcome"],
)
SHADOW_DROPPED = Counter(
    c.ROUTER_SHADOW_DROPPED,
    "Shadow copies not sent because the worker's shadow queue was full.",
    ["version"],
)
SHADOW_RATIO = Gauge(
    c.ROUTER_SHADOW_RATIO,
    "Share of production requests copied to the canary (0..1).",
    multiprocess_mode="mostrecent",
)
# Regression: the absolute error |prediction - actual_value| of each valued prediction, with the
# contract's buckets (the analysis's within_tolerance and mae read them; canary_common.regression).
ABS_ERROR = Histogram(
    c.ROUTER_ABS_ERROR,
    "Absolute error of predictions that got an actual_value.",
    ["model", "version"],
    buckets=ABS_ERROR_BUCKETS,
)
SHADOW_ABS_ERROR = Histogram(
    c.ROUTER_SHADOW_ABS_ERROR,
    "Absolute error of shadow predictions of valued requests.",
    ["version"],
    buckets=ABS_ERROR_BUCKETS,
)
FEEDBACK = Counter(
    c.ROUTER_FEEDBACK,
    "POST /feedback answers by result (operations only; never read by the analysis).",
    ["result"],
)


_children: dict = {}
_MAX_CHILDREN = 10_000


def child(metric, *values):
    """metric.labels(*values), remembered: labels() validates and takes a lock on every call,
    which the prediction path pays several times per request. The label values are bounded
    (arms, versions, statuses, classes); the cap only guards against a misbehaving model server."""
    key = (metric, values)
    found = _children.get(key)
    if found is None:
        if len(_children) >= _MAX_CHILDREN:
            _children.clear()
        found = _children[key] = metric.labels(*values)
    return found


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
