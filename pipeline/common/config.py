"""Typed configs: one pydantic schema per config, and the small override layer on top of it.

A config is a dataclass (or, for a file read whole, a TypedDict) whose field types say what a
value may be: `int`, `float`, `list[str]`, and the bounded types below. pydantic checks them in
strict mode (no "5" for 5, no true for 1; an int is a float), rejects NaN and infinities, and
each problem becomes one line: where (a file, its [table], or the command line), the key path,
what is wrong, and the value given. A hand-written `check` remains only for what a type cannot
say (two percentiles in increasing order).

Every integer a schema holds, wherever it sits, is also refused past a signed 64-bit integer
(`validate`): numpy, Arrow and the C functions a setting reaches (a read's size, a slice) take
no more, and such a value ended a run mid-stage with an OverflowError. The flags of a command
are checked the same way, before it does any work (`check_flags`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Callable, TypeVar

import tomllib
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import is_typeddict

from pipeline.common.errors import UserError
from pipeline.common.files import check_regular_file

# The config of every schema here (dataclasses take it with pydantic's `with_config`). Strict
# pydantic takes a dataclass only as an instance, so `override` builds one from the given values
# and pydantic checks each of its fields again (revalidate_instances).
STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, revalidate_instances="always")

Count = Annotated[int, Field(ge=0)]  # sizes, counts and lengths; 0 often means "none" or "all"
Positive = Annotated[int, Field(ge=1)]
Amount = Annotated[float, Field(ge=0)]  # a non-negative real: a ratio, a length, a share
Above0 = Annotated[float, Field(gt=0)]  # a scale or an epsilon: zero would divide by zero
Probability = Annotated[float, Field(ge=0, le=1)]
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
Seed = Annotated[int, Field(ge=0, lt=2**32)]  # numpy's and torch's seeds are 32-bit; a string seed is kept the same
# Megabytes a setting caps a size at: times 2^20, and four times that (books' whole archive), still
# an int64 (1 EiB). Bytes likewise, with room for the one more a capped read asks for.
Megabytes = Annotated[int, Field(ge=0, le=1 << 40)]
Bytes = Annotated[int, Field(ge=0, le=1 << 60)]
# Pieces of a vocabulary (`tokenizer train`, the perplexity model's SentencePiece, a model's
# embedding table): 16M, past any tokenizer there is, with the model's logits still within an int64
# (train/config.py); SentencePiece reads the size as an int32, and 2^31 was its traceback.
MAX_VOCAB = 1 << 24

T = TypeVar("T")
UNKNOWN_KEY = ("extra_forbidden", "unexpected_keyword_argument")


@functools.cache
def _adapter(schema: Any, strict: bool = False) -> TypeAdapter:
    # A dataclass or TypedDict schema carries its own config (STRICT); a bare type given strict
    # (a flag's bounded type) takes STRICT here, its NaN and infinities refused with the rest.
    return TypeAdapter(schema, config=STRICT if strict else None)


def setting_name(path: str) -> str:
    return f"setting '{path}'"


def flag_name(path: str) -> str:
    return f"--{path.replace('_', '-')}"


def validate(schema: Any, value: Any, where: str, name: Callable[[str], str] = setting_name,
             strict: bool = False) -> Any:
    """`value` checked against `schema` (a type pydantic knows), or UserError with its first problem
    in one line: "`where`: `name(key path)` `problem`, got `value`" (no "`where`: " when empty).
    `strict`: `schema` is a bare type (not a dataclass or TypedDict), checked in STRICT's mode."""
    try:
        result = _adapter(schema, strict).validate_python(value)
    except ValidationError as e:
        errors = e.errors()
        # A misspelt key is also a missing one: the misspelling is what to say.
        first = next((x for x in errors if x["type"] in UNKNOWN_KEY), errors[0])
        raise UserError(_one_line(first, schema, where, name)) from None
    beyond = _beyond_int64(schema, result, ())
    if beyond is not None:
        loc, number = beyond
        bound = {"type": "less_than_equal", "ctx": {"le": INT64_MAX}} if number > 0 else \
            {"type": "greater_than_equal", "ctx": {"ge": INT64_MIN}}
        raise UserError(_one_line({"loc": loc, "input": number, "msg": "", **bound}, schema, where, name))
    return result


def _beyond_int64(hint: Any, value: Any, loc: tuple) -> tuple[tuple, int] | None:
    """(key path, value) of the first integer in `value` past int64, walking it by its schema
    `hint`: the fields of a dataclass, the keys of a TypedDict, the items of a list or table.
    Nothing typed Any is walked: it is a table checked against its own schema later (a source's
    `[c4]` in the whole file, train's `[model]`), which names the setting better."""
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    if hint is Any or isinstance(value, (bool, str, float)) or value is None:
        return None
    if isinstance(value, int):
        return None if INT64_MIN <= value <= INT64_MAX else (loc, value)
    if typing.get_origin(hint) in (types.UnionType, typing.Union):  # the member the value is of
        hint = next((arm for arm in typing.get_args(hint) if _is_of(arm, value)), Any)
    if dataclasses.is_dataclass(value):
        hints = _hints(type(value))
        pairs = [(f.name, hints.get(f.name, Any), getattr(value, f.name)) for f in dataclasses.fields(value)]
    elif isinstance(value, dict):
        hints = _hints(hint) if is_typeddict(hint) else {}  # by key; else a dict[K, V]'s V for each
        item = (typing.get_args(hint) or (Any, Any))[-1]
        pairs = [(key, hints.get(key, item), v) for key, v in value.items()]
    elif isinstance(value, (list, tuple)):
        item = (typing.get_args(hint) or (Any,))[0]
        pairs = [(i, item, v) for i, v in enumerate(value)]
    else:
        return None
    for key, key_hint, item_value in pairs:
        found = _beyond_int64(key_hint, item_value, (*loc, key))
        if found is not None:
            return found
    return None


