"""Settings of one model server, read from the environment (canary_common.settings: each field is
the variable of the same name in capitals, unless its alias names another)."""

from __future__ import annotations

import os
import tempfile

from pydantic import Field

from canary_common.settings import EnvSettings


def _default_faults_file() -> str:
    # One file per gunicorn arbiter: its workers share the faults set through any of them.
    return os.path.join(tempfile.gettempdir(), f"model-server-faults-{os.getppid()}.json")


class Settings(EnvSettings):
    tracking_uri: str = Field(alias="MLFLOW_TRACKING_URI")
    model_name: str = "sentiment"
    alias: str = Field("production", alias="MODEL_ALIAS")
    alias_poll_s: float = Field(2.0, gt=0)
    faults_file: str = Field(default_factory=_default_faults_file)
    max_body_bytes: int = Field(65536, ge=1)  # every endpoint but /invocations
    max_texts: int = Field(256, ge=1)  # /predict {"texts": [...]}
    max_invocation_bytes: int = Field(4 * 1024 * 1024, ge=1)  # /invocations bodies (tabular rows are bigger)
    max_rows: int = Field(1000, ge=1)  # rows per /invocations request
    # wrong_rate on a regression model: a wrong answer is the prediction times this factor
    # (a prediction of 0 becomes factor - 1), so the error scales with the label.
    wrong_value_factor: float = 1.5
    load_retry_max_s: float = Field(10.0, gt=0)  # cap of the back-off between failed loads of one version
    follow_alias: bool = True  # False: tests drive loading themselves
