"""The seed's /stats summary, computed from the Prometheus counters so it is exact and shared.

A replica's counts are read from its workers' multiprocess metric files (every worker's, whichever
answers), minus a baseline snapshot written at the last /reset. Counts are kept as a flat dict of
"kind|label|label..." -> number, so snapshots from several replicas simply add up, and percentiles
are taken from the merged histogram buckets (as Prometheus' histogram_quantile does).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading

from canary_common import contracts as c
from canary_common import histograms
from canary_common.payload import CLASSIFICATION, REGRESSION
from canary_common.regression import ABS_ERROR_METRIC
from canary_router import metrics

BASELINE_FILE = "router_stats_baseline.json"
_memory_baseline: dict = {}  # used when there is no multiprocess directory (one process)
_memory_lock = threading.Lock()


# -- snapshots ---------------------------------------------------------------------------------
def raw_counts(families=None) -> dict:
    """Flat counts from the current metric families (all workers of this replica)."""
    counts: dict[str, float] = {}
    for family in metrics.collect() if families is None else families:
        for s in family.samples:
            labels = s.labels
            key = None
            if s.name == c.ROUTER_REQUESTS:
                key = f"req|{labels['model']}|{labels['version']}|{labels['status']}"
            elif s.name == c.ROUTER_LABELLED:
                key = f"lab|{labels['model']}|{labels['version']}|{labels['outcome']}"
            elif s.name == c.ROUTER_DURATION + "_bucket":
                key = f"bkt|{labels['model']}|{labels['version']}|{labels['le']}"
            elif s.name == c.ROUTER_DURATION + "_sum":
                key = f"sum|{labels['model']}|{labels['version']}"
            elif s.name == c.ROUTER_DURATION + "_count":
                key = f"cnt|{labels['model']}|{labels['version']}"
            elif s.name == ABS_ERROR_METRIC + "_sum":
                key = f"aes|{labels['model']}|{labels['version']}"
            elif s.name == ABS_ERROR_METRIC + "_count":
                key = f"aec|{labels['model']}|{labels['version']}"
            elif s.name == c.ROUTER_FALLBACKS:
                key = "fallbacks"
            elif s.name == c.ROUTER_EJECTIONS:
                key = f"ejections|{labels['model']}"
            elif s.name == c.ROUTER_EJECTED_REQUESTS:
                key = f"ejected|{labels['model']}"
            elif s.name == c.ROUTER_RESPONSES:
                key = f"resp|{labels['code']}"
            if key is not None:
                counts[key] = counts.get(key, 0.0) + float(s.value)
    return counts


def subtract(current: dict, baseline: dict) -> dict:
    """Counts since the baseline; a key that went down (files wiped) counts from zero."""
    out = {}
    for key, value in current.items():
        diff = value - baseline.get(key, 0.0)
        out[key] = value if diff < 0 else diff
    return out


def merge(snapshots) -> dict:
    total: dict[str, float] = {}
    for snap in snapshots:
        for key, value in snap.items():
            total[key] = total.get(key, 0.0) + float(value)
    return total


# -- the baseline written by /reset -------------------------------------------------------------
def _baseline_path() -> str | None:
    directory = metrics.multiproc_dir()
    return os.path.join(directory, BASELINE_FILE) if directory else None


def load_baseline() -> dict:
    path = _baseline_path()
    if path is None:
        with _memory_lock:
            return dict(_memory_baseline)
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def reset_local() -> dict:
    """Makes this replica's counts start again from zero; returns the new baseline."""
    snapshot = raw_counts()
    path = _baseline_path()
    if path is None:
        with _memory_lock:
            _memory_baseline.clear()
            _memory_baseline.update(snapshot)
        return snapshot
    # write-then-rename so a concurrent reader sees the old or the new baseline, never half.
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".baseline-", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(snapshot, fh)
    os.replace(tmp, path)
    return snapshot


def local_counts() -> dict:
    """Counts since the last /reset, and (a gauge, never subtracted) whether a worker of this
    replica has a model server ejected now: `ejecting|<arm>`."""
    families = list(metrics.collect())  # one read of the workers' metric files for both
    counts = subtract(raw_counts(families), load_baseline())
    counts.update(ejecting_now(families))
    return counts


def ejecting_now(families) -> dict:
    found = {f"ejecting|{arm}": 0.0 for arm in ("production", "canary")}
    for family in families:
        for s in family.samples:
            if s.name == c.ROUTER_EJECTED:
                found[f"ejecting|{s.labels['model']}"] = float(s.value)
    return found


