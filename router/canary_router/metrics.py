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

from canary_common.regression import ABS_ERROR_BUCKETS, ABS_ERROR_METRIC, SHADOW_ABS_ERROR_METRIC

# GET /metrics is the lab's JSON summary; Prometheus scrapes each replica here instead.
EXPOSITION_PATH = "/metrics/prometheus"

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5)

REQUESTS = Counter(
    "canary_router_requests_total", "Backend attempts per arm, version and outcome.", ["model", "version", "status"]
)
FALLBACKS = Counter("canary_router_fallbacks_total", "Canary failures answered by production.")
DURATION = Histogram(
    "canary_router_request_duration_seconds",
    "Duration of successful backend calls.",
    ["model", "version"],
    buckets=BUCKETS,
)
LABELLED = Counter(
    "canary_router_labelled_predictions_total",
    "Predictions whose true label was given, by outcome.",
    ["model", "version", "outcome"],
)
# mostrecent: the newest write from any worker wins, which is the state just read from the registry.
WEIGHT = Gauge(
    "canary_router_canary_weight_ratio", "Canary share actually applied (0..1).", multiprocess_mode="mostrecent"
)
# livemax: 1 if any live worker is failing closed; a dead worker's value is dropped.
FAIL_CLOSED = Gauge(
    "canary_router_fail_closed",
    "1 while the router sends everything to production because it cannot confirm the rollout state.",
    multiprocess_mode="livemax",
)
# Outlier ejection (ejection.py), per arm: each time a worker stops sending to a model server,
# the requests it did not send there (a canary's go to production and count as canary errors;
# production's get a fast 503 and count as production errors), and whether a live worker has it out.
EJECTIONS = Counter(
    "canary_router_ejections_total", "Times a worker ejected a model server after consecutive failures.", ["model"]
)
EJECTED_REQUESTS = Counter(
    "canary_router_ejected_requests_total", "Predictions not sent to an ejected model server.", ["model", "version"]
)
EJECTED = Gauge(
    "canary_router_ejected",
    "1 while any worker of the replica has this model server ejected.",
    ["model"],
    multiprocess_mode="livemax",
)
RESPONSES = Counter("canary_router_responses_total", "Responses by HTTP status code.", ["code"])

# Apart from the series above, so that testers' forced requests and shadow copies never reach
# the analysis (which reads requests_total, request_duration_seconds and labelled_predictions_total).
FORCED = Counter(
    "canary_router_forced_requests_total",
    "Requests routed by X-Canary-Route (testers); never part of the analysis.",
    ["model", "version", "status"],
)
PREDICTED_CLASS = Counter(
    "canary_router_predicted_class_total",
    "Predicted classes: model is the arm that answered a user, or shadow.",
    ["model", "version", "class"],
)
SHADOW_REQUESTS = Counter(
    "canary_router_shadow_requests_total", "Shadow copies sent to the canary.", ["version", "status"]
)
SHADOW_DURATION = Histogram(
    "canary_router_shadow_duration_seconds", "Duration of successful shadow calls.", ["version"], buckets=BUCKETS
)
SHADOW_AGREEMENT = Counter(
    "canary_router_shadow_agreement_total",
    "Shadow predictions compared with production's answer.",
    ["version", "outcome"],
)
SHADOW_LABELLED = Counter(
    "canary_router_shadow_labelled_total",
    "Shadow predictions of labelled requests, by outcome against the label.",
    ["version", "outcome"],
)
SHADOW_DROPPED = Counter(
    "canary_router_shadow_dropped_total",
    "Shadow copies not sent because the worker's shadow queue was full.",
    ["version"],
)
SHADOW_RATIO = Gauge(
    "canary_router_shadow_ratio",
    "Share of production requests copied to the canary (0..1).",
    multiprocess_mode="mostrecent",
)
# Regression: the absolute error |prediction - actual_value| of each valued prediction, with the
# contract's buckets (the analysis's within_tolerance and mae read them; canary_common.regression).
ABS_ERROR = Histogram(
    ABS_ERROR_METRIC,
    "Absolute error of predictions that got an actual_value.",
    ["model", "version"],
    buckets=ABS_ERROR_BUCKETS,
)
SHADOW_ABS_ERROR = Histogram(
    SHADOW_ABS_ERROR_METRIC,
    "Absolute error of shadow predictions of valued requests.",
    ["version"],
    buckets=ABS_ERROR_BUCKETS,
)
FEEDBACK = Counter(
    "canary_router_feedback_total",
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
