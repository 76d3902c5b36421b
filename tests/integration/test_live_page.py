"""The live rollout page (GET /) in a real browser against the process-mode stack.

A rollout happens first (version 2 steps up under labelled traffic, then goes bad and is rolled
back by the sequential analysis); then Debian's headless Chromium loads the page, runs its
script, takes a screenshot (written to the stack's log dir) and dumps the DOM, and the test
checks from that DOM what a person would see: the weight chart drawn, a chart per metric with
both arms and the bounds, the decisions in words, the versions, the rollback explained.
A 200 alone does not pass.

A regression model's rollout is drawn from a recorded rollout.json (served with the page by a
stand-in, no stack needed): MAE per arm in the label's unit, the share within tolerance, the
router counts as mean absolute error and labelled values, the model's name in the header."""

import json
import shutil
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from werkzeug import Response

from canary_controller.timeline import metric_point
from support import standin
from support.binaries import require
from support.procs import ROOT
from support.stack import Traffic

FAST = str(ROOT / "tests/integration/analysis-fast.yaml")
THRESHOLD = str(ROOT / "controller/analysis-threshold.yaml")
METRICS = ("accuracy", "availability", "latency")
CHROMIUM_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def chromium():
    return require("chromium", "chromium")


@pytest.fixture(scope="module")
def rolled_back(stack):
    """Version 2 deployed under traffic, stepped up at least once, then made bad and rolled back."""
    stack.restart_controller(ANALYSIS_CONFIG=FAST, STEP_INTERVAL_S="")
    registry = stack.registry()
    try:
        stack.deploy("2", production="1")
        with Traffic(stack.public_url, rate=50) as traffic:
            stack.wait_for(lambda: registry.read_state().weight >= 10, timeout=120, what="a first step-up")
            stack.set_faults(wrong_rate=0.6)
            try:
                stack.wait_for(
                    lambda: registry.read_state().phase == "rolled_back", timeout=120, what="the bad canary rolled back"
                )
            finally:
                stack.set_faults()
            time.sleep(2)  # a few idle polls at weight 0 after the rollback
        assert traffic.non_ok == 0, traffic.failures[:5]
        yield stack
    finally:
        stack.restart_controller(ANALYSIS_CONFIG=THRESHOLD, STEP_INTERVAL_S="4")


# -- a small DOM from Chromium's --dump-dom --------------------------------------------------------
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent=None):
        self.tag, self.attrs, self.parent, self.children, self.texts = tag, dict(attrs), parent, [], []

    @property
    def classes(self):
        return set((self.attrs.get("class") or "").split())

    def text(self):
        return "".join(t if isinstance(t, str) else t.text() for t in self.texts)

    def walk(self):
        for child in self.children:
            yield child
            yield from child.walk()

    def find_all(self, tag=None, cls=None, **attrs):
        return [
            n
            for n in self.walk()
            if (tag is None or n.tag == tag)
            and (cls is None or cls in n.classes)
            and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def find(self, tag=None, cls=None, **attrs):
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag or '*'}> class={cls} {attrs} in the rendered page"
        return found[0]


class DOM(HTMLParser):
    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#root", {})
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        self.current.texts.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        self.current.texts.append(node)

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        self.current.texts.append(data)


def path_points(d: str) -> int:
    """How many points an SVG path visits (one per M/L/H/V command)."""
    return sum(d.count(c) for c in "MLHV")


