"""Every default the README's Configuration table states is what a user gets: the compose file's
`${VAR:-default}` where compose gives one, otherwise the code's own default."""

import re
from pathlib import Path

import pytest

from canary_controller.analysis import load_config
from canary_router.config import Settings as RouterSettings
from loadgen.config import from_env as loadgen_config

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
COMPOSE = (ROOT / "docker-compose.yml").read_text()

EMPTY = ("empty", "empty (off)")


def _table() -> dict[str, str]:
    """README variable -> stated default, one entry per variable of a row ("A, B | 1, 2")."""
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])
        values = [v.strip().strip("`") for v in cells[1].split(",")] if len(names) > 1 else [cells[1].strip("`")]
        assert len(names) == len(values), line
        rows.update(zip(names, values))
    return rows


TABLE = _table()
# Defaults compose leaves to the code (it passes the variable through empty).
THRESHOLDS = load_config({"mode": "threshold"}).threshold
FROM_CODE = {
    "ACCURACY_THRESHOLD": lambda: f"{THRESHOLDS.accuracy_threshold:g}",
    "LATENCY_THRESHOLD": lambda: f"{THRESHOLDS.latency_threshold_ms:g}",
    "ERROR_THRESHOLD": lambda: f"{THRESHOLDS.error_threshold_pct:g}",
    "MIN_SAMPLES": lambda: str(THRESHOLDS.min_samples),
    "WEIGHT_STEPS": lambda: ",".join(f"{s:g}" for s in load_config(None).steps),
    "LOADGEN_DATA": lambda: (
        "the demo `MODEL_NAME` names"
        if loadgen_config({"MODEL_NAME": "diabetes"}).data == "diabetes"
        and loadgen_config({"MODEL_NAME": "mine"}).data == ""
        else "(loadgen picks no data by the model's name)"
    ),
}


def test_the_table_is_read():
    assert len(TABLE) >= 25 and "DEFAULT_CANARY_PERCENTAGE" in TABLE


@pytest.mark.parametrize("name", sorted(TABLE))
def test_a_stated_default_is_what_a_user_gets(name):
    stated = "" if TABLE[name] in EMPTY else TABLE[name]
    in_compose = re.findall(r"\$\{" + name + r":-([^}]*)\}", COMPOSE)
    if in_compose and any(in_compose):
        assert set(in_compose) == {stated}, f"{name}: README says {stated!r}, compose {sorted(set(in_compose))}"
    elif name in FROM_CODE:
        assert FROM_CODE[name]() == stated, name
    else:
        assert in_compose == [""] * len(in_compose) and in_compose, f"{name}: not in compose"
        assert stated == "", f"{name}: compose passes it empty, README says {stated!r}"


def test_the_routers_code_defaults_match_compose_where_both_give_one():
    code = RouterSettings()
    for name in (
        "DEFAULT_CANARY_PERCENTAGE",
        "OUTLIER_CONSECUTIVE_FAILURES",
        "OUTLIER_BASE_EJECTION_S",
        "OUTLIER_MAX_EJECTION_S",
    ):
        assert float(TABLE[name]) == float(getattr(code, name.lower())), name
