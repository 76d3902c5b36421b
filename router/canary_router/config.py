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


def _bool(env: dict, name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"environment variable {name} must be 0 or 1, got {raw!r}")


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
    max_body_bytes: int = 4 * 1024 * 1024  # MLflow scoring payloads (tabular rows)
    # Connections to the model servers: connect timeout (0: the same as backend_timeout_s) and
    # the idle keep-alive connections each worker keeps per model server (its threads share them).
    backend_connect_timeout_s: float = 0.0
    backend_pool_size: int = 32
    peer_timeout_s: float = 2.0
    # X-Canary-Route is for testers only: off unless asked for.
    allow_forced_route: bool = False
    # Late labels: ids are signed with this secret (shared by all replicas); empty = one
    # generated per process, so feedback then only works where the id was issued.
    feedback_secret: str = ""
    feedback_ttl_s: float = 86400.0
    feedback_store_dir: str = ""
    feedback_dedupe_max: int = 1_000_000
    # Shadow traffic: a bounded pool per worker; when it is full, shadow copies are dropped.
    shadow_workers: int = 2
    shadow_queue_max: int = 64
    shadow_timeout_s: float = 2.0
    # Outlier ejection of a model server (ejection.py), the same for both arms: failures in a row
    # that eject it (0: never), the first backoff (doubled per ejection in a row, up to the max),
    # the health probe's timeout.
    outlier_consecutive_failures: int = 3
    outlier_base_ejection_s: float = 2.0
    outlier_max_ejection_s: float = 60.0
    outlier_probe_timeout_s: float = 0.5

    @classmethod
    def from_env(cls, env: dict | None = None) -> Settings:
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
            max_body_bytes=int(_float(env, "MAX_BODY_BYTES", 4 * 1024 * 1024)),
            backend_connect_timeout_s=_float(env, "BACKEND_CONNECT_TIMEOUT_S", 0.0),
            backend_pool_size=max(1, int(_float(env, "BACKEND_POOL_SIZE", 32))),
            peer_timeout_s=_float(env, "PEER_TIMEOUT_S", 2.0),
            allow_forced_route=_bool(env, "ALLOW_FORCED_ROUTE"),
            feedback_secret=env.get("FEEDBACK_SECRET", ""),
            feedback_ttl_s=_float(env, "FEEDBACK_TTL_S", 86400.0),
            feedback_store_dir=env.get("FEEDBACK_STORE_DIR", "") or env.get("PROMETHEUS_MULTIPROC_DIR", ""),
            feedback_dedupe_max=max(1, int(_float(env, "FEEDBACK_DEDUPE_MAX", 1_000_000))),
            shadow_workers=max(1, int(_float(env, "SHADOW_WORKERS", 2))),
            shadow_queue_max=max(1, int(_float(env, "SHADOW_QUEUE_MAX", 64))),
            shadow_timeout_s=_float(env, "SHADOW_TIMEOUT_S", _float(env, "BACKEND_TIMEOUT_S", 2.0)),
            outlier_consecutive_failures=max(0, int(_float(env, "OUTLIER_CONSECUTIVE_FAILURES", 3))),
            outlier_base_ejection_s=_float(env, "OUTLIER_BASE_EJECTION_S", 2.0),
            outlier_max_ejection_s=_float(env, "OUTLIER_MAX_EJECTION_S", 60.0),
            outlier_probe_timeout_s=_float(env, "OUTLIER_PROBE_TIMEOUT_S", 0.5),
        )
