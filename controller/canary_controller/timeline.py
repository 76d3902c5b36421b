"""The rollout as a time series for people: what each poll of the controller saw.

One point per poll, idle polls included: when it was, the canary weight (percent) and phase
and mode and versions as read from the registry, the poll's decision, and per metric the
numbers of that poll's verdict (the arms' proportions, the estimate g = canary - production and
its anytime-valid bounds, the margin). A poll that produced no new verdict (idle, baseline read,
metrics outage, registry unreachable) has "metrics": null, so a chart shows a gap there rather
than repeating an old verdict.

Kept in memory, bounded (MAX_POINTS, about 25 minutes at one poll a second): the live page is a
picture of the current rollout, not an archive; MLflow keeps the decisions' evidence, Prometheus
the metrics. Served as GET /timeline (see app.py); the router's /rollout.json passes it on.
"""

from __future__ import annotations

import collections
import math
import threading
import time

MAX_POINTS = 1500


def _num(value, digits: int = 5):
    """A JSON-friendly rounded float, or None (missing, not a number, NaN, infinity)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return round(x, digits) if math.isfinite(x) else None


def metric_point(evidence: dict) -> dict:
    """The numbers a chart needs from one metric's verdict evidence.

    Sequential evidence gives p {canary, production}, g_hat, bounds {lower, upper} and margin;
    threshold evidence gives the canary's value against a fixed threshold. Keys a mode does not
    have are null. When the analysis says which detector fired (detector, change_since), that is
    kept too.
    """
    p = evidence.get("p") or {}
    bounds = evidence.get("bounds") or {}
    point = {
        "name": evidence.get("name"),
        "kind": evidence.get("kind"),
        "p_canary": _num(p.get("canary")),
        "p_production": _num(p.get("production")),
        "g_hat": _num(evidence.get("g_hat")),
        "lower": _num(bounds.get("lower")),
        "upper": _num(bounds.get("upper")),
        "margin": _num(evidence.get("margin")),
        "delta_rollback": _num(evidence.get("delta_rollback")),
        "rollback": bool(evidence.get("rollback") or evidence.get("failed")),
    }
    if "non_inferior" in evidence:
        point["non_inferior"] = bool(evidence.get("non_inferior"))
    if "value" in evidence or "threshold" in evidence:  # threshold mode
        point["value"] = _num(evidence.get("value"), 6)
        point["threshold"] = _num(evidence.get("threshold"), 6)
    regression = evidence.get("regression") or {}
    for key in ("clip", "tolerance"):  # a regression kind's scale, in the label's unit
        if regression.get(key) is not None:
            point[key] = _num(regression[key], 6)
    if evidence.get("detector") is not None:
        point["detector"] = str(evidence["detector"])
        point["change_since"] = _num(evidence.get("change_since"), 3)
    return point


def _copy(items) -> list:
    """A copy of a deque the loop may be appending to (read without the controller's lock, which
    a poll holds while it waits for a scrape): a mutation mid-copy raises, so try again."""
    for _ in range(5):
        try:
            return list(items)
        except RuntimeError:
            continue
    return []


class Timeline:
    """A bounded series of poll points, safe to read from the HTTP threads while the loop adds."""

    def __init__(self, max_points: int = MAX_POINTS, clock=time.time):
        self.clock = clock
        self.max_points = max_points
        self.started_at = clock()
        self._points: collections.deque = collections.deque(maxlen=max_points)
        self._lock = threading.Lock()
        self._verdict_at = None  # the verdict last recorded, so a stale one is not repeated

    def add(
        self,
        state=None,
        verdict=None,
        verdict_at: float | None = None,
        record: dict | None = None,
        at: float | None = None,
    ) -> dict:
        """Adds the point of one poll. `state`: the RolloutState read by the poll (None: none read
        yet); `verdict` and `verdict_at`: the controller's last verdict and when it was made, taken
        as this poll's only when it is newer than the one last recorded; `record`: what the poll
        returned ({"decision", "summary"})."""
        at = self.clock() if at is None else at
        fresh = verdict is not None and verdict_at is not None and verdict_at != self._verdict_at
        metrics = None
        if fresh:
            metrics = [metric_point(m) for m in (getattr(verdict, "metrics", None) or []) if isinstance(m, dict)]
        point = {
            "at": round(float(at), 3),
            "weight": _num(getattr(state, "weight", None), 3),
            "phase": getattr(state, "phase", None),
            "mode": getattr(state, "mode", None),
            "production_version": getattr(state, "production_version", None),
            "canary_version": getattr(state, "canary_version", None),
            "decision": (record or {}).get("decision"),
            "verdict": getattr(getattr(verdict, "decision", None), "value", None) if fresh else None,
            "metrics": metrics,
        }
        with self._lock:
            if fresh:
                self._verdict_at = verdict_at
            self._points.append(point)
        return point

    def points(self, since: float | None = None) -> list[dict]:
        """The points, oldest first; only those after `since` (epoch seconds) when given."""
        with self._lock:
            points = list(self._points)
        if since is not None and math.isfinite(since):
            points = [p for p in points if p["at"] > since]
        return points

    def as_dict(self, history=(), since: float | None = None) -> dict:
        """What GET /timeline answers: the points and the controller's decisions (newest first)."""
        return {
            "points": self.points(since),
            "history": _copy(history),
            "max_points": self.max_points,
            "started_at": self.started_at,
            "now": self.clock(),
        }
