"""Raw inputs are sacred: `pipeline sample` never replaces or adds to files it did not write. A
source folder holding a real download (or any file the sample did not write, or one it wrote and
someone replaced since) is refused whole, in one line, before anything is written; a folder of an
earlier sample is written again."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.hostile.helpers import one_error, run_script

pytestmark = pytest.mark.slow  # each test runs the CLI in subprocesses


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_second_sample_over_the_first_is_the_same_sample(tmp_path: Path) -> None:
    assert run_script("pipeline", "sample", "--raw", "raw", cwd=tmp_path).returncode == 0
    first = _tree(tmp_path / "raw")
    assert run_script("pipeline", "sample", "--raw", "raw", cwd=tmp_path).returncode == 0
    assert _tree(tmp_path / "raw") == first


@pytest.mark.parametrize("damage", ["real_file_beside", "sample_file_replaced", "folder_is_a_link"])
def test_a_folder_with_files_the_sample_did_not_write_is_refused_untouched(tmp_path: Path, damage: str) -> None:
    raw = tmp_path / "raw"
    assert run_script("pipeline", "sample", "--raw", "raw", "--sources", "c4", "books", cwd=tmp_path).returncode == 0
    c4 = raw / "c4"
    if damage == "real_file_beside":
        (c4 / "c4-train.00000-of-01024.json.gz").write_bytes(b"\x1f\x8breal download")
    elif damage == "sample_file_replaced":
        victim = sorted(p for p in c4.rglob("*") if p.is_file() and p.suffix != ".json")[0]
        victim.write_bytes(b"a real file under a sample's name")
    else:
        real = tmp_path / "real-c4"
        real.mkdir()
        (real / "c4-train.00000-of-01024.json.gz").write_bytes(b"\x1f\x8breal download")
        c4.rename(tmp_path / "old-c4")
        c4.symlink_to(real)
    before = {**_tree(raw / "books"), **{f"c4/{k}": v for k, v in _tree(c4).items()}}
    done = run_script("pipeline", "sample", "--raw", "raw", "--sources", "books", "c4", cwd=tmp_path)
    line = one_error(done, "pipeline")
    assert line.startswith(str(Path("raw/c4"))) and "refusing" in line, line
    # Nothing written anywhere, not even to the folder that was fine (books comes first).
    assert {**_tree(raw / "books"), **{f"c4/{k}": v for k, v in _tree(c4).items()}} == before
