"""Text output: per-request lines, the progress bar, the metrics table, status and decisions.

Readers accept the seed lab's field names and the router's/controller's richer ones, so the
command keeps working while a field is added; a missing value prints as "-".
"""

from __future__ import annotations

import sys
import time

ARMS = ("production", "canary")  # canary_common.contracts.ARMS (a test keeps them equal)


def first(mapping, *keys, default=None):
    """The first present, non-None value among keys."""
    if not isinstance(mapping, dict):
        return default
    for key in keys:
        if mapping.get(key) is not None:
            return mapping[key]
    return default


def num(value, fmt: str = "{:.1f}", suffix: str = "") -> str:
    try:
        return fmt.format(float(value)) + suffix
    except (TypeError, ValueError):
        return "-"


def pct_text(value) -> str:
    """A percentage without a useless '.0' (20 -> '20%', 12.5 -> '12.5%')."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "?"
    return f"{value:g}%"


# ---- send ---------------------------------------------------------------------------------


def request_line(index: int, label: int, answer: dict | None, error: str | None = None) -> str:
    if error is not None:
        return f"  {index:4}. ERROR: {error}"
    arm = str(answer.get("model_version", "?"))
    version = answer.get("version")
    tag = f"{arm.upper()}{' v' + str(version) if version is not None else ''}"
    prediction = answer.get("prediction")
    verdict = "OK   " if prediction == label else "WRONG"
    return (
        f"  {index:4}. [{tag:<15}] pred {prediction} label {label} | {verdict} | "
        f"{num(answer.get('latency_ms'), '{:.1f}', 'ms')}"
    )


class ProgressBar:
    """A one-line bar redrawn with carriage returns; cleared before each per-request line."""

    def __init__(self, total: int, stream=None, width: int = 30):
        self.total = max(total, 1)
        self.stream = stream or sys.stdout
        self.width = width
        self.last = ""

    def text(self, done: int, counts: dict) -> str:
        filled = int(self.width * done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        parts = " ".join(f"{k} {v}" for k, v in counts.items())
        return f"[{bar}] {done}/{self.total} {parts}"

    def draw(self, done: int, counts: dict) -> None:
        self.last = self.text(done, counts)
        self.stream.write("\r" + self.last)
        self.stream.flush()

    def clear(self) -> None:
        if self.last:
            self.stream.write("\r" + " " * len(self.last) + "\r")
            self.last = ""

    def finish(self) -> None:
        if self.last:
            self.stream.write("\n")
            self.stream.flush()
            self.last = ""


def send_summary(counts: dict, correct: dict) -> str:
    total = sum(counts.values())
    answered = counts.get("production", 0) + counts.get("canary", 0)
    parts = []
    for arm in ARMS:
        n = counts.get(arm, 0)
        share = 100.0 * n / answered if answered else 0.0
        acc = f", accuracy {100.0 * correct.get(arm, 0) / n:.1f}%" if n else ""
        parts.append(f"{arm} {n} ({share:.1f}%{acc})")
    return f"Sent {total}: " + "; ".join(parts) + f"; errors {counts.get('errors', 0)}"


# ---- metrics ------------------------------------------------------------------------------


def arm_stats(stats: dict) -> dict:
    """{arm: {...}} from /stats: arms at the top level (seed) or under "models"."""
    models = stats.get("models") if isinstance(stats.get("models"), dict) else stats
    return {arm: models[arm] for arm in ARMS if isinstance(models.get(arm), dict)}


def canary_percentage(body: dict):
    value = first(body, "canary_percentage", "canary_weight", "weight")
    if value is None and isinstance(body.get("state"), dict):
        value = first(body["state"], "canary_percentage", "canary_weight", "weight")
    return value


def is_regression(arms: dict) -> bool:
    """Whether /stats describes a regression model: an arm says so, or (older routers) it has an
    MAE and no accuracy."""
    tasks = {m.get("task") for m in arms.values()}
    if "regression" in tasks:
        return True
    if "classification" in tasks:
        return False
    return any(m.get("mae") is not None and m.get("accuracy") is None for m in arms.values())


def quality_cell(m: dict, regression: bool) -> str:
    """The arm's quality column: accuracy in percent, or the mean absolute error."""
    if regression:
        return num(m.get("mae"), "{:.4g}")
    return num(first(m, "accuracy", "accuracy_pct"), "{:.1f}", "%")


def labelled_line(arms: dict, regression: bool) -> str | None:
    """How many predictions got a label per arm, when /stats says."""
    key = "labelled_values" if regression else "labelled"
    counts = {arm: arms.get(arm, {}).get(key) for arm in ARMS}
    if all(v is None for v in counts.values()):
        return None
    what = "Labelled values (actual_value)" if regression else "Labelled predictions (actual_label)"
    return f"  {what}: " + ", ".join(f"{arm} {int(v) if v is not None else '-'}" for arm, v in counts.items())


