"""A floor on document length, shared by the sources whose cleaning can leave stubs behind."""

from __future__ import annotations

from pipeline.engine.document import Document
from pipeline.engine.stage import Filter


class MinChars(Filter):
    """Drops documents shorter than `min_chars` characters as "too_short"."""

    name = "min_chars"

    def __init__(self, min_chars: int) -> None:
        self.min_chars = min_chars

    def keep(self, doc: Document) -> bool | str:
        return len(doc.text) >= self.min_chars or "too_short"
