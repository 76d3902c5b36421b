"""canaryctl: argument parsing, output formatting, error messages and exit codes.

The router and controller are being written elsewhere, so these tests talk to a tiny real
Flask stand-in on a loopback port that answers the contract's data-plane paths (/predict,
/stats) and admin paths (bearer token "tok"); the lead runs canaryctl against the real stack.
"""

from __future__ import annotations

import io
import json
import socket
import sys

import pytest
from flask import Flask, jsonify, request

from canaryctl import render, samples
from canaryctl.cli import _weight_path, build_parser, main
from support.served_app import ServedApp

TOKEN = "tok"


class StandInStack(ServedApp):
    """One Flask app playing nginx's public and admin ports; records admin calls."""

    def __init__(self):
        self.calls: list[tuple[str, str, object]] = []
        self.weight = 20.0
        self.n = 0
        self.feedback: list[dict] = []
        app = Flask("stand-in-stack")

        def admin(handler):
            def wrapped(*args, **kwargs):
                if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return jsonify(error="missing or wrong bearer token"), 401
                self.calls.append((request.method, request.path, request.get_json(silent=True)))
                return handler(*args, **kwargs)

            wrapped.__name__ = handler.__name__
            return wrapped

        @app.post("/predict")
        def predict():
            body = request.get_json()
            self.n += 1
            arm = "canary" if self.n % 4 == 0 else "production"
            return jsonify(
                prediction=body.get("actual_label", 1),
                model_version=arm,
                version="2" if arm == "canary" else "1",
                latency_ms=2.5,
                request_id=str(self.n),
            )

        @app.post("/feedback")
        def feedback():
            body = request.get_json()
            self.feedback.append(body)
            if body["request_id"] == "bad":
                return jsonify(error="unknown request_id: its signature does not match"), 403
            if "actual_value" in body:  # a regression model's prediction
                return jsonify(
                    request_id=body["request_id"],
                    model_version="canary",
                    version="2",
                    prediction=2.5,
                    actual_value=body["actual_value"],
                    abs_error=abs(2.5 - body["actual_value"]),
                )
            return jsonify(
                request_id=body["request_id"],
                model_version="production",
                version="1",
                prediction=1,
                actual_label=body["actual_label"],
                outcome="correct" if body["actual_label"] == 1 else "incorrect",
            )

        @app.get("/stats")
        def stats():
            return jsonify(
                production={"requests": 30, "accuracy": 90.0, "avg_latency_ms": 4.0, "p95_latency_ms": 8.0},
                canary={"requests": 10, "accuracy": 70.0, "avg_latency_ms": 5.0, "p95_latency_ms": 9.5},
                canary_percentage=self.weight,
            )

        @app.post("/set_canary/<value>")
        @admin
        def set_canary(value):
            self.weight = float(value)
            return jsonify(canary_percentage=self.weight, mode="manual")

        @app.post("/simulate_failure/<int:on>")
        @admin
        def simulate_failure(on):
            return jsonify(simulate_failure=bool(on))

        @app.post("/check_rollback")
        @admin
        def check_rollback():
            self.weight = 0.0
            return jsonify(
                decision="rollback",
                summary="canary accuracy 70% is worse than production 90%",
                rollback=True,
                status={"phase": "rolled_back"},
                canary_percentage=0,
            )

        @app.post("/reset")
        @admin
        def reset():
            self.weight = 20.0
            return jsonify(status="reset", canary_percentage=20)

        @app.get("/controller/status")
        @admin
        def status():
            return jsonify(
                phase="progressing",
                mode="auto",
                canary_percentage=self.weight,
                production_version="1",
                canary_version="2",
                reason="stepped to 20%",
                last_verdict={
                    "decision": "continue",
                    "summary": "holding: accuracy needs more samples",
                    "metrics": [
                        {
                            "name": "accuracy",
                            "n": {"canary": 120},
                            "g_hat": 0.01,
                            "explanation": "accuracy gate: burn-in",
                        }
                    ],
                },
            )

        @app.post("/controller/deploy")
        @admin
        def deploy():
            version = request.get_json()["version"]
            if version == "99":
                return jsonify(error="version 99 is not registered"), 400
            return jsonify(
                status="deploying",
                canary_version=version,
                production_version=request.get_json().get("production"),
                canary_percentage=5,
            )

        @app.post("/controller/promote")
        @admin
        def promote():
            return jsonify(error="controller crashed"), 500

        @app.post("/controller/resume")
        @admin
        def resume():
            return jsonify(status="auto", note="the controller steps the weight again")

        self.serve(app)


