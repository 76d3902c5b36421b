"""Scripted events during a run: `bad-canary` turns the canary's failure simulation on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests

from loadgen.tally import Tally


def simulate_failure(admin_url: str, token: str, timeout_s: float = 5.0) -> str:
    """POST /simulate_failure/1 on the admin port; 'ok' or what went wrong, in words."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = requests.post(f"{admin_url.rstrip('/')}/simulate_failure/1", headers=headers, timeout=timeout_s)
    except requests.RequestException as exc:
        return f"error: cannot reach the admin port at {admin_url}: {type(exc).__name__}"
    if resp.status_code == 401:
        return "error: HTTP 401 from the admin port: set ADMIN_TOKEN"
    if resp.status_code >= 400:
        return f"error: HTTP {resp.status_code}: {resp.text.strip()[:200]}"
    return "ok"


def schedule(
    name: str, delay_s: float, admin_url: str, token: str, tally: Tally, log: Callable[[str], None]
) -> threading.Timer | None:
    """Start the scenario's timer (None for 'none'); the caller cancels it when the run ends."""
    if name == "none":
        return None

    def fire() -> None:
        at = time.monotonic() - tally.started_at
        log(f"scenario {name}: enabling the canary failure simulation at t={at:.1f}s")
        result = simulate_failure(admin_url, token)
        log(f"scenario {name}: {result}")
        tally.note({"scenario": name, "action": "simulate_failure/1", "at_s": round(at, 1), "result": result})

    timer = threading.Timer(delay_s, fire)
    timer.daemon = True
    timer.start()
    return timer
