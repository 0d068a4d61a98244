"""The N-largest-groups global stage: ranking by size, ties by name, across tasks."""

from __future__ import annotations

from pathlib import Path

from pipeline.engine.document import Document
from pipeline.filters.largest_groups import LargestGroups


def _doc(site: str, posts: int) -> Document:
    return Document(f"{site}/1", "t", "x", {"site": site, "site_posts": posts})


def test_keeps_the_largest_groups_across_partials(tmp_path: Path) -> None:
    stage = LargestGroups(2, "site", "site_posts")
    stage.collect(iter([_doc("a", 5), _doc("b", 9)]), tmp_path / "p0")
    stage.collect(iter([_doc("c", 7), _doc("d", 7)]), tmp_path / "p1")
    (tmp_path / "art").mkdir()
    stage.merge([tmp_path / "p0", tmp_path / "p1"], tmp_path / "art")
    fresh = LargestGroups(2, "site", "site_posts")
    fresh.load(tmp_path / "art")
    verdicts = {s: fresh.process(_doc(s, 0)) for s in "abcd"}
    assert {s: v if isinstance(v, str) else "kept" for s, v in verdicts.items()} == {
        "a": "not_among_2_largest", "b": "kept", "c": "kept", "d": "not_among_2_largest"}  # c wins the tie by name