@pytest.fixture(scope="module")
def stack():
    with StandInStack() as s:
        yield s


def ctl(stack, *argv, token=TOKEN):
    """Run canaryctl against the stand-in; (exit code, stdout text)."""
    out = io.StringIO()
    options = ["--url", stack.url, "--admin-url", stack.url] + (["--token", token] if token else [])
    code = main(options + list(argv), environ={}, out=out)
    return code, out.getvalue()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- parsing -------------------------------------------------------------------------------


def test_defaults_and_environment():
    args = build_parser({}).parse_args(["metrics"])
    assert (args.url, args.admin_url, args.token, args.json) == ("http://localhost:8080", None, None, False)
    env = {"CANARY_URL": "http://h:1", "CANARY_ADMIN_URL": "http://h:2", "CANARY_ADMIN_TOKEN": "t"}
    args = build_parser(env).parse_args(["status"])
    assert (args.url, args.admin_url, args.token) == ("http://h:1", "http://h:2", "t")


def test_common_options_work_before_and_after_the_command():
    before = build_parser({}).parse_args(["--json", "--url", "http://a:1", "metrics"])
    after = build_parser({}).parse_args(["metrics", "--json", "--url", "http://a:1"])
    assert (before.json, before.url) == (after.json, after.url) == (True, "http://a:1")
    # an option given before the command is not reset by the subcommand's defaults
    assert build_parser({}).parse_args(["--token", "x", "status"]).token == "x"


def test_send_arguments():
    args = build_parser({}).parse_args(["send"])
    assert args.n == 20 and not args.progress
    args = build_parser({}).parse_args(["send", "50", "--progress", "--delay", "0"])
    assert (args.n, args.progress, args.delay) == (50, True, 0.0)


@pytest.mark.parametrize(
    "argv", [[], ["fly"], ["canary"], ["canary", "150"], ["canary", "abc"], ["send", "0"], ["send", "many"], ["deploy"]]
)
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv, environ={}) == 2
    assert "usage:" in capsys.readouterr().err


def test_help_exits_0(capsys):
    assert main(["--help"], environ={}) == 0
    assert "rollback" in capsys.readouterr().out


def test_weight_in_the_path():
    assert _weight_path(20.0) == "20" and _weight_path(12.5) == "12.5" and _weight_path(0.0) == "0"


# ---- formatting ----------------------------------------------------------------------------


def test_stats_table_from_the_seed_shape():
    table = render.stats_table(
        {
            "production": {"requests": 30, "accuracy": 90.0, "avg_latency_ms": 4.0},
            "canary": {"requests": 10, "accuracy": 70.0, "avg_latency_ms": 5.25},
            "canary_percentage": 20,
        }
    )
    assert "Canary traffic: 20%" in table
    assert "| production  |       - |       30 |  75.0% |    90.0% |       4.0ms |           - |" in table
    assert "| canary      |       - |       10 |  25.0% |    70.0% |       5.2ms |           - |" in table


def test_stats_table_with_models_nested_and_no_traffic():
    table = render.stats_table(
        {
            "models": {"production": {"requests": 0, "version": "1"}, "canary": {"requests": 0, "version": "2"}},
            "canary_percentage": 12.5,
            "fail_closed": True,
        }
    )
    assert "Canary traffic: 12.5%" in table and "failing closed" in table
    assert "| production  |       1 |        0 |      - |        - |" in table


