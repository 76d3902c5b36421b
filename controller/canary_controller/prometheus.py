"""The metrics provider: Prometheus over its HTTP API.

Reads raw counter values per series and takes the increments here, not with `increase()`,
which extrapolates and returns fractions. A counter that drops was reset (a router replica
restarted): its new value is the increment. A series first seen after the baseline poll is new
(a replica scaled out, a first error): it started at 0, so its value is the increment.
"""

from __future__ import annotations

import math
import time

import requests

from canary_common import contracts
from canary_common.regression import (
    ABS_ERROR_BUCKETS,
    ABS_ERROR_COUNTER,
    ABS_ERROR_METRIC,
    bound_index,
)

from .analysis.base import ArmIncrement

ARMS = ("production", "canary")
SCALAR_FIELDS = ("requests", "errors", "labelled", "correct", "latency_count", "latency_fast")
# Histogram fields: cumulative bucket increments per upper bound `le`. abs_error_buckets (the
# regression kinds' absolute-error histogram) is read only when the analysis config lists it,
# which it does when a regression metric is configured.
BUCKET_FIELDS = ("latency_buckets", ABS_ERROR_COUNTER)


# The router counts shadow copies apart from live traffic (so they never mix); in shadow the
# controller reads these twins of the live counters as the canary arm.
SHADOW_TWINS = tuple(contracts.SHADOW_TWINS.items())


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


def _le(labels: dict) -> float:
    """A bucket's upper bound from its `le` label ("+Inf", "0.5", or "1.0" as Prometheus 3 writes it)."""
    try:
        return float(labels.get("le", "inf").replace("+Inf", "inf"))
    except ValueError:
        return math.nan


def _series_key(labels: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))


class CounterReader:
    """Turns raw counters into per-arm increments since the previous poll.

    `counters` maps each ArmIncrement field to a PromQL selector (the analysis config's
    `counters` section). Only series whose `version` label matches the version the arm
    serves now are counted, so a freshly deployed canary starts from zero.

    Histograms (latency_buckets, abs_error_buckets) come as cumulative increments per bound
    `le`, summed over series (replicas). The abs-error histogram must have exactly the bounds
    of ABS_ERROR_BUCKETS (the regression kinds count at them): a series with another bound, or
    a contract bound missing from an arm's series, raises MetricsUnavailable naming them, so the
    controller holds and, after its outage limit, falls back to production rather than judge a
    model on counts it cannot interpret.
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
        # Long on purpose: read, check and difference every counter in one pass, so the baseline
        # moves only when the whole poll is good.
        raw = {name: self.client.instant(query) for name, query in self.counters.items()}
        first = self._last is None
        last = self._last or {}
        new_last: dict[str, dict[tuple, float]] = {}
        sums = {arm: {f: 0.0 for f in SCALAR_FIELDS} for arm in ARMS}
        buckets = {arm: {f: {} for f in BUCKET_FIELDS} for arm in ARMS}
        foreign: set[str] = set()  # abs-error bounds outside the contract
        bounds_seen: dict[str, set[int]] = {arm: set() for arm in ARMS}  # contract bounds, per arm
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
                if arm not in ARMS:
                    continue
                if versions.get(arm) is not None and labels.get("version") not in (None, versions[arm]):
                    continue
                if name == ABS_ERROR_COUNTER:
                    i = bound_index(_le(labels))
                    if i is None:
                        foreign.add(str(labels.get("le", "(none)")))
                    else:
                        bounds_seen[arm].add(i)
                if delta == 0.0:
                    continue
                if name in BUCKET_FIELDS:
                    le = _le(labels)
                    if name == ABS_ERROR_COUNTER:  # one key per contract bound, however it is spelled
                        i = bound_index(le)
                        if i is None:
                            continue
                        le = ABS_ERROR_BUCKETS[i]
                    elif math.isnan(le):
                        continue
                    into = buckets[arm][name]
                    into[le] = into.get(le, 0.0) + delta
                elif name in SCALAR_FIELDS:
                    sums[arm][name] += delta
            # Series that vanished keep their last value: if they come back lower, it's a reset.
            for key, value in seen.items():
                current.setdefault(key, value)
            new_last[name] = current
        missing = sorted(
            {i for seen in bounds_seen.values() if seen for i in range(len(ABS_ERROR_BUCKETS)) if i not in seen}
        )
        if foreign or missing:
            what = (
                f"bucket bound(s) le={', '.join(sorted(foreign))} are not in"
                if foreign
                else f"bucket bound(s) le={', '.join(f'{ABS_ERROR_BUCKETS[i]:g}' for i in missing)} are missing from"
            )
            raise MetricsUnavailable(
                f"{self.counters[ABS_ERROR_COUNTER]}: {what} the contract's ABS_ERROR_BUCKETS "
                f"({', '.join(f'{b:g}' for b in ABS_ERROR_BUCKETS)}); the router must export {ABS_ERROR_METRIC} "
                f"with exactly these buckets"
            )
        self._last = new_last
        if first:
            return None
        return {
            arm: ArmIncrement(**sums[arm], **{f: tuple(sorted(buckets[arm][f].items())) for f in BUCKET_FIELDS})
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
