"""Self-describing, unforgeable request ids, so a late label finds its prediction without a database.

An id is base64url(payload) + "." + base64url(HMAC-SHA256(secret, payload)[:16]). The payload is a
compact JSON array [format, arm, version, prediction, issued_at, nonce, flags]; any replica that
knows the secret (FEEDBACK_SECRET) can check an id and read which model version said what.
128 bits of MAC are plenty against forgery and keep the id short (~80 characters).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import time
from dataclasses import dataclass

FORMAT = 1
MAC_BYTES = 16
MAX_ID_CHARS = 1024
_SHAPE = re.compile(r"^[A-Za-z0-9_-]{4,1000}\.[A-Za-z0-9_-]{22}$")
_ARMS = {"p": "production", "c": "canary"}
_ARM_CODES = {v: k for k, v in _ARMS.items()}

FLAG_LABELLED = "l"  # the prediction already carried actual_label
FLAG_FORCED = "f"  # routed by X-Canary-Route: never feeds the analysis
FLAG_REGRESSION = "r"  # a regressor's prediction: /feedback takes actual_value
FLAG_UNSCORABLE = "x"  # the prediction was too big to carry in the id: no late truth for it
MAX_PREDICTION_CHARS = 300  # of the prediction's JSON, so the id stays short


class IdError(ValueError):
    """A request id that cannot be used; `status` is the HTTP answer for it."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class IssuedPrediction:
    arm: str
    version: str
    prediction: object
    issued_at: int
    nonce: str
    flags: str = ""

    @property
    def labelled_inline(self) -> bool:
        return FLAG_LABELLED in self.flags

    @property
    def forced(self) -> bool:
        return FLAG_FORCED in self.flags

    @property
    def regression(self) -> bool:
        return FLAG_REGRESSION in self.flags

    @property
    def scorable(self) -> bool:
        return FLAG_UNSCORABLE not in self.flags


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class IdSigner:
    def __init__(self, secret: str, ttl_s: float = 86400.0, clock=time.time):
        if not secret:
            raise ValueError("the feedback secret must not be empty")
        self._key = hashlib.sha256(b"canary-router-request-id\x00" + secret.encode()).digest()
        self.ttl_s = ttl_s
        self.clock = clock

    def _mac(self, payload: bytes) -> bytes:
        return hmac.digest(self._key, payload, "sha256")[:MAC_BYTES]  # the one-shot C path

    def issue(self, arm: str, version: str, prediction, flags: str = "") -> str:
        if len(json.dumps(prediction)) > MAX_PREDICTION_CHARS:
            prediction, flags = None, flags + FLAG_UNSCORABLE
        payload = json.dumps(
            [FORMAT, _ARM_CODES[arm], version, prediction, int(self.clock()), os.urandom(6).hex(), flags],
            separators=(",", ":"),
        ).encode()
        return _b64(payload) + "." + _b64(self._mac(payload))

    def owner_token(self, request_id: str) -> str:
        """Proves a forwarded feedback comes from a replica (which knows the secret)."""
        return hmac.new(self._key, b"owner\x00" + request_id.encode(), hashlib.sha256).hexdigest()

    def check_owner_token(self, request_id: str, token: str) -> bool:
        return hmac.compare_digest(self.owner_token(request_id).encode(), (token or "").encode())

    def verify(self, request_id) -> IssuedPrediction:
        """The prediction behind a valid id; IdError(400 malformed | 403 forged | 410 expired)."""
        if not isinstance(request_id, str) or not request_id:
            raise IdError("field 'request_id' must be a non-empty string (the request_id of a /predict answer)", 400)
        if len(request_id) > MAX_ID_CHARS or not _SHAPE.match(request_id):
            raise IdError(
                "field 'request_id' is not a router-issued id (expected '<payload>.<signature>' "
                "in base64url, as returned in the body of POST /predict)",
                400,
            )
        body, _, mac = request_id.partition(".")
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            raise IdError("unknown request_id: not a valid signed id", 403) from None
        if not hmac.compare_digest(self._mac(payload), given):
            raise IdError(
                "unknown request_id: its signature does not match (not issued by this router "
                "fleet, altered, or issued under another FEEDBACK_SECRET)",
                403,
            )
        try:
            fmt, arm, version, prediction, issued_at, nonce, flags = json.loads(payload)
            if fmt != FORMAT or arm not in _ARMS or not isinstance(issued_at, int):
                raise ValueError
        except (ValueError, TypeError):
            raise IdError("unknown request_id: unsupported id format", 403) from None
        age = self.clock() - issued_at
        if age > self.ttl_s:
            raise IdError(
                f"request_id expired: issued {age:.0f}s ago, labels are taken for {self.ttl_s:g}s (FEEDBACK_TTL_S)", 410
            )
        return IssuedPrediction(_ARMS[arm], str(version), prediction, issued_at, str(nonce), str(flags))
