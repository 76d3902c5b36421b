"""The lab's client, call for call: the same HTTP method, path and body as the lab's
send_requests.py (no token, no extra headers), reading the same fields, plus checks of every
answer. It keeps a transcript in the lab's own words, for people to read in the CI log."""

from __future__ import annotations

import random
import time

import requests

# The lab's test data: ten reviews with their sentiment labels.
LAB_SAMPLES = [
    {"text": "This product is amazing, love it!", "actual_label": 1},
    {"text": "Terrible quality, very disappointed", "actual_label": 0},
    {"text": "Great value for money, highly recommend", "actual_label": 1},
    {"text": "Worst purchase I ever made", "actual_label": 0},
    {"text": "Excellent service and fast delivery", "actual_label": 1},
    {"text": "Complete waste of money", "actual_label": 0},
    {"text": "Best thing I bought this year", "actual_label": 1},
    {"text": "Poor quality, broke immediately", "actual_label": 0},
    {"text": "Absolutely fantastic experience", "actual_label": 1},
    {"text": "Would not recommend to anyone", "actual_label": 0},
]


class LabClient:
    def __init__(self, base_url: str, delay_s: float = 0.3, seed: int = 1):
        self.base = base_url.rstrip("/")
        self.delay_s = delay_s
        self.rng = random.Random(seed)
        self.transcript: list[str] = []

    def say(self, line: str) -> None:
        self.transcript.append(line)

    def _json(self, resp: requests.Response, *fields) -> dict:
        assert resp.status_code == 200, f"{resp.request.method} {resp.request.path_url}: {resp.status_code} {resp.text}"
        body = resp.json()
        missing = [f for f in fields if f not in body]
        assert not missing, f"{resp.request.path_url}: no {missing} in {body}"
        return body

    # -- the lab's commands --------------------------------------------------------------
    def send(self, n: int = 20) -> dict:
        served = {"production": 0, "canary": 0}
        for i in range(n):
            sample = self.rng.choice(LAB_SAMPLES)
            result = self._json(
                requests.post(f"{self.base}/predict", json=sample, timeout=10),
                "prediction",
                "model_version",
                "latency_ms",
            )
            assert result["model_version"] in served, result
            served[result["model_version"]] += 1
            ok = "OK" if result["prediction"] == sample["actual_label"] else "WRONG"
            tag = "CANARY    " if result["model_version"] == "canary" else "PRODUCTION"
            self.say(f"  {i + 1:3}. [{tag}] Pred: {result['prediction']} | {ok} | {result['latency_ms']:.1f}ms")
            time.sleep(self.delay_s)
        self.metrics()
        return served

    def metrics(self) -> dict:
        m = self._json(requests.get(f"{self.base}/metrics", timeout=10), "canary_percentage", "production", "canary")
        self.say(f"  Canary Traffic: {m['canary_percentage']}%")
        for arm in ("production", "canary"):
            a = m[arm]
            self.say(f"  | {arm:11} | {a['requests']:>8} | {a['accuracy']:>7.1f}% | {a['avg_latency_ms']:>9.1f}ms |")
        return m

    def rollback(self) -> dict:
        r = self._json(requests.post(f"{self.base}/check_rollback", timeout=60), "status")
        if r["status"] == "rollback":
            self.say(f"  ROLLBACK TRIGGERED! Reason: Canary accuracy {r['canary_accuracy']}% < {r['threshold']}%")
        elif r["status"] == "waiting":
            self.say(f"  Waiting for more data: {r['message']}")
        else:
            assert r["status"] == "healthy", r
            self.say(f"  System healthy. Canary accuracy: {r.get('canary_accuracy', 'N/A')}%")
        return r

    def canary(self, percentage: int) -> dict:
        r = self._json(requests.post(f"{self.base}/set_canary/{percentage}", timeout=10), "canary_percentage")
        self.say(f"Canary percentage set to: {r['canary_percentage']}%")
        assert float(r["canary_percentage"]) == percentage, r
        return r

    def fail(self) -> dict:
        r = self._json(requests.post(f"{self.base}/simulate_failure/1", timeout=10), "simulate_failure")
        assert r["simulate_failure"] is True, r
        self.say("Failure simulation ENABLED - canary will make bad predictions")
        return r

    def nofail(self) -> dict:
        r = self._json(requests.post(f"{self.base}/simulate_failure/0", timeout=10), "simulate_failure")
        assert r["simulate_failure"] is False, r
        self.say("Failure simulation DISABLED")
        return r

    def reset(self) -> dict:
        r = self._json(requests.post(f"{self.base}/reset", timeout=30), "status")
        assert r["status"] == "reset", r
        self.say("System reset complete")
        return r
