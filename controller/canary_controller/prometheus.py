"""The metrics provider: Prometheus over its HTTP API.

Reads raw counter values per series and takes the increments here, not with `increase()`,
which extrapolates and returns fractions. A counter that drops was reset (a router replica
restarted): its new value is the increment. A series first seen after the baseline poll is new
(a replica scaled out, a first error): it started at 0, so its value is the increment.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import requests

from .analysis.base import ArmIncrement

ARMS = ("production", "canary")
SCALAR_FIELDS = ("requests", "errors", "labelled", "correct", "latency_count", "latency_fast")


# The router counts shadow copies apart from live traffic (so they never mix); in shadow the
# controller reads these twins of the live counters as the canary arm.
SHADOW_TWINS = (
    ("canary_router_requests_total", "canary_router_shadow_requests_total"),
    ("canary_router_labelled_predictions_total", "canary_router_shadow_labelled_total"),
    ("canary_router_request_duration_seconds", "canary_router_shadow_duration_seconds"),
)


def shadow_counters(counters: dict[str, str]) -> dict[str, str]:
    """The configured live counters rewritten to their shadow twins, labelled model="canary"."""
    out = {}
    for name, query in counters.items():
        for live, twin in SHADOW_TWINS:
            query = query.replace(live, twin)
        out[name] = f'label_replace({query}, "model", "canary", "", "")'
    return out


class MetricsUnavailable(RuntimeError):
    """Prometheus did not answer, or answered with an error."""


class PrometheusClient:
    def __init__(self, url: str, timeout: float = 3.0, session: requests.Session | None = None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    def instant(self, query: str) -> list[tuple[dict, float]]:
        """An instant query: [(labels, value), ...]."""
        try:
            resp = self.session.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=self.timeout)
            body = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise MetricsUnavailable(f"Prometheus at {self.url} unreachable: {exc}") from exc
        if resp.status_code != 200 or body.get("status") != "success":
            raise MetricsUnavailable(f"Prometheus query failed ({resp.status_code}): {body.get('error', body)}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def wait_for_scrape(self, job: str, after: float, timeout: float) -> bool:
        """Wait until every target of `job` was scraped after `after` (epoch s): used when a
        person asks for a check right after sending traffic."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                rows = self.instant(f'min(timestamp(up{{job="{job}"}}))')
            except MetricsUnavailable:
                return False
            if rows and rows[0][1] >= after:
                return True
            time.sleep(0.5)
        return False


def _series_key(labels: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))


@dataclass
class _Baseline:
    values: dict  # series key -> last raw value


class CounterReader:
    """Turns raw counters into per-arm increments since the previous poll.

    `counters` maps each ArmIncrement field to a PromQL selector (the analysis config's
    `counters` section). Only series whose `version` label matches the version the arm
    serves now are counted, so a freshly deployed canary starts from zero.
    """

    def __init__(self, client: PrometheusClient, counters: dict[str, str]):
        self.client = client
        self.counters = counters
        self._last: dict[str, dict[tuple, float]] | None = None

    def reset(self) -> None:
        """Forget the baseline: the next poll only records values."""
        self._last = None

    def poll(self, versions: dict[str, str | None]) -> dict[str, ArmIncrement] | None:
        """Read every counter; return increments per arm, or None on the baseline poll.
        Raises MetricsUnavailable when any query fails, leaving the baseline untouched."""
        raw = {name: self.client.instant(query) for name, query in self.counters.items()}
        first = self._last is None
        last = self._last or {}
        new_last: dict[str, dict[tuple, float]] = {}
        sums = {arm: {f: 0.0 for f in SCALAR_FIELDS} for arm in ARMS}
        buckets = {arm: {} for arm in ARMS}
        for name, rows in raw.items():
            seen = last.get(name, {})
            current: dict[tuple, float] = {}
            for labels, value in rows:
                if math.isnan(value):
                    continue
                key = _series_key(labels)
                current[key] = value
                previous = seen.get(key)
                if previous is None:
                    delta = 0.0 if first else value
                elif value < previous:
                    delta = value  # counter reset: the process restarted from 0
                else:
                    delta = value - previous
                arm = labels.get("model")
                if arm not in ARMS or delta == 0.0:
                    continue
                if versions.get(arm) is not None and labels.get("version") not in (None, versions[arm]):
                    continue
                if name == "latency_buckets":
                    le = float(labels.get("le", "inf").replace("+Inf", "inf"))
                    buckets[arm][le] = buckets[arm].get(le, 0.0) + delta
                elif name in SCALAR_FIELDS:
                    sums[arm][name] += delta
            # Series that vanished keep their last value: if they come back lower, it's a reset.
            for key, value in seen.items():
                current.setdefault(key, value)
            new_last[name] = current
        self._last = new_last
        if first:
            return None
        return {
            arm: ArmIncrement(latency_buckets=tuple(sorted(buckets[arm].items())), **sums[arm])
            for arm in ARMS
        }


class OutageCounter:
    """Counts the canary server going down: each target that is down now and was not at the
    previous poll is one restart (or crash). An outage that lasts many polls counts once, so
    `guards.restarts.max` means restarts, not polls spent down."""

    QUERY = 'up{job="model-server",arm="canary"}'

    def __init__(self, prometheus: PrometheusClient):
        self.prometheus = prometheus
        self.down: set[tuple] = set()

    def poll(self) -> int:
        down = {_series_key(labels) for labels, value in self.prometheus.instant(self.QUERY) if value == 0}
        started = len(down - self.down)
        self.down = down
        return started

    def reset(self) -> None:
        """A new rollout: a canary that is down right now counts as one restart of this rollout."""
        self.down = set()
