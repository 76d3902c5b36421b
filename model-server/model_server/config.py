"""Settings of one model server, read from the environment (see docs/contracts.md)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    tracking_uri: str
    model_name: str = "sentiment"
    alias: str = "production"
    alias_poll_s: float = 2.0
    faults_file: str = ""
    max_body_bytes: int = 65536  # every endpoint but /invocations
    max_texts: int = 256  # /predict {"texts": [...]}
    max_invocation_bytes: int = 4 * 1024 * 1024  # /invocations bodies (tabular rows are bigger)
    max_rows: int = 1000  # rows per /invocations request
    # wrong_rate on a regression model: a wrong answer is the prediction times this factor
    # (a prediction of 0 becomes factor - 1), so the error scales with the label.
    wrong_value_factor: float = 1.5
    load_retry_max_s: float = 10.0  # cap of the back-off between failed loads of one version
    follow_alias: bool = True  # False: tests drive loading themselves

    @classmethod
    def from_env(cls) -> Settings:
        tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", "")
        if not tracking_uri:
            raise ValueError("MLFLOW_TRACKING_URI is required")
        faults_file = os.environ.get("FAULTS_FILE") or os.path.join(
            tempfile.gettempdir(), f"model-server-faults-{os.getppid()}.json"
        )
        return cls(
            tracking_uri=tracking_uri,
            model_name=os.environ.get("MODEL_NAME", "sentiment"),
            alias=os.environ.get("MODEL_ALIAS", "production"),
            alias_poll_s=_env_float("ALIAS_POLL_S", 2.0),
            faults_file=faults_file,
            max_body_bytes=int(_env_float("MAX_BODY_BYTES", 65536)),
            max_texts=int(_env_float("MAX_TEXTS", 256)),
            max_invocation_bytes=int(_env_float("MAX_INVOCATION_BYTES", 4 * 1024 * 1024)),
            max_rows=int(_env_float("MAX_ROWS", 1000)),
            wrong_value_factor=_env_float("WRONG_VALUE_FACTOR", 1.5),
            load_retry_max_s=_env_float("LOAD_RETRY_MAX_S", 10.0),
        )
