"""Exact document-level dedup over a whole run: of all documents with the same text, the one
with the smallest id is kept, whichever task read it.

A global stage: each task's `collect` writes the (128-bit hash, smallest id) pairs it saw as
an Arrow file; `merge` folds them into the run's winners; `process` keeps a document when it
is the winner of its hash. Hashes are xxh3-128 of the UTF-8 text (collisions are negligible
at 2^-64 for billions of files), so memory holds 16 bytes plus an id per distinct text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.ipc
import xxhash

from pipeline.engine.document import Document
from pipeline.engine.stage import GlobalStage, Result

SCHEMA = pa.schema([pa.field("hash", pa.binary(16)), pa.field("id", pa.string())])


def text_hash(text: str) -> bytes:
    return xxhash.xxh3_128_digest(text.encode("utf-8", "surrogatepass"))


def keep_smallest(first: dict[bytes, str], key: bytes, doc_id: str) -> None:
    known = first.get(key)
    if known is None or doc_id < known:
        first[key] = doc_id


def write_first_ids(path: Path, first: dict[bytes, str]) -> None:
    table = pa.table({"hash": pa.array(list(first), pa.binary(16)), "id": pa.array(list(first.values()), pa.string())},
                     schema=SCHEMA)
    tmp = path.with_name(path.name + ".tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, SCHEMA) as writer:
        writer.write_table(table)
    tmp.replace(path)


def read_first_ids(path: Path) -> Iterable[tuple[bytes, str]]:
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_file(source).read_all()
    return zip(table.column("hash").to_pylist(), table.column("id").to_pylist())


class ExactDedup(GlobalStage):
    """Drops every document whose exact text another document with a smaller id also has."""

    name = "exact_dedup"

    def __init__(self) -> None:
        self.winners: dict[bytes, str] = {}

    def collect(self, docs: Iterable[Document], partial: Path) -> None:
        first: dict[bytes, str] = {}
        for doc in docs:
            keep_smallest(first, text_hash(doc.text), doc.id)
        write_first_ids(partial, first)

    def merge(self, partials: list[Path], artefact: Path) -> None:
        first: dict[bytes, str] = {}
        for partial in partials:
            for key, doc_id in read_first_ids(partial):
                keep_smallest(first, key, doc_id)
        write_first_ids(artefact / "winners.arrow", first)

    def load(self, artefact: Path) -> None:
        self.winners = dict(read_first_ids(artefact / "winners.arrow"))

    def process(self, doc: Document) -> Result:
        return doc if self.winners.get(text_hash(doc.text)) == doc.id else "duplicate"