def test_stats_table_of_a_regression_model_shows_mae_and_labelled_values():
    stats = {
        "production": {
            "requests": 30,
            "task": "regression",
            "accuracy": None,
            "mae": 0.51234,
            "labelled_values": 24,
            "labelled": 0,
            "avg_latency_ms": 4.0,
            "version": "1",
        },
        "canary": {
            "requests": 10,
            "task": "regression",
            "accuracy": None,
            "mae": 1.2,
            "labelled_values": 8,
            "labelled": 0,
            "version": "2",
        },
        "canary_percentage": 25,
    }
    table = render.stats_table(stats)
    assert "| Model       | Version | Requests | Share  |      MAE | Avg latency | p95 latency |" in table
    assert "| production  |       1 |       30 |  75.0% |   0.5123 |       4.0ms |           - |" in table
    assert "| canary      |       2 |       10 |  25.0% |      1.2 |           - |           - |" in table
    assert "Labelled values (actual_value): production 24, canary 8" in table
    assert "Accuracy" not in table
    # A router that does not say the task yet: an MAE without accuracy is a regression model.
    for arm in ("production", "canary"):
        del stats[arm]["task"]
    assert "|      MAE |" in render.stats_table(stats)
    # No labelled value yet: MAE unknown.
    assert "|        - |" in render.stats_table(
        {
            "production": {"requests": 3, "task": "regression", "mae": None},
            "canary": {"requests": 0, "task": "regression", "mae": None},
        }
    )


def test_stats_table_of_a_classifier_counts_labelled_predictions():
    table = render.stats_table(
        {
            "production": {
                "requests": 30,
                "task": "classification",
                "accuracy": 90.0,
                "labelled": 20,
                "labelled_values": 0,
                "mae": None,
            },
            "canary": {
                "requests": 10,
                "task": "classification",
                "accuracy": 70.0,
                "labelled": 6,
                "labelled_values": 0,
                "mae": None,
            },
        }
    )
    assert "| Accuracy |" in table and "|    90.0% |" in table
    assert "Labelled predictions (actual_label): production 20, canary 6" in table


def test_status_text_names_the_model_and_shows_regression_evidence():
    verdict = {
        "decision": "hold",
        "summary": "Holding at 10 %",
        "metrics": [
            {
                "name": "mae",
                "kind": "mae",
                "n": {"canary": 40, "production": 160},
                "p": {"canary": 0.8, "production": 0.9},
                "g_hat": -0.1,
                "regression": {
                    "measure": "clipped mean absolute error (errors clipped at 5)",
                    "clip": 5.0,
                    "clipped_mae": {"canary": 1.0, "production": 0.5},
                    "margin_error": 0.1,
                },
                "explanation": "mae gate: holding",
            },
            {
                "name": "within",
                "kind": "within_tolerance",
                "n": {"canary": 40, "production": 160},
                "p": {"canary": 0.712, "production": 0.803},
                "g_hat": -0.091,
                "regression": {
                    "measure": "share within 0.5 of the label",
                    "tolerance": 0.5,
                    "share_within": {"canary": 0.712, "production": 0.803},
                },
                "explanation": "within gate: holding",
            },
        ],
    }
    lines = render.status_text(
        {"model_name": "house-prices", "phase": "progressing", "canary_percentage": 10, "last_verdict": verdict}
    ).splitlines()
    assert lines[0] == "Model:     house-prices"
    assert (
        "      n canary=40 production=160; clipped MAE canary=1 production=0.5; clip 5; "
        "margin 0.1 (label units); g_hat -0.1"
    ) in lines
    assert ("      n canary=40 production=160; share within 0.5 canary=71.2% production=80.3%; g_hat -0.091") in lines
    # The good-scale p of a regression kind is not shown: its own terms are.
    assert not any("p canary=0.8" in line for line in lines)


