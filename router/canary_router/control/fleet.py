"""Fan-out to every router replica: /stats sums their counts, /reset resets each of them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from canary_router.api import stats
from canary_router.control.peers import resolve_peers


def _ask(method: str, url: str, headers: dict, timeout_s: float) -> tuple[str, dict | None, str]:
    try:
        resp = requests.request(method, url, headers=headers, timeout=timeout_s)
        if resp.status_code != 200:
            return url, None, f"HTTP {resp.status_code}"
        return url, resp.json(), ""
    except (requests.RequestException, ValueError) as exc:
        return url, None, type(exc).__name__


def _each(spec: str, method: str, path: str, headers: dict, timeout_s: float) -> tuple[list, list] | None:
    """Ask every replica in parallel; None when this replica is the only one."""
    try:
        peers = resolve_peers(spec)
    except (OSError, ValueError) as exc:
        return [], [{"peer": spec, "error": f"cannot resolve peers: {exc}"}]
    if peers is None:
        return None
    answers, failures = [], []
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(peers)))) as pool:
        for url, body, err in pool.map(lambda base: _ask(method, base + path, headers, timeout_s), peers):
            if body is None:
                failures.append({"peer": url, "error": err})
            else:
                answers.append(body)
    return answers, failures


def fleet_counts(spec: str, timeout_s: float) -> tuple[dict, dict]:
    """Summed counts of every replica, and who answered (each within PEER_TIMEOUT_S)."""
    result = _each(spec, "GET", "/stats/local", {}, timeout_s)
    if result is None:
        return stats.local_counts(), {"queried": 1, "answered": 1, "failed": []}
    answers, failures = result
    counts = stats.merge(a.get("counts", {}) for a in answers)
    return counts, {"queried": len(answers) + len(failures), "answered": len(answers), "failed": failures}


def reset_all(spec: str, admin_token: str, timeout_s: float) -> dict:
    headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
    result = _each(spec, "POST", "/stats/reset_local", headers, timeout_s)
    if result is None:
        stats.reset_local()
        return {"queried": 1, "reset": 1, "failed": []}
    answers, failures = result
    return {"queried": len(answers) + len(failures), "reset": len(answers), "failed": failures}
