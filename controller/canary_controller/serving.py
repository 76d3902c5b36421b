"""Whether the canary model server serves the canary version yet, from the model servers' own
gauges in Prometheus (docs/contracts.md): `model_server_model_info{alias,version}` is 1 for the
version a live worker serves, `model_server_model_load_error{alias,version}` is 1 while the alias
points at a version that failed to load (the server goes on serving what it had).

The controller judges a version only on traffic that version served, and never rolls onto a
version that cannot load.
"""

from __future__ import annotations

from dataclasses import dataclass

from canary_common.contracts import MODEL_SERVER_LOAD_ERROR as LOAD_ERROR
from canary_common.contracts import MODEL_SERVER_MODEL_INFO as INFO

from .prometheus import MetricsUnavailable, PrometheusClient

SERVING, LOADING, FAILED, UNKNOWN = "serving", "loading", "failed", "unknown"


@dataclass(frozen=True)
class Serving:
    status: str  # SERVING | LOADING | FAILED | UNKNOWN (no gauges: judge as before)
    detail: str = ""


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def canary_serving(prometheus: PrometheusClient, version: str, alias: str = "canary") -> Serving:
    selector = f'alias="{_quote(alias)}"'
    try:
        failed = prometheus.instant(f"max by (version) ({LOAD_ERROR}{{{selector}}}) == 1")
        served = prometheus.instant(f"max by (version) ({INFO}{{{selector}}}) == 1")
    except MetricsUnavailable:
        return Serving(UNKNOWN, "Prometheus did not answer")
    if any(labels.get("version") == version for labels, _ in failed):
        return Serving(
            FAILED,
            f"the {alias} model server could not load version {version} "
            f"({LOAD_ERROR}=1; its /ready says why) and still serves "
            f"{_versions(served, version) or 'nothing'}",
        )
    versions = {labels.get("version") for labels, _ in served}
    if not versions:
        return Serving(UNKNOWN, f"no {INFO} series for alias {alias}")
    if version in versions:
        return Serving(SERVING)
    return Serving(LOADING, f"the {alias} model server serves {_versions(served, version)}, not yet version {version}")


def _versions(rows, exclude: str) -> str:
    others = sorted({labels.get("version") for labels, _ in rows} - {exclude, None})
    return ", ".join(f"version {v}" for v in others)
