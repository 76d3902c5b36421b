"""HTTP calls to the data plane or the admin port, with failures turned into one-line messages."""

from __future__ import annotations

import json
import re

import requests

EXIT_OK = 0
EXIT_REFUSED = 1  # the server answered but refused or failed
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class CtlError(Exception):
    """A failure worth one line on stderr and a specific exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_REFUSED):
        super().__init__(message)
        self.exit_code = exit_code


def server_message(resp: requests.Response) -> str:
    """The server's own words about an error: a JSON field, an HTML title or the first text line."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error", "message", "detail", "reason", "summary"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or json.dumps(value)
            if value:
                return str(value)
        return json.dumps(body)[:200]
    text = resp.text or ""
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title:
        return title.group(1).strip()
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first[:200] or (resp.reason or "no message")


class Endpoint:
    """One base URL (the router via nginx, or the admin port) and how to describe it."""

    def __init__(
        self,
        base_url: str,
        what: str,
        token: str | None = None,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ):
        self.base = base_url.rstrip("/")
        self.what = what
        self.token = token or None
        self.timeout = timeout
        self.session = session or requests.Session()

    def unreachable(self, exc: Exception) -> CtlError:
        if isinstance(exc, requests.Timeout):
            return CtlError(f"{self.what} at {self.base} did not answer within {self.timeout:g} s", EXIT_UNREACHABLE)
        return CtlError(
            f"cannot reach {self.what} at {self.base}: is the stack up? try `docker compose up`", EXIT_UNREACHABLE
        )

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        """The JSON answer of a 2xx response; CtlError otherwise."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            resp = self.session.request(method, self.base + path, json=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise self.unreachable(exc) from None
        if resp.status_code == 401:
            hint = (
                "the token was rejected: check --token or CANARY_ADMIN_TOKEN"
                if self.token
                else "it needs the admin token: pass --token or set CANARY_ADMIN_TOKEN"
            )
            raise CtlError(f"{self.what} at {self.base} answered 401 Unauthorized to {method} {path}: {hint}")
        if resp.status_code >= 400:
            verb = "refused" if resp.status_code < 500 else "failed on"
            raise CtlError(f"{self.what} {verb} {method} {path} (HTTP {resp.status_code}): {server_message(resp)}")
        try:
            data = resp.json()
        except ValueError:
            return {"text": resp.text}
        return data if isinstance(data, dict) else {"data": data}
