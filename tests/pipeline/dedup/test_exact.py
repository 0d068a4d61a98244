"""Exact dedup as a global stage: the smallest id of each text wins across tasks."""

from __future__ import annotations

from pathlib import Path

from pipeline.dedup.exact import ExactDedup
from pipeline.engine.document import Document


def _docs(*pairs: tuple[str, str]) -> list[Document]:
    return [Document(i, t, "x", {}) for i, t in pairs]


def test_collect_merge_load_process(tmp_path: Path) -> None:
    stage = ExactDedup()
    task0 = _docs(("b", "same"), ("c", "unique"))
    task1 = _docs(("a", "same"), ("d", "same"))
    stage.collect(iter(task0), tmp_path / "p0")
    stage.collect(iter(task1), tmp_path / "p1")
    (tmp_path / "art").mkdir()
    stage.merge([tmp_path / "p0", tmp_path / "p1"], tmp_path / "art")
    fresh = ExactDedup()
    fresh.load(tmp_path / "art")
    assert [fresh.process(d) if isinstance(fresh.process(d), str) else d.id for d in task0 + task1] == [
        "duplicate", "c", "a", "duplicate"]