def stats_table(stats: dict) -> str:
    arms = arm_stats(stats)
    regression = is_regression(arms)
    total = sum(int(first(m, "requests", "count", default=0) or 0) for m in arms.values())
    lines = [
        "",
        "=" * 72,
        "CURRENT METRICS",
        "=" * 72,
        "",
        f"  Canary traffic: {pct_text(canary_percentage(stats))}"
        + (
            f" (observed {pct_text(stats['observed_canary_percentage'])})"
            if stats.get("observed_canary_percentage") is not None
            else ""
        ),
    ]
    if stats.get("fail_closed"):
        lines.append(
            "  WARNING: the router is failing closed (rollout state unreadable): all traffic goes to production"
        )
    rule = "  +-------------+---------+----------+--------+----------+-------------+-------------+"
    lines += [
        "",
        rule,
        f"  | Model       | Version | Requests | Share  | {'MAE' if regression else 'Accuracy':>8} | Avg latency "
        "| p95 latency |",
        rule,
    ]
    for arm in ARMS:
        m = arms.get(arm, {})
        n = int(first(m, "requests", "count", default=0) or 0)
        share = f"{100.0 * n / total:.1f}%" if total else "-"
        version = str(first(m, "version", default="-"))
        acc = quality_cell(m, regression)
        avg = num(first(m, "avg_latency_ms", "latency_avg_ms", "mean_latency_ms"), "{:.1f}", "ms")
        p95 = num(first(m, "p95_latency_ms", "latency_p95_ms"), "{:.1f}", "ms")
        lines.append(f"  | {arm:<11} | {version:>7} | {n:>8} | {share:>6} | {acc:>8} | {avg:>11} | {p95:>11} |")
    lines.append(rule)
    labelled = labelled_line(arms, regression)
    if labelled:
        lines.append(labelled)
    errors = {arm: int(arms.get(arm, {}).get("errors") or 0) for arm in ARMS}
    fallbacks = (stats.get("totals") or {}).get("fallbacks") if isinstance(stats.get("totals"), dict) else None
    if any(errors.values()) or fallbacks:
        lines.append(
            f"  Backend errors: production {errors['production']}, canary {errors['canary']}"
            + (f"; canary failures answered by production: {fallbacks}" if fallbacks else "")
        )
    lines.append("")
    return "\n".join(lines)


# ---- admin answers ------------------------------------------------------------------------


def decision_of(body: dict) -> tuple[str, str]:
    """(decision, words) from a controller verdict or the seed's {"status": ...} answer."""
    verdict = body
    for key in ("last_decision", "verdict", "last_verdict"):
        if isinstance(body.get(key), dict):
            verdict = body[key]
            break
    if isinstance(verdict.get("decision"), dict):
        verdict = verdict["decision"]
    decision = next(
        (verdict[k] for k in ("decision", "status", "action") if isinstance(verdict.get(k), str)), "unknown"
    )
    words = first(verdict, "summary", "message", "reason", default="")
    if not words and verdict.get("canary_accuracy") is not None:
        words = f"canary accuracy {verdict['canary_accuracy']}%"
        if verdict.get("threshold") is not None:
            words += f" (threshold {verdict['threshold']}%)"
    return decision, str(words)


LAB_STATUSES = ("rollback", "waiting", "healthy")


def rollback_text(body: dict, percentage) -> str:
    if body.get("status") in LAB_STATUSES:  # the lab's answer: it says how the canary stands now
        decision = body["status"]
        words = first(body, "reason", "message", default="") or ""
        if body.get("canary_accuracy") is not None:
            line = f" (threshold {body['threshold']}%)" if body.get("threshold") is not None else ""
            words = f"{words}; canary accuracy {body['canary_accuracy']}%{line}".lstrip("; ")
    else:
        decision, words = decision_of(body)
    head = f"Decision: {decision.upper()}"
    if decision.lower() in ("rollback", "rolled_back"):
        head = "ROLLBACK TRIGGERED"
    lines = [head]
    if words:
        lines.append(f"  Why: {words}")
    lines.append(f"  Canary traffic now: {pct_text(percentage)}")
    return "\n".join(lines)


# Numbers worth a line of their own, in this order, when a decision's evidence carries them.
EVIDENCE_FACTS = (
    "n",
    "p",
    "g_hat",
    "value",
    "threshold",
    "log_e_rollback",
    "threshold_rollback",
    "log_e_promote",
    "threshold_promote",
    "log_bf",
    "counts",
    "count",
    "max",
)


def _fact(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):  # per arm: {"canary": .., "production": ..}
        return " ".join(f"{k}={_fact(v)}" for k, v in value.items())
    return str(value)


DETECTOR_WORDS = {
    "from_start": "the from-start test (evidence since the rollout began)",
    "change": "the change detector (evidence since the change)",
}


def detector_text(verdict: dict) -> str | None:
    """Which rollback detector fired, and since when, from a verdict's per-metric evidence."""
    for m in verdict.get("metrics") or []:
        if not (isinstance(m, dict) and m.get("rollback") and m.get("detector")):
            continue
        text = f"{m.get('name', '?')}: {DETECTOR_WORDS.get(m['detector'], m['detector'])}"
        since = m.get("change_since") if m["detector"] == "change" else None
        if isinstance(since, (int, float)):
            text += time.strftime(" since %H:%M:%S UTC", time.gmtime(since))
            if isinstance(verdict.get("at"), (int, float)):
                text += f" ({max(0.0, verdict['at'] - since) / 60:.1f} min before the decision)"
        return text
    return verdict.get("detector") if isinstance(verdict.get("detector"), str) else None


