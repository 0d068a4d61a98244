"""`pipeline sample` written again: a file with the same bytes is left as it is, so nothing a run
made from it reads has changed; one an earlier sample wrote otherwise is replaced."""

from __future__ import annotations

from pathlib import Path

from pipeline.commands.sample import write_samples
from pipeline.common.generated import GENERATED_MARKER, mark_generated


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
    write_samples(raw, ["jsonl", "c4"])
    assert {name: _state(raw / name) for name in ("jsonl", "c4")} == before  # bytes and times
    assert sorted(p.name for p in raw.iterdir()) == ["c4", "jsonl"]  # no staging folder left


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
