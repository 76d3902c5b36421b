"""Settings from the environment, read once per process (names fixed in docs/contracts.md)."""
from __future__ import annotations

import os
from dataclasses import dataclass


def _float(env: dict, name: str, default: float) -> float:
    raw = env.get(name, "")
    if raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be a number, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    production_url: str
    canary_url: str
    tracking_uri: str
    model_name: str = "sentiment"
    controller_url: str = ""
    state_poll_s: float = 1.0
    fail_closed_after_s: float = 30.0
    backend_timeout_s: float = 2.0
    controller_timeout_s: float = 15.0
    admin_token: str = ""
    router_peers: str = ""
    default_canary_percentage: float = 20.0
    max_body_bytes: int = 65536

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Settings":
        env = os.environ if env is None else env
        return cls(
            production_url=env.get("PRODUCTION_URL", "http://127.0.0.1:8001").rstrip("/"),
            canary_url=env.get("CANARY_URL", "http://127.0.0.1:8002").rstrip("/"),
            tracking_uri=env.get("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"),
            model_name=env.get("MODEL_NAME", "sentiment"),
            controller_url=env.get("CONTROLLER_URL", "").rstrip("/"),
            state_poll_s=_float(env, "STATE_POLL_S", 1.0),
            fail_closed_after_s=_float(env, "FAIL_CLOSED_AFTER_S", 30.0),
            backend_timeout_s=_float(env, "BACKEND_TIMEOUT_S", 2.0),
            controller_timeout_s=_float(env, "CONTROLLER_TIMEOUT_S", 15.0),
            admin_token=env.get("ADMIN_TOKEN", ""),
            router_peers=env.get("ROUTER_PEERS", ""),
            default_canary_percentage=_float(env, "DEFAULT_CANARY_PERCENTAGE", 20.0),
            max_body_bytes=int(_float(env, "MAX_BODY_BYTES", 65536)),
        )
