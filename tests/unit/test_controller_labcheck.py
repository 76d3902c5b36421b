"""The lab's /check_rollback answer from the controller's verdicts, in every phase."""

from canary_common.registry import RolloutState
from canary_controller.labcheck import accuracy_figures, lab_answer


def state(phase="progressing", weight=20.0, canary="2", reason="", shadow=0.0):
    return RolloutState(
        production_version="1",
        canary_version=canary,
        weight=weight,
        mode="manual",
        phase=phase,
        reason=reason,
        shadow_percentage=shadow,
    )


def sequential(p_canary, p_production, burn_in_ok=True, delta=0.0):
    return {
        "decision": "continue",
        "summary": "Holding at 20 %: ...",
        "metrics": [
            {
                "name": "accuracy",
                "kind": "accuracy",
                "p": {"canary": p_canary, "production": p_production},
                "delta_rollback": delta,
                "burn_in_ok": burn_in_ok,
            }
        ],
    }


def threshold(value, limit=85, n=10, min_samples=5):
    return {
        "metrics": [
            {
                "name": "accuracy",
                "kind": "threshold",
                "value": value,
                "threshold": limit,
                "n": {"canary": n},
                "min_samples": min_samples,
            }
        ]
    }


def test_figures_in_both_modes():
    assert accuracy_figures(sequential(0.8, 0.9, delta=0.01)) == (80.0, 89.0, True)
    assert accuracy_figures(threshold(0.7, n=3)) == (70.0, 85, False)
    assert accuracy_figures(None) == (None, None, False)
    assert accuracy_figures({"metrics": [{"name": "latency", "kind": "latency"}]}) == (None, None, False)


def test_a_rollback_is_reported_in_the_labs_shape():
    answer = lab_answer(
        state(phase="rolled_back", weight=0, reason="Roll back: accuracy is worse"),
        "rollback",
        "Roll back: accuracy is worse",
        sequential(0.6, 0.9),
    )
    assert answer == {
        "status": "rollback",
        "reason": "Roll back: accuracy is worse",
        "canary_accuracy": 60.0,
        "threshold": 90.0,
    }


def test_after_a_rollback_it_stays_rollback_with_the_figures_it_rested_on():
    answer = lab_answer(
        state(phase="rolled_back", weight=0, reason="rolled back earlier"),
        "hold",
        "idle",
        None,
        rollback_evidence=threshold(0.55),
    )
    assert (answer["status"], answer["canary_accuracy"], answer["threshold"]) == ("rollback", 55.0, 85)


def test_a_rollback_whose_verdict_is_gone_reports_the_tagged_evidence():
    answer = lab_answer(
        state(phase="rolled_back", weight=0, reason="Roll back: canary accuracy 51.9 % < 90 %"),
        "rollback",
        "Roll back",
        None,
        rollback_evidence=threshold(0.519, limit=90),
    )
    assert (answer["status"], answer["canary_accuracy"], answer["threshold"]) == ("rollback", 51.9, 90)


def test_waiting_until_enough_data_then_healthy():
    assert lab_answer(state(), "continue", "burn-in", sequential(1.0, 0.9, burn_in_ok=False))["status"] == "waiting"
    assert lab_answer(state(), "hold", "baseline read", None)["status"] == "waiting"
    healthy = lab_answer(state(), "continue", "Holding", sequential(0.91, 0.9))
    assert (healthy["status"], healthy["canary_accuracy"]) == ("healthy", 91.0)


def test_below_the_line_but_not_yet_shown_worse_is_waiting_not_healthy():
    answer = lab_answer(state(), "continue", "Holding", sequential(0.71, 0.896))
    assert answer["status"] == "waiting" and "below 89.6%" in answer["message"]


def test_no_traffic_no_canary_and_promoted():
    assert lab_answer(state(weight=0, phase="idle"), "hold", "idle", None)["status"] == "waiting"
    assert "no version" in lab_answer(state(canary=None, weight=0), "hold", "idle", None)["message"]
    promoted = lab_answer(state(weight=0, phase="promoted", reason="version 2 promoted"), "hold", "idle", None)
    assert promoted["status"] == "healthy" and promoted["message"] == "version 2 promoted"
    # Shadow copies count as traffic.
    shadow = state(weight=0, shadow=50.0)
    assert lab_answer(shadow, "continue", "Holding", sequential(0.9, 0.9))["status"] == "healthy"
