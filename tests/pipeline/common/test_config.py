"""read_toml: a config file that is not one is one line naming it, read with bounded memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.common.config import read_toml
from pipeline.common.errors import UserError


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
