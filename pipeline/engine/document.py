"""The unit every stage sees: one document with its metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Document:
    """One document. `id` is stable across reruns and unique within its source."""

    id: str
    text: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A raw record a reader could not turn into a document, counted with its reason."""

    reason: str
