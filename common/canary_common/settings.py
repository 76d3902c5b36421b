"""Every service reads its environment the same way: a pydantic model whose fields are named
like the variables (`production_url` is PRODUCTION_URL; `Field(alias=...)` where the variable is
named otherwise). pydantic parses and checks the values; this module only adds what the
services need around it:

- an empty variable counts as unset (compose passes `${X:-}` as ""), so the default applies;
- the environment is a mapping the caller may pass (tests, gunicorn's config), not only os.environ,
  which pydantic-settings cannot take;
- one message style, naming the variable: "RATE must be > 0, got '0'".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_snake


class SettingsError(ValueError):
    """A variable is missing or malformed; the message names it."""


def _variable(field_name: str) -> str:
    return to_snake(field_name).upper()


class EnvSettings(BaseModel):
    """Base of each service's settings; build with `from_env()`, or by field name in tests."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        alias_generator=_variable,
        validate_by_name=True,
        validate_by_alias=True,
        str_strip_whitespace=True,
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        raw = {}
        for name, field in cls.model_fields.items():
            variable = field.alias or _variable(name)
            value = env.get(variable)
            if value is not None and value.strip() != "":
                raw[variable] = value
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise SettingsError(describe(cls, exc, raw)) from None


_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def _range(field) -> str:
    """The whole allowed range of a field, e.g. ">= 0 and <= 1"."""
    parts = []
    for meta in field.metadata:
        for attr, word in _BOUNDS:
            bound = getattr(meta, attr, None)
            if bound is not None:
                parts.append(f"{word} {bound:g}")
    return " and ".join(parts)


def describe(cls: type[BaseModel], exc: ValidationError, raw: Mapping[str, Any]) -> str:
    """pydantic's errors, one per variable, as "NAME must be ..., got 'value'"."""
    by_alias = {field.alias or _variable(name): field for name, field in cls.model_fields.items()}
    lines = []
    for error in exc.errors():
        variable = str(error["loc"][0]) if error["loc"] else ""
        field = by_alias.get(variable)
        kind = error["type"]
        if kind == "missing":
            lines.append(f"{variable} is required")
            continue
        if kind in ("float_parsing", "float_type", "finite_number"):
            what = "a number"
        elif kind in ("int_parsing", "int_type", "int_from_float"):
            what = "a whole number"
        elif kind in ("bool_parsing", "bool_type"):
            what = "0 or 1 (or true, false, yes, no, on, off)"
        elif kind.startswith(("greater_than", "less_than")) and field is not None:
            what = _range(field)
        else:
            what = error["msg"].removeprefix("Value error, ")
        got = f", got {raw[variable]!r}" if variable in raw else ""
        lines.append(f"{variable} must be {what}{got}" if variable else what)
    return "; ".join(lines)