def load_in_chromium(chromium: str, url: str, screenshot: Path) -> str:
    """The page after its script ran (8 s of virtual time: the first load and two refreshes)."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=8000",
            "--window-size=1400,1800",
            f"--screenshot={screenshot}",
            "--dump-dom",
            url,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)
        assert result.returncode == 0, f"chromium exited {result.returncode}: {result.stderr[-3000:]}"
        assert "<body" in result.stdout, f"chromium dumped no DOM: {result.stderr[-3000:]}"
        return result.stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_live_page_draws_the_rollout(rolled_back, chromium):
    stack = rolled_back
    base = stack.public_url  # as people see it: through nginx's public server

    # No login: plain GETs. The page is HTML, its data JSON with nothing missing.
    page = requests.get(base + "/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    data = requests.get(base + "/rollout.json", timeout=10)
    assert data.status_code == 200, f"/rollout.json through nginx: HTTP {data.status_code} {data.text[:200]}"
    data = data.json()
    assert data["errors"] == [], data["errors"]
    assert data["status"]["phase"] == "rolled_back" and len(data["timeline"]["points"]) >= 5

    shot = stack.log_dir / "live-page.png"
    shot.unlink(missing_ok=True)
    started = time.monotonic()
    html = load_in_chromium(chromium, base + "/", shot)
    print(f"\nlive page screenshot: {shot} (chromium took {time.monotonic() - started:.1f}s)")
    (stack.log_dir / "live-page.html").write_text(html)
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000

    dom = DOM(html).root
    body = dom.find("body")
    errors = [li.text() for li in dom.find(id="error-list").find_all("li")]
    assert int(body.attrs["data-rendered"]) >= 1 and body.attrs["data-state"] == "ok", (body.attrs, errors)

    # The header: rolled back, weight 0, versions.
    badge = dom.find(id="status-badge")
    assert badge.attrs["data-phase"] == "rolled_back" and badge.text() == "Rolled back"
    assert dom.find(id="weight-now").text().replace("\xa0", " ").strip() == "0 %"
    versions = dom.find(id="versions")
    assert (versions.attrs["data-production"], versions.attrs["data-canary"]) == ("1", "2")
    assert dom.find(id="production-version").text() == "v1" and dom.find(id="canary-version").text() == "v2"
    assert dom.find(id="note").text().strip() not in ("", "–")

    # Why: the rollback box names the metric (and the detector, when the analysis says which).
    box = dom.find(id="rollback-box")
    assert "hidden" not in box.attrs
    reasons = box.find_all("li", cls="reason")
    assert reasons and any("accuracy" in r.text() for r in reasons), [r.text() for r in reasons]
    for r in reasons:  # when the analysis says which detector fired, the page says it in words
        detector = r.attrs.get("data-detector")
        if detector:
            words = {"change": "Rolled back by the change detector", "from_start": "Rolled back by the from-start test"}
            assert r.text().startswith(words[detector]) and "since" in r.text(), r.text()

    # (a) the weight over time: a step line through the rollout's points, up and back to 0.
    weight = dom.find("svg", id="weight-chart")
    assert int(weight.attrs["data-points"]) >= 2
    line = weight.find("path", cls="weight-line")
    assert path_points(line.attrs["d"]) >= 3
    assert weight.find_all("line", cls="decision-marker"), "no decision marked on the weight chart"

    # (b) per metric: both arms, the bounds band, the margin.
    charts = {svg.attrs["data-metric"]: svg for svg in dom.find_all("svg", cls="metric-chart")}
    assert set(METRICS) <= set(charts), sorted(charts)
    for name in METRICS:
        svg = charts[name]
        assert int(svg.attrs["data-points"]) >= 4, (name, svg.attrs)
        assert int(svg.attrs["data-band-points"]) >= 2, (name, svg.attrs)
        for cls in ("arm-canary", "arm-production", "g-band", "g-line", "margin-line"):
            path = svg.find("path", cls=cls)
            assert path_points(path.attrs["d"]) >= 2, (name, cls, path.attrs["d"][:80])
    accuracy_card = dom.find("div", cls="metric", data_metric="accuracy")
    assert "rollback" in accuracy_card.find("span", cls="chip").text()

    # (c) the decisions in words, newest first.
    log = dom.find("ul", id="decision-log")
    entries = log.find_all("li", cls="decision")
    assert len(entries) >= 2, [e.text() for e in entries]
    newest = entries[0]
    assert newest.attrs["data-decision"] == "rollback" and newest.find(cls="what").text() == "Rolled back"
    assert "accuracy" in newest.find(cls="why").text()
    assert any(e.find(cls="what").text() == "Stepped up" for e in entries)
    for e in entries:
        assert len(e.find(cls="why").text().split()) >= 3, e.text()  # words, not a code


# -- a regression model's rollout, from a recorded rollout.json -----------------------------------
CLIP, TOLERANCE = 5.0, 0.5
MAE = {"production": 0.5, "canary": 1.2}  # clipped MAE per arm: p = 1 - MAE / clip
WITHIN = {"production": 0.8, "canary": 0.55}


def _regression_metrics(n: float) -> list[dict]:
    """Verdict evidence in the shape of controller/canary_controller/analysis/sequential.py."""
    p_mae = {arm: 1 - v / CLIP for arm, v in MAE.items()}
    g_mae, g_within = p_mae["canary"] - p_mae["production"], WITHIN["canary"] - WITHIN["production"]
    common = {
        "promotion_gate": True,
        "n": {"canary": n, "production": 4 * n},
        "delta_rollback": 0.0,
        "burn_in_ok": True,
        "non_inferior": False,
    }
    return [
        dict(
            common,
            name="mae",
            kind="mae",
            p=p_mae,
            g_hat=g_mae,
            margin=0.02,
            rollback=True,
            detector="from_start",
            bounds={"lower": g_mae - 0.03, "upper": g_mae + 0.03},
            explanation="mae is worse on the canary (clipped mean absolute error (errors clipped at 5): "
            "canary 1.2, production 0.5)",
            regression={
                "measure": "clipped mean absolute error (errors clipped at 5)",
                "clip": CLIP,
                "clipped_mae": dict(MAE),
                "margin_error": 0.1,
            },
        ),
        dict(
            common,
            name="within",
            kind="within_tolerance",
            p=dict(WITHIN),
            g_hat=g_within,
            margin=0.05,
            rollback=False,
            detector=None,
            bounds={"lower": g_within - 0.05, "upper": g_within + 0.05},
            explanation="within gate: holding; share within 0.5 of the label: canary 55 %, production 80 %",
            regression={
                "measure": "share within 0.5 of the label",
                "tolerance": TOLERANCE,
                "share_within": dict(WITHIN),
            },
        ),
    ]


def _timeline_point(at: float, weight: float, metrics: list[dict]) -> dict:
    """One poll, its metrics kept as the controller's timeline keeps them."""
    return {
        "at": at,
        "weight": weight,
        "phase": "progressing",
        "mode": "auto",
        "production_version": "1",
        "canary_version": "2",
        "decision": "hold",
        "metrics": [metric_point(m) for m in metrics],
    }


