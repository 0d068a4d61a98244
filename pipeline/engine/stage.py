"""Stages: one step of a source's pipeline, either changing a document or dropping it.

A stage's `process(doc)` returns the (possibly changed) document, or a short string that
is the reason it was dropped (`"lang_score_below_0.5"`). The runner owns iteration,
counting and timing; stages hold only their parameters until `setup()` loads resources.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pyarrow as pa

from pipeline.engine.document import Document

Result = Document | str


class Stage:
    """Base of every per-document stage.

    Subclasses set `name` (used in stats and drop audits), implement `process`, and may
    override `process_batch` when the underlying library is faster on batches (fastText,
    SentencePiece). Constructors store paths and numbers only: they are pickled to workers.
    """

    name: str = "stage"
    # Drop reasons under which a document's text lives on in a kept document (an answer joined
    # into its question's): counted as drops like any other, but no loss to warn about.
    merged_reasons: frozenset[str] = frozenset()

    def fields(self) -> list[pa.Field]:
        """Metadata columns this stage adds to documents (typed, written to shards)."""
        return []

    def setup(self) -> None:
        """Load heavy resources; called once per worker before the first document."""

    def model_files(self) -> list[Path]:
        """The model files `setup` loads: a run records their sha256s in its plan, and a rerun
        with other models is refused (pipeline/engine/run_driver.py), never called complete."""
        return []

    def process(self, doc: Document) -> Result:
        raise NotImplementedError

    def process_batch(self, docs: list[Document]) -> list[Result]:
        return list(map(self.process, docs))


class Filter(Stage):
    """A stage that only keeps or drops: `keep(doc)` returns True, or a drop reason."""

    def keep(self, doc: Document) -> bool | str:
        raise NotImplementedError

    def process(self, doc: Document) -> Result:
        verdict = self.keep(doc)
        if verdict is True:
            return doc
        return verdict if isinstance(verdict, str) else self.name


class GlobalStage(Stage):
    """A stage that must see every document of the run before deciding on any.

    The runner makes two passes. In the first, `collect` consumes each task's documents
    (the runner keeps them) and writes a partial artefact; `merge` then combines all
    partials into one artefact. In the second pass `load` reads the artefact once per
    worker, and `process` decides per document as any stage does. Cross-shard line dedup,
    exact file dedup and perplexity percentiles are global stages.

    `state_in_memory`: whether `collect` holds about what it writes as its partial in memory
    until the task's last document (hashes, first ids, signatures), so that a worker's memory
    grows with its task's size; the engine records each merge's largest partial and `pipeline
    plan` projects it. False for a collector that writes as it goes (a database on disk).
    """

    state_in_memory: bool = True

    def carried_fields(self) -> list[pa.Field]:
        """Metadata that `annotate` sets for this stage's own `process` in the next pass: written
        into the collecting pass's parts (so the next pass reads it instead of computing it
        again), never into a shard; `process` removes it from every document it is given."""
        return []

    def annotate(self, docs: list[Document]) -> None:
        """Set `carried_fields` on a chunk of the collecting pass's documents, before the runner
        writes them into its parts and hands them to `collect`."""

    def collect(self, docs: Iterable[Document], partial: Path) -> None:
        raise NotImplementedError

    def merge(self, partials: list[Path], artefact: Path) -> None:
        raise NotImplementedError

    def load(self, artefact: Path) -> None:
        raise NotImplementedError


@dataclass(slots=True)
class StageStats:
    """Counts for one stage; `documents_in == documents_out + sum(dropped.values())`."""

    name: str
    documents_in: int = 0
    documents_out: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "in": self.documents_in,
            "out": self.documents_out,
            "dropped": dict(sorted(self.dropped.items())),
        }

    @classmethod
    def from_json(cls, data: dict) -> "StageStats":
        return cls(data["name"], data["in"], data["out"], Counter(data["dropped"]))

    def add(self, other: "StageStats") -> None:
        self.documents_in += other.documents_in
        self.documents_out += other.documents_out
        self.dropped.update(other.dropped)
        self.seconds += other.seconds
