"""The output folder's lock where the folder cannot be one: a file or a dangling link in its place
(or a link to nothing above it) is one line naming that path, and nothing is created or removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.common.errors import UserError, os_error_line
from pipeline.common.lock import folder_lock


def test_a_file_where_the_folder_goes_is_named(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("the user's file")
    with pytest.raises(UserError) as refused, folder_lock(tmp_path / "out"):
        pass
    assert str(refused.value) == f"{tmp_path / 'out'}: a file, not a folder (give another output folder)"
    assert (tmp_path / "out").read_text() == "the user's file"


def test_a_file_above_the_folder_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("the user's file")
    with pytest.raises(NotADirectoryError) as refused, folder_lock(tmp_path / "out" / "c4" / "run"):
        pass
    assert os_error_line(refused.value) == f"{tmp_path / 'out' / 'c4' / 'run'}: Not a directory (ENOTDIR)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (tmp_path / "out").read_text() == "the user's file"


def test_a_link_to_nothing_is_named(tmp_path: Path) -> None:
    (tmp_path / "runs").symlink_to(tmp_path / "missing")
    with pytest.raises(UserError) as refused, folder_lock(tmp_path / "runs" / "a"):
        pass
    assert str(refused.value) == (f"{tmp_path / 'runs'}: a link to nothing, not a folder, so {tmp_path / 'runs' / 'a'} "
                                  "cannot be made (give another output folder)")
    assert (tmp_path / "runs").is_symlink() and not (tmp_path / "missing").exists()


def test_a_folder_is_made_and_removed_again_when_nothing_was_written(tmp_path: Path) -> None:
    with folder_lock(tmp_path / "a" / "b"):
        assert (tmp_path / "a" / "b" / ".lock").is_file()
    assert list(tmp_path.iterdir()) == []
