"""Exact document-level dedup over a whole run: of all documents with the same text, the one
with the smallest id is kept, whichever task read it.

A global stage: each task's `collect` writes the (128-bit hash, smallest id) pairs it saw as
an Arrow file; `merge` folds them into the run's winners with one sort of the hashes (no
Python object per document held); `process` keeps a document when it is the winner of its hash. Text
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

MERGE_SLICE = 1 << 16  # pairs turned into Python objects at a time by the merge
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
    (.npy); returns the number of distinct texts.

    The partials stay memory-mapped (their ids are read from the page cache, never copied);
    the heap holds 16 bytes of hash, 8 of sort order and 8 of winner key per pair (about 75
    per pair measured at the peak, with Arrow's pool)."""
    tables = [pa.ipc.open_file(pa.memory_map(str(partial))).read_all() for partial in partials]
    pairs = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
    chunks = pairs.column("hash").chunks
    halves = np.concatenate([_hash_halves(chunk) for chunk in chunks]) if chunks else np.empty((0, 2), "<u8")
    order = np.lexsort((halves[:, 1], halves[:, 0]))  # equal hashes next to each other
    del halves
    keys = np.empty(len(order), dtype="<u8")  # at most one winner per pair
    winners_found = 0
    run_hash, run_id = b"", ""
    for start in range(0, len(order), MERGE_SLICE):  # a run of equal hashes may span two slices
        rows = pairs.take(pa.array(order[start : start + MERGE_SLICE]))
        for hash_, doc_id in zip(rows.column("hash").to_pylist(), rows.column("id").to_pylist()):
            if hash_ != run_hash:
                if run_hash:
                    keys[winners_found] = winner_key(run_hash, run_id)
                    winners_found += 1
                run_hash, run_id = hash_, doc_id
            elif doc_id < run_id:
                run_id = doc_id
    if run_hash:
        keys[winners_found] = winner_key(run_hash, run_id)
        winners_found += 1
    del order
    sorted_keys = keys[:winners_found]
    sorted_keys.sort()
    tmp = winners.with_name(winners.name + ".tmp.npy")
    np.save(tmp, sorted_keys)
    tmp.replace(winners)
    return len(sorted_keys)


def _hash_halves(chunk: pa.FixedSizeBinaryArray) -> np.ndarray:
    """A chunk's 16-byte hashes as rows of two uint64 (a view of the mapped file)."""
    return np.frombuffer(chunk.buffers()[1], dtype="<u8", count=2 * len(chunk),
                         offset=16 * chunk.offset).reshape(-1, 2)


class Winners:
    """The run's winner keys, memory-mapped: `wins_many` asks whether ids are the ones kept."""

    def __init__(self, path: Path | None = None) -> None:
        self.keys = np.load(path, mmap_mode="r") if path is not None else np.empty(0, dtype="<u8")

    def wins_many(self, hashes: list[bytes], doc_ids: list[str]) -> list[bool]:
        """For each (text hash, id) pair: is that id the one kept? One search of the keys for all."""
        if not len(self.keys) or not hashes:
            return [False] * len(hashes)
        keys = np.fromiter(map(winner_key, hashes, doc_ids), dtype="<u8", count=len(hashes))
        where = np.searchsorted(self.keys, keys).clip(max=len(self.keys) - 1)
        return (self.keys[where] == keys).tolist()


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
        return self.process_batch([doc])[0]

    def process_batch(self, docs: list[Document]) -> list[Result]:
        wins = self.winners.wins_many([text_hash(doc.text) for doc in docs], [doc.id for doc in docs])
        return [doc if won else "duplicate" for doc, won in zip(docs, wins)]