def regression_facts(item: dict) -> list[str]:
    """A regression kind's numbers in the label's terms (its `p` is on the analysis' good scale:
    1 - clipped MAE / clip for mae)."""
    reg = item.get("regression")
    if not isinstance(reg, dict):
        return []
    if item.get("kind") == "mae" or "clipped_mae" in reg:
        facts = [f"clipped MAE {_fact(reg.get('clipped_mae') or {})}", f"clip {_fact(reg.get('clip'))}"]
        if reg.get("margin_error") is not None:
            facts.append(f"margin {_fact(reg['margin_error'])} (label units)")
        return facts
    shares = {
        arm: num(v * 100 if isinstance(v, (int, float)) else None, "{:.1f}", "%")
        for arm, v in (reg.get("share_within") or {}).items()
    }
    return [f"share within {_fact(reg.get('tolerance'))} {_fact(shares)}"]


def evidence_lines(item: dict) -> list[str]:
    """Two lines per metric or guard: its words, then its key numbers."""
    name = first(item, "name", "metric", "guard", default="?")
    words = item.get("explanation")
    reg = regression_facts(item)
    skip = ("p",) if reg else ()
    facts = [f"{key} {_fact(item[key])}" for key in EVIDENCE_FACTS if item.get(key) is not None and key not in skip]
    at = 1 if item.get("n") is not None else 0
    facts[at:at] = reg  # right after n, before the test statistics
    if not words and not facts:  # unknown shape: every scalar field
        facts = [
            f"{k}={_fact(v)}"
            for k, v in item.items()
            if k not in ("name", "metric", "guard") and not isinstance(v, (dict, list))
        ]
    if words and str(words).startswith(f"{name}:"):  # the words already name the metric
        words = str(words)[len(name) + 1 :].strip()
    lines = [f"    {name}: {words}" if words else f"    {name}:"]
    if facts:
        lines.append("      " + "; ".join(facts))
    return lines


def status_text(body: dict) -> str:
    state = body.get("state") if isinstance(body.get("state"), dict) else body
    phase = first(state, "phase", default="?")
    mode = first(state, "mode")
    lines = []
    model = first(body, "model_name", "model") or first(state, "model_name", "model")
    if isinstance(model, str):
        lines.append(f"Model:     {model}")
    lines += [
        f"Phase:     {phase}{f' ({mode})' if mode else ''}",
        f"Weight:    {pct_text(canary_percentage(body))} to canary",
        f"Versions:  production v{first(state, 'production_version', default='-')}, "
        f"canary v{first(state, 'canary_version', default='-')}",
    ]
    reason = first(state, "reason")
    if reason:
        lines.append(f"Reason:    {reason}")
    if body.get("analysis_mode"):
        steps = body.get("steps")
        lines.append(
            f"Analysis:  {body['analysis_mode']}" + (f", steps {', '.join(f'{s:g}%' for s in steps)}" if steps else "")
        )
    if body.get("metrics_outage_since"):
        lines.append("WARNING:   the controller cannot read its metrics: it holds the weight")
    verdict = None
    for key in ("last_verdict", "last_decision", "verdict", "decision"):
        if isinstance(body.get(key), dict):
            verdict = body[key]
            break
    if body.get("note") and body["note"] != (verdict or {}).get("summary"):
        lines.append(f"Note:      {body['note']}")
    if verdict:
        decision, words = decision_of(verdict)
        lines.append(f"Decision:  {decision}{f' - {words}' if words else ''}")
        fired = detector_text(verdict)
        if fired:
            lines.append(f"Detector:  {fired}")
        metrics = [m for m in verdict.get("metrics") or [] if isinstance(m, dict)]
        guards = [g for g in verdict.get("guards") or [] if isinstance(g, dict) and g.get("enabled", True)]
        if metrics:
            lines.append("  Evidence per metric:")
            for m in metrics:
                lines += evidence_lines(m)
        if guards:
            lines.append("  Guards:")
            for g in guards:
                lines += evidence_lines(g)
    else:
        lines.append("Decision:  none yet")
    return "\n".join(lines)


def action_text(title: str, body: dict) -> str:
    """A one-line account of a controller action's answer."""
    state = body.get("state") if isinstance(body.get("state"), dict) else body
    parts = []
    status = body.get("status")
    if isinstance(status, str):
        parts.append(status)
    phase = first(state, "phase")
    if phase:
        parts.append(f"phase {phase}")
    pct = canary_percentage(body)
    if pct is not None:
        parts.append(f"canary {pct_text(pct)}")
    parts += [f"{arm} v{state[arm + '_version']}" for arm in ARMS if state.get(arm + "_version")]
    if body.get("version") is not None:
        parts.append(f"version {body['version']}")
    words = first(body, "message", "summary", "note") or first(state, "reason")
    if words:
        parts.append(str(words))
    return title + (" - " + ", ".join(parts) if parts else "")
