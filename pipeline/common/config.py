"""The small override layer on top of typed config dataclasses: unknown keys are errors."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import tomllib

from pipeline.common.errors import UserError


def override(config: Any, values: dict[str, Any], where: str) -> Any:
    """A copy of dataclass `config` with `values` applied; names `where` in errors."""
    known = {f.name: f for f in dataclasses.fields(config)}
    changes = {}
    hints = typing.get_type_hints(type(config))
    for key, value in values.items():
        if key not in known:
            raise UserError(f"{where}: unknown setting '{key}' (known: {', '.join(sorted(known))})")
        expected = hints.get(key)
        if expected in (int, float, str, bool) and not _fits(value, expected):
            raise UserError(f"{where}: setting '{key}' must be {expected.__name__}, got {value!r}")
        changes[key] = float(value) if expected is float else value
    return dataclasses.replace(config, **changes)


def _fits(value: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def read_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UserError(f"{path}: config file does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e})") from None
