"""Prometheus's alerts reach a webhook through Alertmanager, all real, on free loopback ports.

Real Prometheus (/usr/bin/prometheus) with the committed process-mode configuration
(prometheus/process.yml) and the repository's own rule files; a stand-in router exporter (stdlib HTTP server)
whose `canary_router_fail_closed` gauge fires RouterFailClosed, the one alert without a `for`.
Real Alertmanager (/usr/bin/prometheus-alertmanager, Debian's 0.25) with the committed
alertmanager/alertmanager.yml, changed only where a test must: the webhook's URL (0.25 has no
`url_file`, which the compose image, 0.28, reads) and shorter group timers. The receiver is a
stdlib HTTP server in the test. Every wait is bounded; the processes are stopped in `finally`.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import yaml
from werkzeug import Request, Response

from support import promconfig
from support.binaries import require
from support.procs import ROOT, Proc, free_port

AM_DIR = ROOT / "alertmanager"
DELIVERY_TIMEOUT_S = 45.0  # eval 1 s + group_wait 1 s; the margin is for a loaded CI machine


class Receiver:
    """Collects the webhook bodies Alertmanager POSTs to the stand-in server's /alerts."""

    def __init__(self, standin):
        self.bodies: list[dict] = []
        self.cond = threading.Condition()
        standin.expect_request("/alerts", method="POST").respond_with_handler(self.answer)
        self.url = standin.url_for("/alerts")

    def answer(self, request: Request) -> Response:
        with self.cond:
            self.bodies.append(request.get_json())
            self.cond.notify_all()
        return Response(status=200)

    def wait_for(self, predicate, timeout: float, what: str) -> dict:
        with self.cond:
            found = self.cond.wait_for(lambda: next((b for b in self.bodies if predicate(b)), None), timeout)
            assert found, f"no {what} within {timeout:g}s; received: {json.dumps(self.bodies)[:2000]}"
            return found


class Exporter:
    """A stand-in router replica on the stand-in server (its exposition path): only the gauge
    RouterFailClosed reads."""

    def __init__(self, standin):
        self.fail_closed = 1
        self.address = f"{standin.host}:{standin.port}"
        standin.expect_request(promconfig.ROUTER_METRICS_PATH).respond_with_handler(self.answer)

    def answer(self, request: Request) -> Response:
        text = f"# TYPE canary_router_fail_closed gauge\ncanary_router_fail_closed {self.fail_closed}\n"
        return Response(text, content_type="text/plain; version=0.0.4")


def alertmanager_config(receiver_url: str) -> dict:
    cfg = yaml.safe_load((AM_DIR / "alertmanager.yml").read_text())
    (hook,) = cfg["receivers"][0]["webhook_configs"]
    hook.pop("url_file")
    hook["url"] = receiver_url
    cfg["route"].update(group_wait="1s", group_interval="1s")
    return cfg


def test_the_committed_configs_route_every_alert_to_one_webhook():
    cfg = yaml.safe_load((AM_DIR / "alertmanager.yml").read_text())
    route, (receiver,) = cfg["route"], cfg["receivers"]
    assert route["receiver"] == receiver["name"] and route["group_by"] == ["alertname"]
    assert {"group_wait", "group_interval", "repeat_interval"} <= set(route)
    (hook,) = receiver["webhook_configs"]
    assert hook["send_resolved"] is True
    # The URL file is the one entrypoint.sh writes ALERT_WEBHOOK_URL to.
    assert f"> {hook['url_file']}" in (AM_DIR / "entrypoint.sh").read_text()
    subprocess.run(["sh", "-n", str(AM_DIR / "entrypoint.sh")], check=True, timeout=10)
    # The fallback config passes amtool (alertmanager.yml's url_file is newer than Debian's amtool;
    # the other test runs it with a url).
    amtool = require("amtool", "prometheus-alertmanager")
    out = subprocess.run(
        [amtool, "check-config", str(AM_DIR / "ui-only.yml")], check=False, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_firing_alert_reaches_the_receiver_through_alertmanager_and_resolves(tmp_path: Path, standin):
    prometheus = require("prometheus", "prometheus")
    alertmanager = require("prometheus-alertmanager", "prometheus-alertmanager")
    receiver, exporter, procs = Receiver(standin), Exporter(standin), []
    try:
        am_port, prom_port = free_port(), free_port()
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config(receiver.url)))
        am = Proc(
            "alertmanager",
            [
                alertmanager,
                f"--config.file={tmp_path / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            tmp_path,
        ).start()  # no HA gossip port
        procs.append(am)
        am.wait_http(f"http://127.0.0.1:{am_port}/-/ready", timeout=30)

        config = promconfig.prepare(
            tmp_path / "prometheus", {"router": [exporter.address], "alertmanager": [f"127.0.0.1:{am_port}"]}
        )
        prom = Proc(
            "prometheus",
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            tmp_path,
        ).start()
        procs.append(prom)
        prom.wait_http(f"http://127.0.0.1:{prom_port}/-/ready", timeout=60)

        def about_router(status):
            return lambda b: b.get("status") == status and b.get("groupLabels") == {"alertname": "RouterFailClosed"}

        firing = receiver.wait_for(about_router("firing"), DELIVERY_TIMEOUT_S, "firing RouterFailClosed")
        assert firing["receiver"] == "webhook" and firing["version"] == "4"
        (alert,) = firing["alerts"]
        assert alert["labels"]["severity"] == "critical"
        assert alert["labels"]["instance"] == exporter.address
        assert "failed closed" in alert["annotations"]["summary"]

        exporter.fail_closed = 0  # send_resolved: the all-clear is delivered too
        resolved = receiver.wait_for(about_router("resolved"), DELIVERY_TIMEOUT_S, "resolved RouterFailClosed")
        assert resolved["alerts"][0]["status"] == "resolved"
    finally:
        for proc in reversed(procs):
            proc.stop()
