"""Exact document-level dedup over a whole run: of all documents with the same text, the one
with the smallest id is kept, whichever task read it.

A global stage: each task's `collect` writes the (128-bit hash, smallest id) pairs it saw as
an Arrow file; `merge` folds them into the run's winners with one Arrow group-by (no Python
object per document); `process` keeps a document when it is the winner of its hash. Text
hashes are xxh3-128 of the UTF-8 text (collisions are negligible at 2^-64 for billions of
files).

The winners are stored as one sorted uint64 array: for each distinct text, the 64-bit hash of
(text hash, winning id). Every worker memory-maps it, so the filter pass holds 8 bytes per
distinct text, shared through the page cache, where a dict of ids held about 160 (a
GitHub dump's 28 million files would have cost each worker several GB). A copy is kept by
mistake only if its own (hash, id) key equals some winner's: about copies x winners / 2^64,
one duplicate file at worst in a run of billions.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import xxhash

from pipeline.engine.document import Document
from pipeline.engine.stage import GlobalStage, Result

SCHEMA = pa.schema([pa.field("hash", pa.binary(16)), pa.field("id", pa.string())])


def text_hash(text: str) -> bytes:
    return xxhash.xxh3_128_digest(text.encode("utf-8", "surrogatepass"))


def winner_key(hash_: bytes, doc_id: str) -> int:
    """The 64-bit key of one (text hash, id) pair: what the winners array holds."""
    return xxhash.xxh3_64_intdigest(hash_ + doc_id.encode("utf-8", "surrogatepass"))


def keep_smallest(first: dict[bytes, str], key: bytes, doc_id: str) -> None:
    known = first.get(key)
    if known is None or doc_id < known:
        first[key] = doc_id


def write_first_ids(path: Path, first: dict[bytes, str]) -> None:
    """One task's (text hash, smallest id) pairs; the dict is bounded by what one task reads."""
    table = pa.table({"hash": pa.array(list(first), pa.binary(16)), "id": pa.array(list(first.values()), pa.string())},
                     schema=SCHEMA)
    tmp = path.with_name(path.name + ".tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, SCHEMA) as writer:
        writer.write_table(table)
    tmp.replace(path)


def merge_first_ids(partials: Iterable[Path], winners: Path) -> int:
    """Folds the tasks' pairs into the sorted winner keys of the run, written to `winners`
    (.npy); returns the number of distinct texts."""
    tables = []
    for partial in partials:
        with pa.memory_map(str(partial)) as source:
            tables.append(pa.ipc.open_file(source).read_all())
    pairs = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
    smallest = pairs.group_by("hash").aggregate([("id", "min")])
    del pairs, tables
    keys = np.fromiter((winner_key(h, i) for h, i in zip(smallest.column("hash").to_pylist(),
                                                         smallest.column("id_min").to_pylist())),
                       dtype="<u8", count=smallest.num_rows)
    keys.sort()
    tmp = winners.with_name(winners.name + ".tmp.npy")
    np.save(tmp, keys)
    tmp.replace(winners)
    return len(keys)


class Winners:
    """The run's winner keys, memory-mapped: `wins(hash, id)` asks whether that id is the one kept."""

    def __init__(self, path: Path | None = None) -> None:
        self.keys = np.load(path, mmap_mode="r") if path is not None else np.empty(0, dtype="<u8")

    def wins(self, hash_: bytes, doc_id: str) -> bool:
        if not len(self.keys):
            return False
        key = np.uint64(winner_key(hash_, doc_id))
        where = int(np.searchsorted(self.keys, key))
        return where < len(self.keys) and self.keys[where] == key


class ExactDedup(GlobalStage):
    """Drops every document whose exact text another document with a smaller id also has."""

    name = "exact_dedup"

    def __init__(self) -> None:
        self.winners = Winners()

    def collect(self, docs: Iterable[Document], partial: Path) -> None:
        first: dict[bytes, str] = {}
        for doc in docs:
            keep_smallest(first, text_hash(doc.text), doc.id)
        write_first_ids(partial, first)

    def merge(self, partials: list[Path], artefact: Path) -> None:
        merge_first_ids(partials, artefact / "winners.npy")

    def load(self, artefact: Path) -> None:
        self.winners = Winners(artefact / "winners.npy")

    def process(self, doc: Document) -> Result:
        return doc if self.winners.wins(text_hash(doc.text), doc.id) else "duplicate"
