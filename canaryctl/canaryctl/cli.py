"""canaryctl: command-line parsing and one function per command.

Exit codes: 0 ok, 1 the server refused or failed, 2 usage, 3 the stack is unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

from canaryctl import render
from canaryctl.client import EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, CtlError, Endpoint
from canaryctl.samples import labelled_samples

DEFAULT_URL = "http://localhost:8080"


def _add_common(parser: argparse.ArgumentParser, environ, suppress: bool) -> None:
    """Options accepted before or after the command; the subcommand copies must not overwrite
    what was given before the command, hence SUPPRESS there."""

    def default(value):
        return argparse.SUPPRESS if suppress else value

    url = environ.get("CANARY_URL", DEFAULT_URL)
    parser.add_argument("--url", default=default(url), help="the edge (nginx, :8080); env CANARY_URL")
    parser.add_argument(
        "--admin-url",
        default=default(environ.get("CANARY_ADMIN_URL") or None),
        help="where admin calls go, if not the edge itself; env CANARY_ADMIN_URL",
    )
    parser.add_argument(
        "--token",
        default=default(environ.get("CANARY_ADMIN_TOKEN") or None),
        help="admin bearer token; env CANARY_ADMIN_TOKEN",
    )
    parser.add_argument("--timeout", type=float, default=default(10.0), help="seconds per HTTP call")
    parser.add_argument("--json", action="store_true", default=default(False), help="print the raw JSON answers")


def _percentage(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 100, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def build_parser(environ=None) -> argparse.ArgumentParser:
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="canaryctl", description="Send labelled traffic to the Canary stack and steer its rollout."
    )
    _add_common(parser, environ, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_common(p, environ, suppress=True)
        return p

    p = command("send", "send N labelled requests to /predict")
    p.add_argument("n", type=_positive_int, nargs="?", default=20, help="how many (default 20)")
    p.add_argument("--delay", type=float, default=0.1, help="seconds between requests (default 0.1)")
    p.add_argument("--seed", type=int, default=None, help="seed of the sample choice")
    p.add_argument("--progress", action="store_true", help="draw the progress bar even without a TTY")
    p.add_argument("--quiet", action="store_true", help="no per-request lines")
    p.add_argument("--no-metrics", action="store_true", help="do not show /stats afterwards")
    p.add_argument(
        "--late-labels", action="store_true", help="send the labels afterwards to POST /feedback instead of inline"
    )
    p.add_argument(
        "--label-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="with --late-labels: wait S seconds after the last prediction before the labels",
    )
    p = command("feedback", "send a late label for an earlier prediction (POST /feedback)")
    p.add_argument("request_id", help="the request_id of a /predict answer")
    p.add_argument("label", help="the true class (e.g. 0, 1 or a class name), or with --value the true number")
    p.add_argument(
        "--value", action="store_true", help="a regression model's prediction: send LABEL as actual_value (a number)"
    )
    command("metrics", "show per-arm requests, share, accuracy or mean absolute error, and latency (GET /stats)")
    p = command("canary", "set the canary percentage (manual mode)")
    p.add_argument("percentage", type=_percentage)
    command("fail", "make the canary give bad predictions (failure simulation on)")
    command("nofail", "failure simulation off")
    command("rollback", "run the rollback check now and show the decision")
    command("reset", "reset metrics and settings")
    command("status", "show the controller's phase, weight, versions and last decision")
    command("promote", "promote the canary to production now")
    p = command("deploy", "start a canary rollout of a registered model version")
    p.add_argument("version", help="model version number, e.g. 3")
    p.add_argument("--production", metavar="VERSION", help="also set the production version (e.g. 1)")
    command("resume", "hand the weight back to the controller (auto mode)")
    return parser


class Context:
    def __init__(self, args, out):
        self.args = args
        self.out = out
        self.data = Endpoint(args.url, "the router", timeout=args.timeout)
        self.admin = Endpoint(args.admin_url or args.url, "the admin API", token=args.token, timeout=args.timeout)

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def show_json(self, body) -> None:
        self.say(json.dumps(body, indent=2, sort_keys=True))


def _weight_path(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def cmd_send(ctx: Context) -> int:
    args = ctx.args
    samples, source = labelled_samples()
    rng = random.Random(args.seed)
    bar = render.ProgressBar(args.n, ctx.out) if (args.progress or ctx.out.isatty()) and not args.json else None
    counts = {"production": 0, "canary": 0, "errors": 0}
    correct = {"production": 0, "canary": 0}
    pending: list[tuple[str, int]] = []  # --late-labels: (request_id, label) to send afterwards
    if not args.json:
        ctx.say(f"\nSending {args.n} requests to {ctx.data.base}/predict ({len(samples)} {source})\n")
    for i in range(1, args.n + 1):
        text, label = rng.choice(samples)
        answer, error = None, None
        try:
            body = {"text": text} if args.late_labels else {"text": text, "actual_label": label}
            answer = ctx.data.call("POST", "/predict", body)
        except CtlError as exc:
            if exc.exit_code == EXIT_UNREACHABLE:
                if bar:
                    bar.finish()
                raise
            error = str(exc)
        if error is None and answer.get("model_version") in correct:
            arm = answer["model_version"]
            if args.late_labels and isinstance(answer.get("request_id"), str):
                pending.append((answer["request_id"], label))
            counts[arm] += 1
            correct[arm] += int(answer.get("prediction") == label)
        else:
            counts["errors"] += 1
            error = error or f"unexpected answer {json.dumps(answer)[:120]}"
        if args.json:
            ctx.say(json.dumps({"n": i, "actual_label": label, "answer": answer, "error": error}))
        else:
            if not args.quiet:
                if bar:
                    bar.clear()
                ctx.say(render.request_line(i, label, answer, error))
            if bar:
                bar.draw(i, counts)
        if args.delay > 0 and i < args.n:
            time.sleep(args.delay)
    if bar:
        bar.finish()
    late = _send_late_labels(ctx, pending) if args.late_labels else None
    if args.json:
        summary = {"counts": counts, "correct": correct}
        if late is not None:
            summary["late_labels"] = late
        ctx.say(json.dumps({"summary": summary}))
    else:
        ctx.say("\n" + render.send_summary(counts, correct))
        if late is not None:
            ctx.say("Late labels sent to /feedback: " + ", ".join(f"{k} {v}" for k, v in sorted(late.items())))
        if not args.no_metrics:
            try:
                ctx.say(render.stats_table(ctx.data.call("GET", "/stats")))
            except CtlError as exc:
                ctx.say(f"(could not fetch /stats: {exc})")
    return EXIT_REFUSED if counts["errors"] else EXIT_OK


def _send_late_labels(ctx: Context, pending: list[tuple[str, int]]) -> dict:
    """POST /feedback for each answer, after --label-delay; counts of the results."""
    if ctx.args.label_delay > 0 and pending:
        if not ctx.args.json:
            ctx.say(f"Waiting {ctx.args.label_delay:g} s before sending {len(pending)} late labels")
        time.sleep(ctx.args.label_delay)
    results: dict = {}
    for request_id, label in pending:
        try:
            answer = ctx.data.call("POST", "/feedback", {"request_id": request_id, "actual_label": label})
            kind = answer.get("outcome", "ok")
        except CtlError as exc:
            if exc.exit_code == EXIT_UNREACHABLE:
                raise
            kind = "refused"
        results[kind] = results.get(kind, 0) + 1
    return results


def _truth(label: str, value: bool) -> dict:
    """The label as the router wants it: a number for actual_value, else a class (whole numbers as
    ints, since class labels may be ints or strings)."""
    if value:
        try:
            return {"actual_value": float(label)}
        except ValueError:
            raise CtlError(f"--value needs a number, got {label!r}", EXIT_USAGE) from None
    try:
        return {"actual_label": int(label)}
    except ValueError:
        return {"actual_label": label}


def cmd_feedback(ctx: Context) -> int:
    truth = _truth(ctx.args.label, ctx.args.value)
    body = ctx.data.call("POST", "/feedback", {"request_id": ctx.args.request_id, **truth})
    if ctx.args.json:
        ctx.show_json(body)
    elif "actual_value" in truth:
        ctx.say(
            f"Value {body.get('actual_value')} recorded for {body.get('model_version')} "
            f"v{body.get('version')} (predicted {body.get('prediction')}: absolute error "
            f"{render.num(body.get('abs_error'), '{:.4g}')})"
        )
    else:
        ctx.say(
            f"Label {body.get('actual_label')} recorded for {body.get('model_version')} "
            f"v{body.get('version')} (predicted {body.get('prediction')}: {body.get('outcome')})"
        )
    return EXIT_OK


def cmd_metrics(ctx: Context) -> int:
    body = ctx.data.call("GET", "/stats")
    ctx.show_json(body) if ctx.args.json else ctx.say(render.stats_table(body))
    return EXIT_OK


def cmd_canary(ctx: Context) -> int:
    value = ctx.args.percentage
    body = ctx.admin.call("POST", f"/set_canary/{_weight_path(value)}")
    if ctx.args.json:
        ctx.show_json(body)
    else:
        now = render.canary_percentage(body)
        ctx.say(f"Canary percentage set to: {render.pct_text(value if now is None else now)}")
    return EXIT_OK


def _failure(ctx: Context, on: bool) -> int:
    body = ctx.admin.call("POST", f"/simulate_failure/{1 if on else 0}")
    if ctx.args.json:
        ctx.show_json(body)
    elif on:
        ctx.say("Failure simulation ENABLED: the canary will make bad predictions")
    else:
        ctx.say("Failure simulation DISABLED")
    return EXIT_OK


def cmd_rollback(ctx: Context) -> int:
    body = ctx.admin.call("POST", "/check_rollback")
    if ctx.args.json:
        ctx.show_json(body)
        return EXIT_OK
    percentage = render.canary_percentage(body)
    if percentage is None:
        try:  # the answer did not carry the weight: read it from the data plane
            percentage = render.canary_percentage(ctx.data.call("GET", "/stats"))
        except CtlError:
            percentage = None
    ctx.say(render.rollback_text(body, percentage))
    return EXIT_OK


def cmd_reset(ctx: Context) -> int:
    body = ctx.admin.call("POST", "/reset")
    if ctx.args.json:
        ctx.show_json(body)
    else:
        pct = render.canary_percentage(body)
        ctx.say("System reset complete" + (f" (canary at {render.pct_text(pct)})" if pct is not None else ""))
    return EXIT_OK


def cmd_status(ctx: Context) -> int:
    body = ctx.admin.call("GET", "/controller/status")
    ctx.show_json(body) if ctx.args.json else ctx.say(render.status_text(body))
    return EXIT_OK


def _controller_action(ctx: Context, path: str, title: str, payload: dict | None = None) -> int:
    body = ctx.admin.call("POST", path, payload)
    ctx.show_json(body) if ctx.args.json else ctx.say(render.action_text(title, body))
    return EXIT_OK


def cmd_deploy(ctx: Context) -> int:
    payload = {"version": str(ctx.args.version)}
    if ctx.args.production:
        payload["production"] = str(ctx.args.production)
    return _controller_action(ctx, "/controller/deploy", f"Deploy of v{ctx.args.version} requested", payload)


COMMANDS = {
    "send": cmd_send,
    "metrics": cmd_metrics,
    "feedback": cmd_feedback,
    "canary": cmd_canary,
    "fail": lambda ctx: _failure(ctx, True),
    "nofail": lambda ctx: _failure(ctx, False),
    "rollback": cmd_rollback,
    "reset": cmd_reset,
    "status": cmd_status,
    "promote": lambda ctx: _controller_action(ctx, "/controller/promote", "Promote requested"),
    "deploy": cmd_deploy,
    "resume": lambda ctx: _controller_action(ctx, "/controller/resume", "Resumed automatic rollout"),
}


def main(argv=None, environ=None, out=None) -> int:
    out = out or sys.stdout
    try:
        args = build_parser(environ).parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return COMMANDS[args.command](Context(args, out))
    except CtlError as exc:
        out.flush()
        print(f"canaryctl: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("canaryctl: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, the shell's convention


def main_exit() -> None:
    sys.exit(main())
