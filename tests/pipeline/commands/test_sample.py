"""`pipeline sample` written again: a file with the same bytes is left as it is, so nothing a run
made from it reads has changed; one an earlier sample wrote otherwise is replaced."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.commands.sample import write_samples
from pipeline.common.errors import UserError
from pipeline.common.generated import GENERATED_MARKER, mark_generated


ROOT = Path(__file__).resolve().parents[3]


def _state(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != GENERATED_MARKER}


def test_a_sample_written_again_leaves_its_files_as_they_are(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_samples(raw, ["jsonl", "c4"])
    before = {name: _state(raw / name) for name in ("jsonl", "c4")}
    assert all(before.values())
    (raw / ".c4.sample-left").mkdir()  # the staging folder of a sample killed halfway
    (raw / ".c4.sample-left" / "part.json").write_text("{}")
    markers = {name: _marker_state(raw / name) for name in ("jsonl", "c4")}
    write_samples(raw, ["jsonl", "c4"])
    assert {name: _state(raw / name) for name in ("jsonl", "c4")} == before  # bytes and times
    assert {name: _marker_state(raw / name) for name in ("jsonl", "c4")} == markers  # the marker too
    assert sorted(p.name for p in raw.iterdir()) == ["c4", "jsonl"]  # no staging folder left


def test_a_raw_root_that_is_no_folder_is_one_line_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("the user's")
    for raw, line in [(tmp_path / "file", f"{tmp_path}/file: a file, not a folder (give another output folder)"),
                      (Path("/dev/null"), "/dev/null: a device, not a folder (give another output folder)")]:
        with pytest.raises(UserError) as error:
            write_samples(raw, ["c4"])
        assert str(error.value) == line
    assert [p.name for p in tmp_path.iterdir()] == ["file"] and (tmp_path / "file").read_text() == "the user's"


def _marker_state(folder: Path) -> tuple[bytes, int]:
    marker = folder / GENERATED_MARKER
    return marker.read_bytes(), marker.stat().st_mtime_ns


def test_a_file_an_earlier_sample_wrote_otherwise_is_replaced(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_samples(raw, ["jsonl"])
    before = _state(raw / "jsonl")
    name = sorted(before)[0]
    (raw / "jsonl" / name).write_bytes(b"an older herd's sample\n")
    (raw / "jsonl" / "gone.jsonl").write_bytes(b"a file this sample no longer writes\n")
    mark_generated(raw / "jsonl", sorted(set(before) | {"gone.jsonl"}))  # as that older sample recorded them
    write_samples(raw, ["jsonl"])
    after = _state(raw / "jsonl")
    assert {n: data for n, (data, _) in after.items()} == {n: data for n, (data, _) in before.items()}


KILLED_DURING_MOVES = """
import os, signal, sys
from pathlib import Path
import pipeline.commands.sample as sample
moves = []
def replace(src, dst):
    if ".jsonl.sample-" in str(src):  # a file of the new sample moved in (not the marker's rename)
        moves.append(dst)
        if len(moves) == 2:  # the first file is the new sample's, the rest the old one's
            os.kill(os.getpid(), signal.SIGKILL)
    os.rename(src, dst)
sample.os.replace = replace
sample.write_samples(Path(sys.argv[1]), ["jsonl"], seed=int(sys.argv[2]))
"""


def test_a_sample_killed_while_moving_its_files_in_is_written_again_over(tmp_path: Path) -> None:
    raw, clean = tmp_path / "raw", tmp_path / "clean"
    write_samples(raw, ["jsonl"], seed=0)
    write_samples(clean, ["jsonl"], seed=1)
    old, new = _state(raw / "jsonl"), _state(clean / "jsonl")
    assert len(new) >= 2 and all(old[name][0] != new[name][0] for name in new)  # every file moves
    killed = subprocess.run([sys.executable, "-c", KILLED_DURING_MOVES, str(raw), "1"], cwd=ROOT)
    assert killed.returncode == -signal.SIGKILL
    halfway = {name: data for name, (data, _) in _state(raw / "jsonl").items()}
    assert sum(data == new[name][0] for name, data in halfway.items()) == 1  # one file of each sample
    assert sum(data == old[name][0] for name, data in halfway.items()) == len(new) - 1
    write_samples(raw, ["jsonl"], seed=1)  # not refused as someone else's files
    assert {n: data for n, (data, _) in _state(raw / "jsonl").items()} == {n: data for n, (data, _) in new.items()}
    assert sorted(p.name for p in raw.iterdir()) == ["jsonl"]  # the killed run's staging folder is gone
    marker = json.loads((raw / "jsonl" / GENERATED_MARKER).read_text())
    assert "pending" not in marker
    (raw / "jsonl" / sorted(new)[0]).write_bytes(b"a user's own file\n")  # and a foreign file is still refused
    with pytest.raises(UserError, match="not written by `pipeline sample`"):
        write_samples(raw, ["jsonl"], seed=0)
