"""The controller's own Prometheus metrics: state, decisions and the evidence behind them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from canary_common import contracts as c
from canary_common.registry import PHASES

WEIGHT = Gauge(c.CONTROLLER_WEIGHT, "Canary share of traffic set in the registry (0..1)")
PHASE = Gauge(c.CONTROLLER_PHASE, "1 for the current rollout phase", ["phase"])
DECISIONS = Counter(c.CONTROLLER_DECISIONS, "Decisions that changed or held the rollout", ["decision"])
PROMETHEUS_UP = Gauge(c.CONTROLLER_PROMETHEUS_UP, "1 when the last metrics read succeeded")
DECISION_INFO = Gauge(c.CONTROLLER_DECISION_INFO, "1 for the analysis' latest decision", ["decision"])
EVIDENCE_LOG_E = Gauge(c.CONTROLLER_EVIDENCE_LOG_E, "log e-value per metric and test", ["metric", "test"])
EVIDENCE_THRESHOLD = Gauge(
    c.CONTROLLER_EVIDENCE_THRESHOLD, "log(1/alpha) the e-value is held against", ["metric", "test"]
)
EVIDENCE_ESTIMATE = Gauge(c.CONTROLLER_EVIDENCE_ESTIMATE, "canary minus production on the good scale", ["metric"])
EVIDENCE_BOUND = Gauge(c.CONTROLLER_EVIDENCE_BOUND, "confidence bounds of the difference", ["metric", "side"])
EVIDENCE_N = Gauge(c.CONTROLLER_EVIDENCE_N, "samples per arm behind the evidence", ["metric", "arm"])
EVIDENCE_VALUE = Gauge(c.CONTROLLER_EVIDENCE_VALUE, "the metric's value per arm", ["metric", "arm"])
WEBHOOK_DELIVERIES = Counter(
    c.CONTROLLER_WEBHOOK_DELIVERIES,
    "Decision webhook deliveries: delivered, failed (attempts spent or refused), dropped (queue full)",
    ["result"],
)

_DECISIONS = ("rollback", "step_up", "promote", "continue", "inconclusive")
RECORDED = ("rollback", "step_up", "promote", "promoted", "hold", "metrics_back")
for _d in RECORDED:  # series exist from the start, so increase() reads 0 rather than nothing
    DECISIONS.labels(decision=_d)
for _r in ("delivered", "failed", "dropped"):
    WEBHOOK_DELIVERIES.labels(result=_r)


def export_state(state) -> None:
    WEIGHT.set(state.weight_ratio)
    for phase in PHASES:
        PHASE.labels(phase=phase).set(1 if phase == state.phase else 0)


def _num(value):
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None


def export_verdict(verdict) -> None:
    """Evidence dicts of both analyses (see analysis/sequential.py and threshold.py)."""
    for d in _DECISIONS:
        DECISION_INFO.labels(decision=d).set(1 if d == verdict.decision.value else 0)
    for m in verdict.metrics:
        name = str(m.get("name", "?"))
        for test in ("rollback", "promote"):
            for key, gauge in ((f"log_e_{test}", EVIDENCE_LOG_E), (f"threshold_{test}", EVIDENCE_THRESHOLD)):
                v = _num(m.get(key))
                if v is not None:
                    gauge.labels(metric=name, test=test).set(v)
        v = _num(m.get("g_hat"))
        if v is not None:
            EVIDENCE_ESTIMATE.labels(metric=name).set(v)
        for side, v in (m.get("bounds") or {}).items():
            if _num(v) is not None:
                EVIDENCE_BOUND.labels(metric=name, side=side).set(_num(v))
        for arm, v in (m.get("n") or {}).items():
            if _num(v) is not None:
                EVIDENCE_N.labels(metric=name, arm=arm).set(_num(v))
        values = m.get("p") or ({"canary": m["value"]} if "value" in m else {})
        for arm, v in values.items():
            if _num(v) is not None:
                EVIDENCE_VALUE.labels(metric=name, arm=arm).set(_num(v))
