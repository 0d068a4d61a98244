"""read_toml: a config file that is not one is one line naming it, read with bounded memory; every
integer of a config is an int64 at most and every float finite, one line naming the setting."""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import typing
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import Field

from pipeline.common.config import check_flags, override, read_toml, validate
from pipeline.common.errors import UserError
from pipeline.engine.registry import source_class, source_names


def test_a_config_file_is_read_as_toml(tmp_path: Path) -> None:
    (tmp_path / "run.toml").write_text("[c4]\nmin_sentences = 4\n")
    assert read_toml(tmp_path / "run.toml") == {"c4": {"min_sentences": 4}}


@pytest.mark.parametrize(("data", "problem"), [
    (b"\xff\xfe[c4]\n", "not valid TOML (not UTF-8: byte 0xff at offset 0)"),
    (b"[c4]\nname = '\xe9t\xe9'\n", "not valid TOML (not UTF-8: byte 0xe9 at offset 13)"),
    (b"#" * ((1 << 20) + 1), "larger than 1 MiB, not a config file"),
])
def test_a_file_that_is_no_config_is_one_line_naming_it(tmp_path: Path, data: bytes, problem: str) -> None:
    path = tmp_path / "run.toml"
    path.write_bytes(data)
    with pytest.raises(UserError) as error:
        read_toml(path)
    assert str(error.value) == f"{path}: {problem}"


def test_an_endless_file_is_refused_unread() -> None:
    # A device is refused before it is opened (pipeline/common/files.py check_regular_file); a FIFO
    # alike (tests/pipeline/commands/test_run.py runs one through the CLI, under a timeout).
    with pytest.raises(UserError, match=r"^/dev/zero: a device, not a config file$"):
        read_toml("/dev/zero")
    with pytest.raises(UserError, match=r"^/dev/null: a device, not a mixture file$"):
        read_toml("/dev/null", "mixture file")


def test_a_missing_config_file_is_named_as_what_it_is(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"mix.toml: mixture file does not exist$"):
        read_toml(tmp_path / "mix.toml", "mixture file")


# --- every number a config holds is bounded ----------------------------------------------------

INT64_MAX = 9_223_372_036_854_775_807  # 2^63 - 1, written out: not the module's own constant


def _settings_of(kind: type) -> list[tuple[str, type]]:
    """Each source's settings of `kind` (int or float), by name: the fields of its config class."""
    found = []
    for name in source_names():
        config = source_class(name).config_class()
        for field in dataclasses.fields(config):
            hint = typing.get_type_hints(type(config))[field.name]
            if hint is kind:  # get_type_hints drops Annotated: a Count is an int here
                found.append((name, field.name))
    return found


@pytest.mark.parametrize(("source", "setting"), _settings_of(int))
def test_every_integer_setting_of_every_source_is_refused_past_an_int64(source: str, setting: str) -> None:
    """`[c4] min_words_per_line = 99999999999999999999` was an OverflowError inside the stage, after
    the run had started (its _work left behind); now the config's load refuses it in one line."""
    config = source_class(source).config_class()
    for huge in (INT64_MAX + 1, 10**20):
        with pytest.raises(UserError) as refused:
            override(config, {setting: huge}, f"bad.toml [{source}]")
        line = str(refused.value)
        bound = re.fullmatch(rf"bad\.toml \[{source}\]: setting '{setting}' must be at most (\d+), got {huge}", line)
        assert bound is not None, line
        assert int(bound.group(1)) <= INT64_MAX


@pytest.mark.parametrize(("source", "setting"), _settings_of(float))
def test_every_float_setting_of_every_source_is_refused_when_not_finite(source: str, setting: str) -> None:
    config = source_class(source).config_class()
    for value in (math.inf, -math.inf, math.nan):
        with pytest.raises(UserError) as refused:
            override(config, {setting: value}, f"bad.toml [{source}]")
        assert str(refused.value) == f"bad.toml [{source}]: setting '{setting}' must be finite, got {value!r}"


def test_integers_nested_in_a_config_are_refused_by_their_path() -> None:
    schema = dict[str, list[int]]
    with pytest.raises(UserError) as refused:
        validate(schema, {"a": [1, 2], "b": [3, -(INT64_MAX + 2)]}, "x.toml")
    assert str(refused.value) == ("x.toml: setting 'b[1]' must be at least -9223372036854775808, "
                                  "got -9223372036854775809")
    assert validate(schema, {"a": [INT64_MAX, -INT64_MAX - 1]}, "x.toml") == {"a": [INT64_MAX, -INT64_MAX - 1]}


def test_a_table_typed_any_is_left_to_its_own_schema() -> None:
    """The whole --config file is a table of tables of anything: each source's table is checked
    against its own schema, which names the setting as `[c4] ... setting 'x'`, not the file's."""
    assert validate(dict[str, dict[str, Any]], {"c4": {"x": 10**20}}, "f.toml") == {"c4": {"x": 10**20}}


@pytest.mark.parametrize(("source", "setting", "most"), [
    # A read of max_file_bytes + 1 bytes, a member cap of max_book_mb x 2^20 (four of them for an
    # archive): within an int64 still, where 2^63 - 1 was an OverflowError in the reader.
    ("github", "max_file_bytes", 1 << 60), ("stackexchange", "task_bytes", 1 << 60),
    ("wikipedia", "task_bytes", 1 << 60), ("books", "max_book_mb", 1 << 40), ("arxiv", "max_file_mb", 1 << 40),
    ("arxiv", "max_paper_mb", 1 << 40), ("arxiv", "max_decompressed_mb", 1 << 40),
])
def test_sizes_are_bounded_where_their_bytes_still_fit_an_int64(source: str, setting: str, most: int) -> None:
    config = source_class(source).config_class()
    assert getattr(override(config, {setting: most}, "f.toml"), setting) == most
    with pytest.raises(UserError) as refused:
        override(config, {setting: INT64_MAX}, "f.toml")
    assert str(refused.value) == f"f.toml: setting '{setting}' must be at most {most}, got {INT64_MAX}"


def test_check_flags_names_the_flag_its_bound_and_the_value() -> None:
    bounds = {"repeats": Annotated[int, Field(ge=1, le=100)], "sample_mb": Annotated[float, Field(gt=0)],
              "tasks": Annotated[int, Field(ge=1)], "ids": list[Annotated[int, Field(ge=1)]], "seed": int}
    given = {"repeats": 3, "sample_mb": 1.5, "tasks": None, "ids": [1, 2], "seed": -5}
    check_flags(argparse.Namespace(**given), bounds)  # None: a flag left out, not checked
    for changed, line in [
        ({"repeats": 101}, "--repeats must be at most 100, got 101"),
        ({"sample_mb": math.nan}, "--sample-mb must be finite, got nan"),  # no comparison refuses NaN
        ({"sample_mb": math.inf}, "--sample-mb must be finite, got inf"),
        ({"sample_mb": 0.0}, "--sample-mb must be positive, got 0.0"),
        ({"tasks": 0}, "--tasks must be at least 1, got 0"),
        ({"ids": [1, 0]}, "--ids must be at least 1, got 0"),
        ({"seed": -(INT64_MAX + 2)}, "--seed must be at least -9223372036854775808, got -9223372036854775809"),
        ({"seed": 10**20}, "--seed must be at most 9223372036854775807, got 100000000000000000000"),
    ]:
        with pytest.raises(UserError) as refused:
            check_flags(argparse.Namespace(**{**given, **changed}), bounds)
        assert str(refused.value) == line
