"""The lab's `/check_rollback` answer, made from the controller's own judgement.

The lab's client reads `status` (`rollback` with `reason`, `canary_accuracy` and `threshold`;
`waiting` with `message`; `healthy` with `canary_accuracy`). Here the answer tells the truth in
every phase: after a rollback it stays `rollback`, with the figures the rollback rested on.
"""

from __future__ import annotations

from canary_common.registry import RolloutState

ROLLBACK, WAITING, HEALTHY = "rollback", "waiting", "healthy"


def _pct(x) -> float | None:
    return None if x is None else round(100.0 * float(x), 1)


def accuracy_figures(evidence: dict | None) -> tuple[float | None, float | None, bool]:
    """(canary accuracy %, the line it is held to %, enough data to judge) from a verdict's
    evidence. Sequential mode: the line is production's accuracy less delta_rollback; threshold
    mode: the configured threshold."""
    for m in (evidence or {}).get("metrics", []):
        if m.get("kind") == "accuracy":
            p = m.get("p") or {}
            prod = p.get("production")
            line = None if prod is None else prod - (m.get("delta_rollback") or 0.0)
            return _pct(p.get("canary")), _pct(line), bool(m.get("burn_in_ok"))
        if m.get("kind") == "threshold" and m.get("name") == "accuracy":
            enough = (m.get("n") or {}).get("canary", 0) >= m.get("min_samples", 0)
            return _pct(m.get("value")), m.get("threshold"), bool(enough)
    return None, None, False


def lab_answer(
    state: RolloutState, decision: str, summary: str, evidence: dict | None, rollback_evidence: dict | None = None
) -> dict:
    """`evidence`: this poll's verdict (None when nothing was judged); `rollback_evidence`: what
    the last rollback of this canary rested on, for a canary already rolled back."""
    if decision == "rollback" or state.phase == "rolled_back":
        # This poll's verdict if it rolled back (once idle, that verdict may already be dropped),
        # else what the rollback rested on, as tagged on the version.
        judged = evidence if decision == "rollback" and evidence else None
        acc, line, _ = accuracy_figures(judged or rollback_evidence or evidence)
        return {"status": ROLLBACK, "reason": state.reason or summary, "canary_accuracy": acc, "threshold": line}
    acc, line, enough = accuracy_figures(evidence)
    if state.phase == "promoted":
        return {
            "status": HEALTHY,
            "canary_accuracy": acc,
            "threshold": line,
            "message": state.reason or f"version {state.canary_version} was promoted",
        }
    if not state.canary_version:
        return {"status": WAITING, "message": "there is no canary: no version has the `canary` alias"}
    if state.weight <= 0 and not state.shadow_live:
        return {"status": WAITING, "message": f"the canary gets no traffic (phase {state.phase}): {summary}"}
    if evidence is None or not enough:
        return {"status": WAITING, "message": summary, "canary_accuracy": acc}
    if acc is not None and line is not None and acc < line:
        # Below the line but not yet shown worse: the lab would not call that healthy.
        return {
            "status": WAITING,
            "canary_accuracy": acc,
            "threshold": line,
            "message": f"canary accuracy {acc:g}% is below {line:g}%, not yet conclusively: {summary}",
        }
    return {"status": HEALTHY, "canary_accuracy": acc, "threshold": line, "message": summary}
