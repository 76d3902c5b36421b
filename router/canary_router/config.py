"""The router's settings, read once per process from the environment (canary_common.settings:
each field is the variable of the same name in capitals, e.g. backend_timeout_s is
BACKEND_TIMEOUT_S)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from canary_common.settings import EnvSettings


class Settings(EnvSettings):
    production_url: str = "http://127.0.0.1:8001"
    canary_url: str = "http://127.0.0.1:8002"
    tracking_uri: str = Field("http://127.0.0.1:5000", alias="MLFLOW_TRACKING_URI")
    model_name: str = "sentiment"
    controller_url: str = ""
    state_poll_s: float = Field(1.0, gt=0)
    fail_closed_after_s: float = Field(30.0, ge=0)
    backend_timeout_s: float = Field(2.0, gt=0)
    controller_timeout_s: float = Field(15.0, gt=0)
    admin_token: str = ""
    router_peers: str = ""
    default_canary_percentage: float = Field(20.0, ge=0, le=100)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1)  # MLflow scoring payloads (tabular rows)
    # Connections to the model servers: connect timeout (0: the same as backend_timeout_s) and
    # the idle keep-alive connections each worker keeps per model server (its threads share them).
    backend_connect_timeout_s: float = Field(0.0, ge=0)
    backend_pool_size: int = Field(32, ge=1)
    peer_timeout_s: float = Field(2.0, gt=0)
    # X-Canary-Route is for testers only: off unless asked for.
    allow_forced_route: bool = False
    # Late labels: ids are signed with this secret (shared by all replicas); empty = one
    # generated per process, so feedback then only works where the id was issued.
    feedback_secret: str = ""
    feedback_ttl_s: float = Field(86400.0, gt=0)
    # Empty: the same folder as PROMETHEUS_MULTIPROC_DIR (the workers share both).
    feedback_store_dir: str = ""
    prometheus_multiproc_dir: str = ""
    feedback_dedupe_max: int = Field(1_000_000, ge=1)
    # Shadow traffic: a bounded pool per worker; when it is full, shadow copies are dropped.
    shadow_workers: int = Field(2, ge=1)
    shadow_queue_max: int = Field(64, ge=1)
    shadow_timeout_s: float = Field(0.0, ge=0)  # 0: backend_timeout_s
    # Outlier ejection of a model server (ejection.py), the same for both arms: failures in a row
    # that eject it (0: never), the first backoff (doubled per ejection in a row, up to the max),
    # the health probe's timeout.
    outlier_consecutive_failures: int = Field(3, ge=0)
    outlier_base_ejection_s: float = Field(2.0, gt=0)
    outlier_max_ejection_s: float = Field(60.0, gt=0)
    outlier_probe_timeout_s: float = Field(0.5, gt=0)

    @field_validator("production_url", "canary_url", "controller_url")
    @classmethod
    def _no_trailing_slash(cls, url: str) -> str:
        return url.rstrip("/")

    @model_validator(mode="after")
    def _derived(self) -> Settings:
        # Frozen: the derived defaults are set once, here.
        if not self.feedback_store_dir and self.prometheus_multiproc_dir:
            object.__setattr__(self, "feedback_store_dir", self.prometheus_multiproc_dir)
        if self.shadow_timeout_s == 0:
            object.__setattr__(self, "shadow_timeout_s", self.backend_timeout_s)
        return self
