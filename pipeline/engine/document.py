"""The unit every stage sees: one document with its metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True, init=False)
class Document:
    """One document. `id` is stable across reruns and unique within its source."""

    id: str
    text: str
    source: str
    meta: dict[str, Any]

    # Written out rather than generated: a generated one calls the `dict` factory through a
    # sentinel check, and every document of every source is made here (a fifth less time).
    def __init__(self, id: str, text: str, source: str, meta: dict[str, Any] | None = None) -> None:  # noqa: A002
        self.id = id
        self.text = text
        self.source = source
        self.meta = {} if meta is None else meta


@dataclass(frozen=True, slots=True)
class Skipped:
    """A raw record a reader could not turn into a document, counted with its reason.

    `document`, when the reader has one (a redirect, a page outside the main namespace), is
    written with the other dropped documents under --keep-dropped, so read-time drops can be
    audited like a stage's.
    """

    reason: str
    document: Document | None = None


def storable(*texts: str) -> bool:
    """False when a string holds a lone surrogate (from a JSON "\\ud800" escape, or a file name
    that is not UTF-8): Arrow cannot store it, and one such row or file must be skipped, not end
    the run at the shard writer."""
    try:
        for text in texts:
            text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(name: str) -> str:
    """A file name as a warning or a record shows it: bytes that were no UTF-8 (decoded with
    surrogateescape, as Python reads such names) become U+FFFD instead of failing the write."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
