"""The one admin-token check, for every service that takes admin calls (router, controller)."""

from __future__ import annotations

import hmac

ASK = "send 'Authorization: Bearer <ADMIN_TOKEN>'"


def refusal(admin_token: str, authorization: str | None) -> str | None:
    """None when an admin call may go on (no token is set, or the header carries it); otherwise
    the reason, for a 401. The comparison takes the same time whatever the guess."""
    if not admin_token:
        return None
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return f"admin endpoint: {ASK}"
    if not hmac.compare_digest(given.strip().encode(), admin_token.encode()):
        return "admin endpoint: wrong admin token"
    return None