def regression_rollout(now: float) -> dict:
    points = [
        _timeline_point(now - 100 + 5 * i, 5 if i < 8 else 10, _regression_metrics(20 + 10 * i)) for i in range(20)
    ]
    points.append(dict(_timeline_point(now, 0, _regression_metrics(220)), phase="rolled_back", decision="rollback"))
    history = [
        {"at": now, "decision": "rollback", "summary": "Roll back (from-start test): mae is worse on the canary."},
        {"at": now - 60, "decision": "step_up", "summary": "All gates show non-inferiority: step up to 10 %."},
    ]
    verdict = {
        "decision": "rollback",
        "summary": history[0]["summary"],
        "metrics": _regression_metrics(220),
        "guards": [],
        "detector": "from_start",
        "at": now,
    }
    arm = {
        "errors": 0,
        "error_rate": 0,
        "accuracy": None,
        "task": "regression",
        "labelled": 0,
        "avg_latency_ms": 3.5,
        "p95_latency_ms": 7.0,
    }
    fleet = {
        "production": dict(arm, version="1", requests=1000, labelled_values=800, mae=0.51234),
        "canary": dict(arm, version="2", requests=250, labelled_values=200, mae=1.2),
        "canary_percentage": 0,
        "observed_canary_percentage": 20.0,
        "mode": "auto",
        "phase": "rolled_back",
        "fail_closed": False,
        "replicas": {"queried": 2, "answered": 2},
    }
    status = {
        "phase": "rolled_back",
        "mode": "auto",
        "canary_percentage": 0,
        "production_version": "1",
        "canary_version": "2",
        "reason": "mae is worse on the canary",
        "analysis_mode": "sequential",
        "steps": [5, 10, 20, 50],
        "note": "Rolled back: mae is worse on the canary.",
        "stage": None,
        "metrics_outage_since": None,
        "last_verdict": verdict,
        "history": history,
    }
    return {
        "generated_at": now,
        "model": "house-prices",
        "status": status,
        "fleet": fleet,
        "errors": [],
        "timeline": {"points": points, "history": history, "max_points": 1500, "started_at": now - 100, "now": now},
    }