def test_request_lines():
    ok = render.request_line(3, 1, {"prediction": 1, "model_version": "canary", "version": "2", "latency_ms": 7.25})
    assert ok == "     3. [CANARY v2      ] pred 1 label 1 | OK    | 7.2ms"
    wrong = render.request_line(4, 0, {"prediction": 1, "model_version": "production"})
    assert "[PRODUCTION" in wrong and "WRONG" in wrong and wrong.endswith("| -")
    assert render.request_line(5, 0, None, "boom") == "     5. ERROR: boom"


def test_send_summary_math():
    line = render.send_summary({"production": 6, "canary": 2, "errors": 2}, {"production": 3, "canary": 2})
    assert line == ("Sent 10: production 6 (75.0%, accuracy 50.0%); canary 2 (25.0%, accuracy 100.0%); errors 2")


def test_progress_bar():
    out = io.StringIO()
    bar = render.ProgressBar(4, out, width=8)
    bar.draw(2, {"canary": 1})
    bar.clear()
    bar.draw(4, {"canary": 2})
    bar.finish()
    assert out.getvalue().endswith("\r[########] 4/4 canary 2\n")
    assert "\r[####----] 2/4 canary 1" in out.getvalue()


def test_status_text_from_the_controllers_shape():
    body = {
        "phase": "rolled_back",
        "mode": "auto",
        "canary_percentage": 0,
        "production_version": "1",
        "canary_version": "2",
        "reason": "accuracy worse",
        "analysis_mode": "sequential",
        "steps": [5, 10, 20, 50],
        "note": None,
        "metrics_outage_since": None,
        "last_verdict": {
            "decision": "rollback",
            "summary": "canary accuracy 50% < production 90%",
            "metrics": [
                {
                    "name": "accuracy",
                    "kind": "accuracy",
                    "n": {"canary": 40, "production": 160},
                    "p": {"canary": 0.5, "production": 0.9},
                    "g_hat": -0.4012345,
                    "variance": {"rollback": 0.01},
                    "explanation": "accuracy is worse on the canary",
                }
            ],
            "guards": [
                {"name": "error_burst", "enabled": True, "log_bf": 0.5, "explanation": "error_burst: no error burst"},
                {"name": "restarts", "enabled": False, "count": 0},
            ],
        },
    }
    lines = render.status_text(body).splitlines()
    assert lines[:6] == [
        "Phase:     rolled_back (auto)",
        "Weight:    0% to canary",
        "Versions:  production v1, canary v2",
        "Reason:    accuracy worse",
        "Analysis:  sequential, steps 5%, 10%, 20%, 50%",
        "Decision:  rollback - canary accuracy 50% < production 90%",
    ]
    assert "    accuracy: accuracy is worse on the canary" in lines
    assert "      n canary=40 production=160; p canary=0.5 production=0.9; g_hat -0.4012" in lines
    assert "    error_burst: no error burst" in lines and not any("restarts" in line for line in lines)


def test_status_text_says_which_detector_fired_and_since_when():
    since = 1796306520.0  # 14:02:00 UTC
    verdict = {
        "decision": "rollback",
        "summary": "Roll back (change detector): ...",
        "at": since + 240,
        "metrics": [
            {"name": "latency", "rollback": False, "detector": None},
            {
                "name": "accuracy",
                "rollback": True,
                "detector": "change",
                "change_since": since,
                "explanation": "accuracy turned worse on the canary about 4 min ago",
            },
        ],
    }
    lines = render.status_text({"phase": "rolled_back", "last_verdict": verdict}).splitlines()
    assert (
        "Detector:  accuracy: the change detector (evidence since the change) since 14:02:00 UTC "
        "(4.0 min before the decision)"
    ) in lines
    verdict["metrics"][1].update(detector="from_start", change_since=None)
    assert (
        "Detector:  accuracy: the from-start test (evidence since the rollout began)"
        in render.status_text({"last_verdict": verdict}).splitlines()
    )


