"""Settings from the environment, checked once at start."""

from __future__ import annotations

import math
from dataclasses import dataclass

from loadgen.payloads import DATA_SETS

SCENARIOS = ("none", "bad-canary")
ARRIVALS = ("fixed", "poisson")
LABEL_MODES = ("inline", "late")
NO_DATA = "none"  # LOADGEN_DATA=none: send nothing
MAX_ROWS = 1000  # the model servers' MAX_ROWS


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Config:
    target_url: str = "http://nginx:8080"
    rate: float = 10.0  # requests per second
    duration_s: float = 0.0  # 0 = until SIGTERM
    progress_s: float = 10.0
    arrivals: str = "fixed"
    scenario: str = "none"
    scenario_delay_s: float = 60.0
    admin_url: str = "http://nginx:8080"
    admin_token: str = ""
    request_timeout_s: float = 5.0
    max_in_flight: int = 0  # 0 = enough for `rate` requests each taking the whole timeout
    late_after_s: float = 1.0  # a request this far behind its slot is dropped, not sent
    wait_timeout_s: float = 300.0  # how long to wait for the target's /ready
    label_fraction: float = 1.0  # share of requests that carry actual_label
    label_mode: str = "inline"  # inline: actual_label in /predict; late: POST /feedback later
    label_delay_s: float = 5.0  # late mode: seconds between the answer and its label
    seed: int = 0
    model_name: str = "sentiment"  # MODEL_NAME: picks the data when LOADGEN_DATA is not set
    data: str = "sentiment"  # a bundled data set, "none", or "" (no bundled data for model_name)
    rows: int = 1  # rows per request (tabular payloads; sentiment with more than 1 too)

    @property
    def pool_size(self) -> int:
        if self.max_in_flight > 0:
            return self.max_in_flight
        return min(256, max(4, math.ceil(self.rate * self.request_timeout_s)))


def _number(environ, name: str, default: float, low: float, high: float = math.inf, low_open: bool = False) -> float:
    raw = environ.get(name, "")
    if raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value != value or value < low or (low_open and value == low) or value > high:
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        raise ConfigError(f"{name} must be {bound}{'' if high == math.inf else f' and <= {high:g}'}, got {raw!r}")
    return value


def _choice(environ, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (environ.get(name) or default).strip().lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _data(environ, model_name: str) -> str:
    """LOADGEN_DATA, else the bundled data set named like the model, else "" (none for it)."""
    value = (environ.get("LOADGEN_DATA") or "").strip().lower()
    if not value:
        return model_name if model_name in DATA_SETS else ""
    if value not in (*DATA_SETS, NO_DATA):
        raise ConfigError(f"LOADGEN_DATA must be one of {', '.join((*DATA_SETS, NO_DATA))}, got {value!r}")
    return value


def _rows(environ) -> int:
    value = _number(environ, "LOADGEN_ROWS", 1, 1.0, MAX_ROWS)
    if value != int(value):
        raise ConfigError(f"LOADGEN_ROWS must be a whole number, got {environ.get('LOADGEN_ROWS')!r}")
    return int(value)


def from_env(environ) -> Config:
    model_name = (environ.get("MODEL_NAME") or Config.model_name).strip()
    return Config(
        target_url=(environ.get("TARGET_URL") or Config.target_url).rstrip("/"),
        rate=_number(environ, "RATE", Config.rate, 0.0, low_open=True),
        duration_s=_number(environ, "DURATION", Config.duration_s, 0.0),
        progress_s=_number(environ, "PROGRESS_S", Config.progress_s, 0.0, low_open=True),
        arrivals=_choice(environ, "ARRIVALS", Config.arrivals, ARRIVALS),
        scenario=_choice(environ, "SCENARIO", Config.scenario, SCENARIOS),
        scenario_delay_s=_number(environ, "SCENARIO_DELAY_S", Config.scenario_delay_s, 0.0),
        admin_url=(environ.get("ADMIN_URL") or Config.admin_url).rstrip("/"),
        admin_token=environ.get("ADMIN_TOKEN", ""),
        request_timeout_s=_number(environ, "REQUEST_TIMEOUT_S", Config.request_timeout_s, 0.0, low_open=True),
        max_in_flight=int(_number(environ, "MAX_IN_FLIGHT", 0, 0.0, 4096)),
        late_after_s=_number(environ, "LATE_AFTER_S", Config.late_after_s, 0.0, low_open=True),
        wait_timeout_s=_number(environ, "WAIT_TIMEOUT_S", Config.wait_timeout_s, 0.0),
        label_fraction=_number(environ, "LABEL_FRACTION", Config.label_fraction, 0.0, 1.0),
        seed=int(_number(environ, "SEED", 0, -(2**31), 2**31)),
        label_mode=_choice(environ, "LABEL_MODE", Config.label_mode, LABEL_MODES),
        label_delay_s=_number(environ, "LABEL_DELAY_S", Config.label_delay_s, 0.0, 86400.0),
        model_name=model_name,
        data=_data(environ, model_name),
        rows=_rows(environ),
    )
