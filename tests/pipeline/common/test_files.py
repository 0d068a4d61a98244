"""Seals (pipeline/common/files.py): what a check of a file established, kept on the file while it
stays as it was."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.common import files
from pipeline.common.errors import UserError
from tests.conftest import xattrs_kept


def test_a_sha256_is_read_once_and_again_only_after_a_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not xattrs_kept(tmp_path):
        pytest.skip(f"{tmp_path}: the file system keeps no extended attributes (no seals)")
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    assert files.sha256_once(model) == hashlib.sha256(b"weights").hexdigest()
    hashed: list[Path] = []
    real = files.file_sha256
    monkeypatch.setattr(files, "file_sha256", lambda path: hashed.append(Path(path)) or real(path))
    assert files.sha256_once(model) == hashlib.sha256(b"weights").hexdigest() and hashed == []  # from the seal
    with open(model, "r+b") as f:  # written in place, as many bytes: the seal no longer fits
        f.write(b"W")
    assert files.sha256_once(model) == hashlib.sha256(b"Weights").hexdigest() and hashed == [model]
    assert files.seal_value(model) == f"sha256:{hashlib.sha256(b'Weights').hexdigest()}"


def test_a_seal_of_another_kind_is_no_sha256(tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    assert files.seal_value(model) is None
    files.seal(model, "listing-checksum:abc")  # a download's verification, say
    assert files.sha256_once(model) == hashlib.sha256(b"weights").hexdigest()


# --- the checks of a path a user gives ------------------------------------------------------------
# Each FIFO below has no writer: opening it to read would block for ever. The checks only look at
# a path (stat), so none may block; the alarm turns a check that came to open one into a failure.


@pytest.fixture
def deadline() -> Iterator[None]:
    def expired(signum: int, frame: object) -> None:
        raise TimeoutError("the check blocked: it opened what it should only have looked at")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(10)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _refusal(path: Path | str, **flags: bool) -> str:
    with pytest.raises(UserError) as error:
        files.check_regular_file(path, "a config file", **flags)
    return str(error.value)


def test_what_is_no_regular_file_is_named_in_one_line_unopened(tmp_path: Path, deadline: None) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "zero.txt").symlink_to("/dev/zero")
    (tmp_path / "folder").mkdir()
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "sock"))
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    try:
        assert _refusal(tmp_path / "fifo") == f"{tmp_path}/fifo: a FIFO, not a config file"
        # A named FIFO is no pipe a shell made: refused where one is read too.
        assert _refusal(tmp_path / "fifo", folder_ok=True, pipe_ok=True) == _refusal(tmp_path / "fifo")
        assert _refusal("/dev/null") == "/dev/null: a device, not a config file"
        assert _refusal(tmp_path / "zero.txt") == (f"{tmp_path}/zero.txt: a device (a link to /dev/zero), not a "
                                                   "config file")
        assert _refusal(tmp_path / "sock") == f"{tmp_path}/sock: a socket, not a config file"
        assert _refusal(tmp_path / "folder") == f"{tmp_path}/folder: a folder, not a config file"
        assert _refusal(tmp_path / "loop") == f"{tmp_path}/loop: a link in a loop"
    finally:
        listening.close()
    (tmp_path / "run.toml").write_text("")
    (tmp_path / "link.toml").symlink_to(tmp_path / "run.toml")
    # A missing one, or one under a file, is for the caller's open to name in its own words.
    for passes in ("run.toml", "link.toml", "missing.toml", "run.toml/x.toml"):
        files.check_regular_file(tmp_path / passes, "a config file")
    files.check_regular_file(tmp_path / "folder", "an input file or folder", folder_ok=True)


def test_an_anonymous_pipe_passes_where_a_pipe_is_read(deadline: None) -> None:
    # `--ids <(grep ...)`: the shell gives /dev/fd/N, a pipe whose writer is the command in it.
    read, write = os.pipe()
    try:
        given = f"/dev/fd/{read}"
        files.check_regular_file(given, "an ids file", pipe_ok=True)
        with pytest.raises(UserError, match=rf"^{given}: a FIFO \(a link to .*\), not an ids file$"):
            files.check_regular_file(given, "an ids file")
    finally:
        os.close(read)
        os.close(write)


def test_an_output_folder_in_the_way_of_something_else_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("the user's")
    (tmp_path / "nowhere").symlink_to(tmp_path / "gone")
    for given, line in [
        ("/dev/null", "/dev/null: a device, not a folder (give another output folder)"),
        (tmp_path / "file", f"{tmp_path}/file: a file, not a folder (give another output folder)"),
        (tmp_path / "file/models", f"{tmp_path}/file: a file, not a folder, so {tmp_path}/file/models cannot be made "
                                   "(give another output folder)"),
        (tmp_path / "nowhere", f"{tmp_path}/nowhere: a link to nothing, not a folder (give another output folder)"),
    ]:
        with pytest.raises(UserError) as error:
            files.check_output_folder(Path(given))
        assert str(error.value) == line
    files.check_output_folder(tmp_path / "new" / "models")  # made later, with the folders above it
    files.check_output_folder(tmp_path)
    assert (tmp_path / "file").read_text() == "the user's" and not (tmp_path / "new").exists()


def test_an_output_that_overlaps_an_input_is_one_line(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for output in (raw, raw / "models", tmp_path):
        with pytest.raises(UserError) as error:
            files.refuse_overlap(output, "model folder", raw, "the input raw", "pick an --out outside the inputs")
        assert str(error.value) == (f"{output}: the model folder overlaps the input raw; pick an --out outside "
                                    "the inputs")
    files.refuse_overlap(tmp_path / "models", "model folder", raw, "the input raw", "pick an --out outside the inputs")
    files.refuse_overlap(tmp_path / "raw2", "model folder", raw, "the input raw", "pick an --out outside the inputs")


def test_a_folder_a_command_wrote_holding_a_fifo_or_a_device_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "c4"
    (folder / "_work" / "pass0").mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    (folder / "gone.json").symlink_to(tmp_path / "nowhere")  # a link to nothing: its reader says so
    (folder / "elsewhere").symlink_to(tmp_path)  # a link to a folder is not walked (no loop)
    files.refuse_special_files(folder)
    os.mkfifo(folder / "_work" / "pass0" / "task-00000.done.json")
    with pytest.raises(UserError) as error:
        files.refuse_special_files(folder)
    assert str(error.value) == (f"{folder}/_work/pass0/task-00000.done.json: a FIFO, not a file a command wrote "
                                "here; remove it and rerun")
    files.refuse_special_files(folder, depth=2)  # a corpus's readers look no deeper than _work's own files
    os.mkfifo(folder / "_work" / "journal.json")
    with pytest.raises(UserError, match=r"_work/journal\.json: a FIFO"):
        files.refuse_special_files(folder, depth=2)
    files.refuse_special_files(folder, depth=1)
    (folder / "_work" / "journal.json").unlink()
    (folder / "_work" / "pass0" / "task-00000.done.json").unlink()
    (folder / "stats.json").symlink_to("/dev/zero")
    with pytest.raises(UserError) as error:
        files.refuse_special_files(folder)
    assert str(error.value) == (f"{folder}/stats.json: a device (a link to /dev/zero), not a file a command wrote "
                                "here; remove it and rerun")
