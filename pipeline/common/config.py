"""The small override layer on top of typed config dataclasses: unknown keys are errors."""

from __future__ import annotations

import dataclasses
import math
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
        item = _list_item(expected)
        if item is not None and not (isinstance(value, list) and all(_fits(v, item) for v in value)):
            raise UserError(f"{where}: setting '{key}' must be a list of {item.__name__}, got {value!r}")
        numbers = value if isinstance(value, list) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            raise UserError(f"{where}: setting '{key}' must be finite, got {value!r}")
        default = getattr(config, key)
        # Counts, sizes and thresholds: a setting whose default is not negative may not be.
        if expected in (int, float) and isinstance(default, (int, float)) and default >= 0 and value < 0:
            raise UserError(f"{where}: setting '{key}' must not be negative, got {value!r}")
        changes[key] = float(value) if expected is float else [float(v) for v in value] if item is float else value
    result = dataclasses.replace(config, **changes)
    check = getattr(result, "check", None)
    if callable(check):
        problem = check()
        if problem:
            raise UserError(f"{where}: {problem}")
    return result


def _list_item(expected: Any) -> type | None:
    """X of a `list[X]` setting with X a plain type, else None."""
    if typing.get_origin(expected) is list:
        (item,) = typing.get_args(expected) or (None,)
        if item in (int, float, str, bool):
            return item
    return None


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