def test_status_text_nested_state_unknown_evidence_and_no_decision():
    text = render.status_text(
        {
            "state": {"phase": "progressing", "canary_percentage": 5},
            "last_decision": {"decision": "continue", "metrics": [{"metric": "x", "z": 1.5}]},
        }
    )
    assert "Weight:    5% to canary" in text and "    x:\n      z=1.5" in text
    assert "Decision:  none yet" in render.status_text({"phase": "idle", "canary_percentage": 0})


def test_action_lines():
    assert (
        render.action_text("Promote requested", {"status": "promoting", "version": "2"})
        == "Promote requested - promoting, version 2"
    )
    assert (
        render.action_text("Resumed", {"status": "auto", "note": "the controller steps the weight again"})
        == "Resumed - auto, the controller steps the weight again"
    )


def test_rollback_text_from_the_seed_answer():
    text = render.rollback_text({"status": "rollback", "canary_accuracy": 60.0, "threshold": 85}, 0)
    assert text.splitlines() == [
        "ROLLBACK TRIGGERED",
        "  Why: canary accuracy 60.0% (threshold 85%)",
        "  Canary traffic now: 0%",
    ]
    text = render.rollback_text({"status": "waiting", "message": "Not enough data yet"}, 20)
    assert text.startswith("Decision: WAITING") and "Canary traffic now: 20%" in text
    # the router's answer: the controller's /check plus the weight it now serves
    text = render.rollback_text(
        {
            "decision": "continue",
            "summary": "holding at 20%",
            "rollback": False,
            "status": {"phase": "progressing"},
            "canary_percentage": 20,
        },
        20,
    )
    assert text.splitlines() == ["Decision: CONTINUE", "  Why: holding at 20%", "  Canary traffic now: 20%"]


# ---- commands against the stand-in ---------------------------------------------------------


def test_send_prints_lines_a_summary_and_the_metrics(stack):
    code, out = ctl(stack, "send", "8", "--delay", "0", "--seed", "1")
    assert code == 0
    request_lines = [line for line in out.splitlines() if line.strip()[:2].rstrip(".").isdigit()]
    assert len(request_lines) == 8 and all("| OK    |" in line for line in request_lines)
    assert "Sent 8: production 6 (75.0%, accuracy 100.0%); canary 2 (25.0%, accuracy 100.0%); errors 0" in out
    assert "CURRENT METRICS" in out


