"""Settings from the environment, checked once at start."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from canary_common.settings import EnvSettings, SettingsError
from loadgen.payloads import DATA_SETS

SCENARIOS = ("none", "bad-canary")
ARRIVALS = ("fixed", "poisson")
LABEL_MODES = ("inline", "late")
NO_DATA = "none"  # LOADGEN_DATA=none: send nothing
MAX_ROWS = 1000  # the model servers' MAX_ROWS


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


def _one_of(allowed: tuple[str, ...]):
    def check(value: str) -> str:
        value = value.strip().lower()
        if value not in allowed:
            raise ValueError(f"one of {', '.join(allowed)}")
        return value

    return AfterValidator(check)


class Config(EnvSettings):
    """canary_common.settings: a field is its variable in capitals unless its alias names another."""

    target_url: str = "http://nginx:8080"
    rate: float = Field(10.0, gt=0)  # requests per second
    duration_s: float = Field(0.0, ge=0, alias="DURATION")  # 0 = until SIGTERM
    progress_s: float = Field(10.0, gt=0)
    arrivals: Annotated[str, _one_of(ARRIVALS)] = "fixed"
    scenario: Annotated[str, _one_of(SCENARIOS)] = "none"
    scenario_delay_s: float = Field(60.0, ge=0)
    admin_url: str = "http://nginx:8080"
    admin_token: str = ""
    request_timeout_s: float = Field(5.0, gt=0)
    max_in_flight: int = Field(0, ge=0, le=4096)  # 0 = enough for `rate` requests each taking the whole timeout
    late_after_s: float = Field(1.0, gt=0)  # a request this far behind its slot is dropped, not sent
    wait_timeout_s: float = Field(300.0, ge=0)  # how long to wait for the target's /ready
    label_fraction: float = Field(1.0, ge=0, le=1)  # share of requests that carry actual_label
    label_mode: Annotated[str, _one_of(LABEL_MODES)] = "inline"  # late: POST /feedback later
    label_delay_s: float = Field(5.0, ge=0, le=86400)  # late mode: seconds between the answer and its label
    seed: int = Field(0, ge=-(2**31), le=2**31)
    model_name: str = "sentiment"  # picks the data when LOADGEN_DATA is not set
    # A bundled data set, "none", or "" (no bundled data for model_name).
    data: Annotated[str, _one_of((*DATA_SETS, NO_DATA, ""))] = Field("", alias="LOADGEN_DATA")
    rows: int = Field(1, ge=1, le=MAX_ROWS, alias="LOADGEN_ROWS")  # rows per request

    @field_validator("target_url", "admin_url")
    @classmethod
    def _no_trailing_slash(cls, url: str) -> str:
        return url.rstrip("/")

    @model_validator(mode="after")
    def _data_for_the_model(self) -> Config:
        # No LOADGEN_DATA: the bundled data set named like the model, else none.
        if not self.data and self.model_name in DATA_SETS:
            object.__setattr__(self, "data", self.model_name)
        return self

    @property
    def pool_size(self) -> int:
        if self.max_in_flight > 0:
            return self.max_in_flight
        return min(256, max(4, math.ceil(self.rate * self.request_timeout_s)))


def from_env(environ) -> Config:
    try:
        return Config.from_env(environ)
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None
