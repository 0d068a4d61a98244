"""The shared length floor: exactly min_chars characters is kept, one fewer is dropped."""

from __future__ import annotations

from pipeline.engine.document import Document
from pipeline.filters.min_chars import MinChars


def test_floor_is_inclusive_and_the_reason_is_too_short() -> None:
    stage = MinChars(5)
    kept = Document("a", "abcde", "t")
    assert stage.process(kept) is kept
    assert stage.process(Document("b", "abcd", "t")) == "too_short"
    assert stage.process(Document("c", "", "t")) == "too_short"