def test_send_json_and_progress(stack):
    code, out = ctl(stack, "send", "3", "--delay", "0", "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(lines) == 4 and lines[0]["answer"]["model_version"] in ("production", "canary")
    assert lines[-1]["summary"]["counts"]["errors"] == 0
    code, out = ctl(stack, "send", "3", "--delay", "0", "--progress", "--quiet", "--no-metrics")
    assert code == 0 and "] 3/3 production" in out and "CURRENT METRICS" not in out


def test_send_uses_builtin_samples_without_the_project_dataset(monkeypatch):
    monkeypatch.setitem(sys.modules, "canary_common.dataset", None)  # import now fails
    pairs, source = samples.labelled_samples()
    assert source == "built-in samples" and {label for _, label in pairs} == {0, 1}


def test_metrics_table_and_json(stack):
    code, out = ctl(stack, "metrics")
    assert code == 0 and "|  75.0% |" in out and "8.0ms" in out
    code, out = ctl(stack, "metrics", "--json")
    assert json.loads(out)["canary"]["requests"] == 10


def test_admin_commands(stack):
    assert ctl(stack, "canary", "12.5") == (0, "Canary percentage set to: 12.5%\n")
    assert ctl(stack, "fail")[1].startswith("Failure simulation ENABLED")
    assert ctl(stack, "nofail")[1] == "Failure simulation DISABLED\n"
    code, out = ctl(stack, "rollback")
    assert code == 0 and out.startswith("ROLLBACK TRIGGERED") and "Canary traffic now: 0%" in out
    assert ctl(stack, "reset") == (0, "System reset complete (canary at 20%)\n")
    code, out = ctl(stack, "status")
    assert "Decision:  continue - holding: accuracy needs more samples" in out and "g_hat 0.01" in out
    code, out = ctl(stack, "deploy", "3")
    assert code == 0 and out == "Deploy of v3 requested - deploying, canary 5%, canary v3\n"
    assert ctl(stack, "resume")[0] == 0
    assert ("POST", "/controller/deploy", {"version": "3"}) in stack.calls
    assert ctl(stack, "deploy", "2", "--production", "1")[0] == 0
    assert ("POST", "/controller/deploy", {"version": "2", "production": "1"}) in stack.calls
    assert ("POST", "/set_canary/12.5", None) in stack.calls


# ---- errors and exit codes -----------------------------------------------------------------


def test_unreachable_router_exits_3(capsys):
    url = f"http://127.0.0.1:{closed_port()}"
    assert main(["--url", url, "metrics"], environ={}) == 3
    assert capsys.readouterr().err == (
        f"canaryctl: cannot reach the router at {url}: is the stack up? try `docker compose up`\n"
    )
    assert main(["--admin-url", url, "status"], environ={}) == 3
    assert f"cannot reach the admin API at {url}" in capsys.readouterr().err


def test_send_stops_at_once_when_unreachable(capsys):
    url = f"http://127.0.0.1:{closed_port()}"
    assert main(["--url", url, "send", "50", "--delay", "0"], environ={}, out=io.StringIO()) == 3
    assert capsys.readouterr().err.count("cannot reach the router") == 1


def test_401_without_and_with_a_wrong_token(stack, capsys):
    assert ctl(stack, "fail", token=None)[0] == 1
    err = capsys.readouterr().err
    assert "401 Unauthorized" in err and "pass --token or set CANARY_ADMIN_TOKEN" in err
    assert ctl(stack, "fail", token="nope")[0] == 1
    assert "the token was rejected" in capsys.readouterr().err


def test_400_shows_the_servers_message(stack, capsys):
    assert ctl(stack, "deploy", "99")[0] == 1
    assert capsys.readouterr().err == (
        "canaryctl: the admin API refused POST /controller/deploy (HTTP 400): version 99 is not registered\n"
    )


def test_500_is_a_failure(stack, capsys):
    assert ctl(stack, "promote")[0] == 1
    assert "failed on POST /controller/promote (HTTP 500): controller crashed" in capsys.readouterr().err


def test_send_with_late_labels_posts_them_to_feedback(stack):
    stack.feedback.clear()
    code, out = ctl(stack, "send", "4", "--delay", "0", "--late-labels", "--label-delay", "0.1", "--json")
    assert code == 0
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert len(stack.feedback) == 4 and sum(summary["late_labels"].values()) == 4
    assert all(set(b) == {"request_id", "actual_label"} for b in stack.feedback)


def test_feedback_command(stack):
    code, out = ctl(stack, "feedback", "abc.def", "1")
    assert code == 0 and "Label 1 recorded for production v1" in out and "correct" in out
    code, out = ctl(stack, "feedback", "bad", "1")
    assert code == 1
    # Class labels may be strings; only whole numbers go as ints.
    code, out = ctl(stack, "feedback", "abc.def", "positive")
    assert code == 0 and stack.feedback[-1] == {"request_id": "abc.def", "actual_label": "positive"}
    code, _ = ctl(stack, "feedback", "abc.def", "one", "--value")
    assert code == 2


def test_feedback_value_for_a_regression_model(stack):
    code, out = ctl(stack, "feedback", "abc.def", "3.25", "--value")
    assert stack.feedback[-1] == {"request_id": "abc.def", "actual_value": 3.25}
    assert code == 0 and out == "Value 3.25 recorded for canary v2 (predicted 2.5: absolute error 0.75)\n"