# -- the summary ----------------------------------------------------------------------------------
def quantile_from_buckets(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile from cumulative bucket counts {upper bound: count} (canary_common.histograms)."""
    return histograms.quantile(q, buckets)


_SCALAR_KINDS = {"sum": "sum", "cnt": "count", "aes": "ae_sum", "aec": "ae_count"}


def _per_model(counts: dict) -> dict:
    models: dict = {}

    def slot(model, version):
        m = models.setdefault(model, {"versions": {}})
        return m["versions"].setdefault(
            version,
            {
                "ok": 0.0,
                "error": 0.0,
                "correct": 0.0,
                "incorrect": 0.0,
                "sum": 0.0,
                "count": 0.0,
                "buckets": {},
                "ae_sum": 0.0,
                "ae_count": 0.0,
            },
        )

    for key, value in counts.items():
        parts = key.split("|")
        kind = parts[0]
        if kind in ("req", "lab") and len(parts) == 4:
            s = slot(parts[1], parts[2])
            s[parts[3]] = s.get(parts[3], 0.0) + value
        elif kind == "bkt" and len(parts) == 4:
            s = slot(parts[1], parts[2])
            bound = float("inf") if parts[3] == "+Inf" else float(parts[3])
            s["buckets"][bound] = s["buckets"].get(bound, 0.0) + value
        elif kind in _SCALAR_KINDS and len(parts) == 3:
            slot(parts[1], parts[2])[_SCALAR_KINDS[kind]] += value
    return models


def _describe(slots: list[dict]) -> dict:
    ok = sum(s["ok"] for s in slots)
    err = sum(s["error"] for s in slots)
    correct = sum(s["correct"] for s in slots)
    labelled = correct + sum(s["incorrect"] for s in slots)
    dur_sum = sum(s["sum"] for s in slots)
    dur_cnt = sum(s["count"] for s in slots)
    buckets: dict = {}
    for s in slots:
        for bound, count in s["buckets"].items():
            buckets[bound] = buckets.get(bound, 0.0) + count
    p95 = quantile_from_buckets(0.95, buckets)
    valued = sum(s["ae_count"] for s in slots)
    mae = sum(s["ae_sum"] for s in slots) / valued if valued else None
    return {
        "requests": int(ok),
        "errors": int(err),
        "error_rate": round(100.0 * err / (ok + err), 2) if ok + err else 0.0,
        "labelled": int(labelled),
        "correct": int(correct),
        "accuracy": round(100.0 * correct / labelled, 2) if labelled else None,
        "avg_latency_ms": round(1000.0 * dur_sum / dur_cnt, 3) if dur_cnt else None,
        "p95_latency_ms": round(1000.0 * p95, 3) if p95 is not None else None,
        # Regression: predictions that got an actual_value, and their mean absolute error (None
        # when there are none, or when a model answered something that is not a finite number).
        "labelled_values": int(valued),
        "mae": round(mae, 6) if mae is not None and math.isfinite(mae) else None,
    }


def _task(entry: dict, known: str | None) -> str | None:
    """The model server's word, else what the truth sent to it shows."""
    if known:
        return known
    if entry["labelled_values"]:
        return REGRESSION
    return CLASSIFICATION if entry["labelled"] else None


def summarize(counts: dict, state: dict | None = None) -> dict:
    """The seed's /stats JSON: per model requests, accuracy %, average and p95 latency (ms) and
    version; the canary percentage; totals. `state` carries the current versions and weight."""
    state = state or {}
    models = _per_model(counts)
    out: dict = {}
    for arm in ("production", "canary"):
        versions = models.get(arm, {}).get("versions", {})
        entry = _describe(list(versions.values()))
        entry["version"] = state.get(f"{arm}_version")
        entry["task"] = _task(entry, state.get(f"{arm}_task"))
        entry["by_version"] = {v: _describe([s]) for v, s in sorted(versions.items())}
        out[arm] = entry
    all_slots = [s for m in models.values() for s in m["versions"].values()]
    totals = _describe(all_slots)
    totals["fallbacks"] = int(counts.get("fallbacks", 0))
    # Outlier ejection: predictions not sent to an ejected model server (a canary's went to
    # production, production's got a fast 503; both counted as that arm's errors), the
    # ejections, and how many replicas have it out now.
    for arm in ("production", "canary"):
        out[arm]["ejected_requests"] = int(counts.get(f"ejected|{arm}", 0))
        out[arm]["ejections"] = int(counts.get(f"ejections|{arm}", 0))
        out[arm]["replicas_ejecting"] = int(counts.get(f"ejecting|{arm}", 0))
    totals["responses"] = {k.split("|", 1)[1]: int(v) for k, v in sorted(counts.items()) if k.startswith("resp|")}
    served = out["production"]["requests"] + out["canary"]["requests"]
    out["canary_percentage"] = state.get("canary_percentage")
    out["observed_canary_percentage"] = round(100.0 * out["canary"]["requests"] / served, 2) if served else None
    out["totals"] = totals
    return out


def lab_number(value) -> float | int:
    """The lab's client formats these with :.1f, so never None; whole numbers stay whole."""
    if value is None:
        return 0
    return int(value) if float(value).is_integer() else value


def lab_metrics(summary: dict) -> dict:
    """The lab's /metrics JSON from the fleet summary: `canary_percentage`, and per arm
    `requests`, `accuracy` (percent of labelled predictions; 0 before any label) and
    `avg_latency_ms`, plus what /stats tells about each arm (version, errors, labels, p95)."""
    out: dict = {"canary_percentage": lab_number(summary.get("canary_percentage"))}
    for arm in ("production", "canary"):
        entry = {k: v for k, v in summary[arm].items() if k != "by_version"}
        entry["accuracy"] = lab_number(entry.get("accuracy"))
        entry["avg_latency_ms"] = lab_number(entry.get("avg_latency_ms"))
        out[arm] = entry
    for key in ("observed_canary_percentage", "mode", "phase", "fail_closed", "replicas"):
        if key in summary:
            out[key] = summary[key]
    return out
