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

The merge holds about 75 bytes per pair at its peak, so a run of more than BUCKET_PAIRS pairs
is merged in 2^bits buckets, by the text hash's first bits, as many at once as the driver has
cores (forked processes, each bucket's keys handed back in order): every copy of a
text is in the same bucket, and each task writes its pairs sorted by hash, so a bucket is one
slice of each task's file. CommonCrawl's one copy per page over the paper's five snapshots is
about 13.6 billion pairs: in one bucket the driver would want about 1 TB, in 65,536 buckets
about 16 MB. A key then holds its bucket in its top bits (the text hash's, which every copy
shares) and the pair's hash in the rest, so the buckets' keys, one after another, are still one
sorted array, searched once; `<winners>.json` says how many bits (none: one bucket, the keys
as they were before buckets). A copy now matches a winner's key only within its bucket, on the
rest of the bits: the odds stay copies x winners / 2^64.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import xxhash

from pipeline.common.forked import bucket_bits, write_buckets
from pipeline.common.sorted_arrays import load_mapped
from pipeline.engine.document import Document
from pipeline.engine.stage import GlobalStage, Result
from pipeline.engine.supervisor import usable_cores

MERGE_SLICE = 1 << 16  # pairs turned into Python objects at a time by the merge
# The most pairs a bucket of the merge is meant to hold: about 20 MB at its peak, and twice the
# speed of one bucket of millions (1.1 against 2.1 µs a pair measured at 2M pairs: the sorts fit
# the caches).
BUCKET_PAIRS = 1 << 18
MAX_BUCKET_BITS = 16  # 65,536 buckets: a key keeps 48 bits of its pair's own hash
SCHEMA = pa.schema([pa.field("hash", pa.binary(16)), pa.field("id", pa.string())])


def text_hash(text: str) -> bytes:
    return xxhash.xxh3_128_digest(text.encode("utf-8", "surrogatepass"))


def winner_key(hash_: bytes, doc_id: str) -> int:
    """The 64-bit key of one (text hash, id) pair: what the winners array holds (a merge in
    buckets shifts it right to make room for its bucket's bits: `Winners.wins_many`)."""
    return xxhash.xxh3_64_intdigest(hash_ + doc_id.encode("utf-8", "surrogatepass"))


def keep_smallest(first: dict[bytes, str], key: bytes, doc_id: str) -> None:
    known = first.get(key)
    if known is None or doc_id < known:
        first[key] = doc_id


def write_first_ids(path: Path, first: dict[bytes, str]) -> None:
    """One task's (text hash, smallest id) pairs; the dict is bounded by what one task reads."""
    table = pa.table({"hash": pa.array(list(first), pa.binary(16)), "id": pa.array(list(first.values()), pa.string())},
                     schema=SCHEMA)
    _write_sorted(path, table)


def _write_sorted(path: Path, table: pa.Table) -> None:
    """`table` sorted by hash (its bytes in order, as `_prefixes` reads them), written to `path`."""
    if table.num_rows:
        table = table.combine_chunks()
        halves = _hash_halves(table.column("hash").chunks[0], ">u8")
        table = table.take(pa.array(np.lexsort((halves[:, 1], halves[:, 0]))))
    tmp = path.with_name(path.name + ".tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, SCHEMA) as writer:
        writer.write_table(table)
    tmp.replace(path)


def merge_first_ids(partials: Iterable[Path], winners: Path, processes: int = 1) -> int:
    """Folds the tasks' pairs into the sorted winner keys of the run, written to `winners`
    (.npy), bucket by bucket (see the module's docstring), up to `processes` buckets at once;
    returns the number of distinct texts.

    The partials stay memory-mapped (their ids are read from the page cache, never copied);
    the heap holds a bucket's pairs: 16 bytes of hash, 8 of sort order and 8 of winner key per
    pair (about 75 per pair measured at the peak, with Arrow's pool)."""
    global _MERGING
    read = [_read_pairs(partial) for partial in partials]
    tables, prefixes = [table for table, _ in read], [prefix for _, prefix in read]
    bits = bucket_bits(sum(table.num_rows for table in tables), BUCKET_PAIRS, MAX_BUCKET_BITS)
    _MERGING = (prefixes, tables, bits)
    try:
        # Each process finds the mapped task files where this one has them; the buckets come
        # back in order, a few MB of keys each.
        count = write_buckets(winners, _bucket_keys, 1 << bits, processes)
    finally:
        _MERGING = None
    _description(winners).write_text(json.dumps({"bucket_bits": bits}))
    return count


# The merge in progress: its task files' hash prefixes and pairs, and its bucket bits. A module
# global, so that the processes it forks inherit them instead of receiving a pickled copy.
_MERGING: tuple[list[np.ndarray], list[pa.Table], int] | None = None


def _bucket_keys(bucket: int) -> np.ndarray:
    """The winner keys of one bucket of the merge in progress, sorted, its bits in their top."""
    assert _MERGING is not None
    prefixes, tables, bits = _MERGING
    low, high = (bucket << (64 - bits), (bucket + 1) << (64 - bits)) if bits else (0, 1 << 64)
    pieces = [table.slice(start, end - start) for table, prefix in zip(tables, prefixes)
              for start, end in [_rows_between(prefix, low, high)] if end > start]
    keys = _in_bucket(_fold(pa.concat_tables(pieces) if pieces else SCHEMA.empty_table()), np.uint64(bucket), bits)
    keys.sort()
    return keys


def _in_bucket(keys: np.ndarray, buckets: np.ndarray | np.uint64, bits: int) -> np.ndarray:
    """Winner keys as a merge of `bits` bucket bits stores them: shifted right, their buckets in
    the top bits (no bits: the keys as they are)."""
    if not bits:
        return keys
    return (keys >> np.uint64(bits)) | (buckets.astype("<u8") << np.uint64(64 - bits))


def _description(winners: Path) -> Path:
    return winners.with_suffix(".json")


def _read_pairs(partial: Path) -> tuple[pa.Table, np.ndarray]:
    """A task's pairs, memory-mapped, sorted by hash, and their hashes' `_prefixes` (a file written
    before tasks sorted theirs is sorted and written again first: one task's pairs)."""
    table = pa.ipc.open_file(pa.memory_map(str(partial))).read_all()
    prefix = _prefixes(table)
    if len(prefix) > 1 and not bool(np.all(prefix[1:] >= prefix[:-1])):
        _write_sorted(partial, table)
        table = pa.ipc.open_file(pa.memory_map(str(partial))).read_all()
        prefix = _prefixes(table)
    return table, prefix


def _prefixes(table: pa.Table) -> np.ndarray:
    """The first 8 bytes of each pair's hash as a big-endian number (a view of the mapped file):
    sorted as the hashes' bytes are."""
    chunks = table.column("hash").chunks
    if len(chunks) == 1:
        return _hash_halves(chunks[0], ">u8")[:, 0]
    return np.concatenate([_hash_halves(chunk, ">u8")[:, 0] for chunk in chunks]) if chunks else np.empty(0, ">u8")


def _rows_between(prefix: np.ndarray, low: int, high: int) -> tuple[int, int]:
    """The rows of a sorted `prefix` at or above `low` and below `high` (2^64: no bound)."""
    start = int(np.searchsorted(prefix, np.uint64(low), side="left")) if low else 0
    end = int(np.searchsorted(prefix, np.uint64(high), side="left")) if high < 1 << 64 else len(prefix)
    return start, end


def _fold(pairs: pa.Table) -> np.ndarray:
    """The winner key of each distinct hash of `pairs`: of its pairs, the smallest id's."""
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
    return keys[:winners_found]


def _hash_halves(chunk: pa.FixedSizeBinaryArray, order: str = "<u8") -> np.ndarray:
    """A chunk's 16-byte hashes as rows of two uint64 (a view of the mapped file); `order` ">u8"
    reads them big-endian, so that rows sort as the hashes' bytes do."""
    return np.frombuffer(chunk.buffers()[1], dtype=order, count=2 * len(chunk),
                         offset=16 * chunk.offset).reshape(-1, 2)


class Winners:
    """The run's winner keys, memory-mapped: `wins_many` asks whether ids are the ones kept."""

    def __init__(self, path: Path | None = None) -> None:
        self.keys = load_mapped(path) if path is not None else np.empty(0, dtype="<u8")
        self.bits = 0  # the merge's bucket bits: a key's top bits are its bucket's
        if path is not None and _description(path).exists():
            self.bits = int(json.loads(_description(path).read_text())["bucket_bits"])

    def wins_many(self, hashes: list[bytes], doc_ids: list[str]) -> list[bool]:
        """For each (text hash, id) pair: is that id the one kept? One search of the keys for all."""
        if not len(self.keys) or not hashes:
            return [False] * len(hashes)
        keys = np.fromiter(map(winner_key, hashes, doc_ids), dtype="<u8", count=len(hashes))
        if self.bits:
            prefixes = np.frombuffer(b"".join(hashes), dtype=">u8")[::2]
            keys = _in_bucket(keys, prefixes >> np.uint64(64 - self.bits), self.bits)
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
        merge_first_ids(partials, artefact / "winners.npy", usable_cores())

    def load(self, artefact: Path) -> None:
        self.winners = Winners(artefact / "winners.npy")

    def process(self, doc: Document) -> Result:
        return self.process_batch([doc])[0]

    def process_batch(self, docs: list[Document]) -> list[Result]:
        wins = self.winners.wins_many([text_hash(doc.text) for doc in docs], [doc.id for doc in docs])
        return [doc if won else "duplicate" for doc, won in zip(docs, wins)]