def _is_of(hint: Any, value: Any) -> bool:
    """Whether `value` is of the union member `hint` (by its origin: list, dict, a class)."""
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    if is_typeddict(hint):
        return isinstance(value, dict)
    kind = typing.get_origin(hint) or hint
    return isinstance(kind, type) and isinstance(value, kind)


def check_flags(args: argparse.Namespace, bounds: dict[str, Any]) -> None:
    """Each flag of `args` that `bounds` names (by its destination; one left out, None, is not
    checked) against its bounded type, before a command does any work: one line naming the flag,
    its bound and the value given, `--repeats must be at most 100, got 1000`. Every int is an
    int64 at most here too; a float is finite."""
    for dest, kind in bounds.items():
        value = getattr(args, dest)
        if value is not None:
            validate(kind, value, "", name=lambda _, dest=dest: flag_name(dest), strict=True)


def override(config: T, values: dict[str, Any], where: str, name: Callable[[str], str] = setting_name) -> T:
    """A copy of dataclass `config` with `values` (a TOML table, or flags) applied, validated by its
    schema and its `check`; names `where` in errors."""
    known = [f.name for f in dataclasses.fields(config)]  # type: ignore[arg-type]
    for key in values:  # before the instance is built: its constructor would raise a TypeError
        if key not in known:
            raise UserError(f"{where}: unknown {name(key)} (known: {', '.join(sorted(known))})")
    result = validate(type(config), dataclasses.replace(config, **values), where, name)  # type: ignore[type-var]
    check = getattr(result, "check", None)
    problem = check() if callable(check) else None
    if problem:
        raise UserError(f"{where}: {problem}")
    return result


def _one_line(error: Any, schema: Any, where: str, name: Callable[[str], str]) -> str:
    loc = [part for part in error["loc"] if part != "[key]"]
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    kind, ctx = error["type"], error.get("ctx") or {}
    at = f"{where}: " if where else ""
    if kind in UNKNOWN_KEY:
        return f"{at}unknown {name(path)} (known: {', '.join(_keys(schema))})"
    if kind == "missing":
        return f"{at}{name(path)} is missing"
    if kind.endswith("_type") and len(loc) == 1 and loc[0] in _hints(schema):
        problem = f"must be {_type_name(_hints(schema)[loc[0]])}"
    elif kind.endswith("_type") and typing.get_origin(schema) in (types.UnionType, typing.Union):
        problem = f"must be {_type_name(schema)}"  # loc ends in the member tried last, not a key
    else:
        problem = _problem(kind, ctx, error["msg"])
    return f"{at}{name(path)} {problem}, got {error['input']!r}"


PROBLEMS = {
    "int_type": "must be int", "float_type": "must be float", "string_type": "must be str",
    "bool_type": "must be bool", "list_type": "must be a list", "dict_type": "must be a table",
    "finite_number": "must be finite", "literal_error": "must be {expected}",
    "too_short": "must have at least {min_length} item(s)", "too_long": "must have at most {max_length} item(s)",
    "less_than": "must be below {lt}", "less_than_equal": "must be at most {le}",
    "greater_than": "must be above {gt}", "greater_than_equal": "must be at least {ge}",
}


def _problem(kind: str, ctx: dict[str, Any], message: str) -> str:
    if kind == "greater_than_equal" and ctx.get("ge") == 0:
        return "must not be negative"
    if kind == "greater_than" and ctx.get("gt") == 0:
        return "must be positive"
    template = PROBLEMS.get(kind)
    return template.format(**ctx) if template else message[:1].lower() + message[1:]


def _hints(schema: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(schema) if isinstance(schema, type) else {}
    except (NameError, TypeError):
        return {}


def _keys(schema: Any) -> list[str]:
    return sorted(_hints(schema))


def _type_name(hint: Any, plural: bool = False) -> str:
    """A field's type in words, without its Annotated bounds: "int", "a list of str", "a table of
    lists of float", "int or None"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return _type_name(args[0], plural)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a, plural) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, dict):
        kind = ("lists" if plural else "a list") if origin is list else ("tables" if plural else "a table")
        item = args[-1] if args else Any
        return kind if item is Any else f"{kind} of {_type_name(item, plural=True)}"
    if hint is Any:
        return "values" if plural else "a value"
    return "None" if hint is type(None) else getattr(hint, "__name__", str(hint))


CONFIG_LIMIT = 1 << 20  # bytes read of a config file: real ones are a few hundred


def read_toml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """A config file's tables; one line naming the file for one that is missing, no regular file (a
    FIFO would block the open for ever), not UTF-8, not TOML, or larger than CONFIG_LIMIT."""
    check_regular_file(path, f"a {what}")
    try:
        with open(path, "rb") as f:
            data = f.read(CONFIG_LIMIT + 1)
    except FileNotFoundError:
        raise UserError(f"{path}: {what} does not exist") from None
    if len(data) > CONFIG_LIMIT:
        raise UserError(f"{path}: larger than {CONFIG_LIMIT >> 20} MiB, not a {what}")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not valid TOML (not UTF-8: byte {data[e.start]:#04x} at offset {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e})") from None