@pytest.fixture()
def regression_page():
    """The router's page and a recorded regression rollout.json on a loopback port."""
    from canary_router.api.page import PAGE

    started = time.time()

    server = standin.start()
    server.expect_request("/rollout.json").respond_with_handler(
        lambda request: Response(json.dumps(regression_rollout(started)), content_type="application/json")
    )
    server.expect_request("/").respond_with_data(PAGE, content_type="text/html; charset=utf-8")
    try:
        yield server.url_for("/")
    finally:
        standin.stop(server)


def test_live_page_shows_a_regression_rollout(regression_page, chromium, tmp_path):
    html = load_in_chromium(chromium, regression_page, tmp_path / "regression-page.png")
    dom = DOM(html).root
    body = dom.find("body")
    errors = [li.text() for li in dom.find(id="error-list").find_all("li")]
    assert body.attrs["data-state"] == "ok", (body.attrs, errors)
    assert dom.find(id="model-name").text() == ": house-prices"
    assert dom.find("title").text() == "Canary rollout: house-prices"

    metrics = {m.attrs["data-metric"]: m for m in dom.find_all("div", cls="metric")}
    assert set(metrics) == {"mae", "within"}
    for name, card in metrics.items():
        title = card.find("h3").text()
        assert "threshold mode" not in title, title
        svg = card.find("svg", cls="metric-chart")
        assert int(svg.attrs["data-points"]) >= 4 and int(svg.attrs["data-band-points"]) >= 2, (name, svg.attrs)
        for cls in ("arm-canary", "arm-production", "g-band", "g-line", "margin-line"):
            assert path_points(svg.find("path", cls=cls).attrs["d"]) >= 2, (name, cls)

    # MAE: per arm in the label's unit (lower is better), g and the margin in that unit too.
    mae = metrics["mae"]
    assert mae.find("h3").text() == "Mean absolute error (errors clipped at 5)"
    assert "lower is better" in mae.text() and "rollback" in mae.find("span", cls="chip").text()
    figures = mae.find(cls="figures")
    assert figures.find(cls="canary").find("b").text() == "1.2000"
    assert figures.find(cls="production").find("b").text() == "0.5000"
    assert figures.find(cls="g").find("b").text() == "−0.700"
    assert figures.find(cls="margin").find("b").text() == "0.100"
    assert "%" not in figures.text() and "pts" not in figures.text()
    assert any(t.text() == "clipped MAE per arm" for t in mae.find_all("text", cls="axis-label"))

    # Share within tolerance: a percentage per arm, g in points.
    within = metrics["within"]
    assert within.find("h3").text() == "Share within tolerance (|prediction − actual value| ≤ 0.5)"
    figures = within.find(cls="figures")
    assert figures.find(cls="canary").find("b").text().replace("\xa0", " ") == "55.00 %"
    assert figures.find(cls="production").find("b").text().replace("\xa0", " ") == "80.00 %"
    assert figures.find(cls="g").find("b").text().replace("\xa0", " ") == "−25.00 pts"

    # Why it was rolled back, and the router counts as MAE and labelled values.
    reasons = dom.find(id="rollback-box").find_all("li", cls="reason")
    assert [r.attrs.get("data-metric") for r in reasons] == ["mae"]
    assert reasons[0].text().startswith("Rolled back by the from-start test: mae is worse on the canary")
    fleet = dom.find("table", id="fleet")
    assert fleet.attrs["data-task"] == "regression"
    rows = [[c.text() for c in tr.children] for tr in fleet.find_all("tr")]
    assert rows[0][5:7] == ["mean absolute error", "labelled values"] and "accuracy" not in rows[0]
    assert rows[1][:1] + rows[1][5:7] == ["production", "0.5123", "800"]
    assert rows[2][:1] + rows[2][5:7] == ["canary", "1.2", "200"]
