"""Line dedup's group merge in buckets: the keys of two or more documents, whatever the buckets
and the processes, checked against a count of every key by hand."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipeline.dedup import line_groups
from pipeline.dedup.line_groups import write_group_duplicates

TOP = 2**64 - 1
ROOT = Path(__file__).resolve().parents[3]


def _group(tmp_path: Path, seed: int, files: int = 12) -> tuple[list[tuple[Path, int]], list[int]]:
    """Hash-pass files as tasks write them (each file's sorted distinct keys, and the keys already
    repeated inside it), over three tasks' partial folders; and the group's duplicates counted by
    hand: a key in two files' key arrays, or in any file's repeated array."""
    rng = random.Random(seed)
    shared = [rng.randrange(2**64) for _ in range(300)] + [0, 1, TOP, TOP - 1, 1 << 63, (1 << 63) - 1]
    members, in_files, inside = [], Counter(), set()
    for number in range(files):
        partial = tmp_path / f"task{number % 3}" / "partial"
        partial.mkdir(parents=True, exist_ok=True)
        own = {rng.randrange(2**64) for _ in range(rng.randrange(0, 400))}
        keys = sorted(own | set(rng.sample(shared, rng.randrange(0, 40))))
        repeated = sorted(rng.sample(keys, min(len(keys), rng.randrange(0, 5))))
        np.save(partial / f"{number}-keys.npy", np.array(keys, dtype="<u8"))
        np.save(partial / f"{number}-repeated.npy", np.array(repeated, dtype="<u8"))
        members.append((partial, number))
        in_files.update(keys)
        inside.update(repeated)
    duplicates = sorted({key for key, count in in_files.items() if count >= 2} | inside)
    return members, duplicates


@pytest.mark.parametrize("bucket_keys", [1 << 21, 64, 1])
def test_the_duplicates_are_the_keys_of_two_files_or_repeated_inside_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bucket_keys: int) -> None:
    monkeypatch.setattr(line_groups, "BUCKET_KEYS", bucket_keys)  # one bucket, about 50, 2^12
    members, duplicates = _group(tmp_path, seed=7)
    out = tmp_path / "group-00000.npy"
    assert write_group_duplicates(members, out) == len(duplicates)
    assert np.load(out).tolist() == duplicates
    assert 0 in duplicates or TOP in duplicates  # the extreme keys were in reach of the buckets' edges
    expected = tmp_path / "expected.npy"
    np.save(expected, np.array(duplicates, dtype="<u8"))
    assert out.read_bytes() == expected.read_bytes()  # the file np.save writes of them
    assert not list(tmp_path.glob("*.tmp.npy"))


def test_buckets_merged_by_two_processes_are_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(line_groups, "BUCKET_KEYS", 16)
    members, duplicates = _group(tmp_path, seed=11, files=30)
    one, two = tmp_path / "one.npy", tmp_path / "two.npy"
    write_group_duplicates(members, one, processes=1)
    write_group_duplicates(members, two, processes=2)
    assert one.read_bytes() == two.read_bytes()
    assert np.load(two).tolist() == duplicates


def test_a_key_at_the_top_of_the_last_bucket_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(line_groups, "BUCKET_KEYS", 1)
    for number, keys in enumerate([[5, TOP], [TOP], [0, 5]]):
        np.save(tmp_path / f"{number}-keys.npy", np.array(keys, dtype="<u8"))
        np.save(tmp_path / f"{number}-repeated.npy", np.empty(0, dtype="<u8"))
    out = tmp_path / "group.npy"
    write_group_duplicates([(tmp_path, n) for n in range(3)], out)
    assert np.load(out).tolist() == [5, TOP]


def test_a_group_of_files_without_keys_has_no_duplicates(tmp_path: Path) -> None:
    for number in range(2):
        np.save(tmp_path / f"{number}-keys.npy", np.empty(0, dtype="<u8"))
        np.save(tmp_path / f"{number}-repeated.npy", np.empty(0, dtype="<u8"))
    out = tmp_path / "group.npy"
    assert write_group_duplicates([(tmp_path, 0), (tmp_path, 1)], out, processes=2) == 0
    assert np.load(out).tolist() == []


def test_a_group_of_more_files_than_the_process_may_open_is_merged(tmp_path: Path) -> None:
    """CCNet's groups are 1,900 files; the usual limit on open files is 1,024. A bucket opens each
    file for its read only: 300 files merge under a limit of 64 open files."""
    members, duplicates = _group(tmp_path, seed=3, files=300)
    script = (
        "import resource, sys; from pathlib import Path\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "from pipeline.dedup import line_groups\n"
        "line_groups.BUCKET_KEYS = line_groups.MIN_SLICE_KEYS = 64\n"
        f"members = [(Path(p), n) for p, n in {[(str(p), n) for p, n in members]!r}]\n"
        "for processes in (1, 2):\n"
        "    line_groups.write_group_duplicates(members, Path(sys.argv[1]) / f'{processes}.npy', processes)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    for processes in (1, 2):
        assert np.load(tmp_path / f"{processes}.npy").tolist() == duplicates
