"""Arrow IPC streaming shards: the corpus contract between sources and everything after.

Every shard has the columns id, text, source, then the typed metadata columns of its
source and stages. Writers never leave a partial file under a final name: a shard is
written as `<name>.tmp` and renamed once closed. Readers hand out documents (`iter_shard`,
`read_corpus`) or, from the text column's offsets alone, sizes (`corpus_size`).

The writer records each shard's size and sha256 in the corpus's manifest.json (read, and checked
before anything it names is opened, by pipeline/engine/corpus_manifest.py); `shard_problem`
is the one check of a shard against its entry. `pipeline verify` reports every problem it
finds; the readers that hand a corpus to the user (`read_corpus`, `verified_shard_paths`) refuse
the first damaged shard in one line, so nothing is ever built from a shard changed on disk.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from bisect import bisect_left
from itertools import accumulate, chain, repeat
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa

from pipeline.common.errors import UserError
from pipeline.common.files import file_sha256, seal, with_path
from pipeline.common.sorted_arrays import distinct, find
from pipeline.engine.corpus_manifest import manifest_shards
from pipeline.engine.run_folder import WORK
from pipeline.engine.document import Document, storable
from pipeline.engine.hashing_file import HashingFile

BASE_FIELDS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
]
BASE_NAMES = {f.name for f in BASE_FIELDS}
# Shards hashed at once when a reader checks a whole source: enough to keep a fast disk busy.
HASH_THREADS = min(8, os.cpu_count() or 1)


def build_schema(meta_fields: list[pa.Field]) -> pa.Schema:
    """The base columns followed by metadata columns, first declaration of a name winning."""
    fields = list(BASE_FIELDS)
    seen = set(BASE_NAMES)
    for f in meta_fields:
        if f.name not in seen:
            fields.append(f)
            seen.add(f.name)
    return pa.schema(fields)


class _PandasHidden:
    """A finder that answers `import pandas` with ImportError, for `skip_pandas_probe` only."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("hidden from pyarrow's first conversion", name=name)
        return None


def skip_pandas_probe() -> None:
    """Spare this process the import of pandas (0.15-0.3 s of CPU) that pyarrow's first `pa.array`
    makes, only to ask whether its argument is a pandas object: herd never hands it one.

    The first conversion runs with pandas hidden, and pyarrow remembers that it found none; its
    own pandas functions (`to_pandas`, `from_pandas`) import pandas when called all the same
    (pyarrow tries again there). A process that has loaded pandas already keeps it in use:
    nothing is hidden there. Called by each worker before its first document, and by `pipeline
    run` (a process of its own); not by `run_source`, whose caller's process may convert pandas
    objects after it (a categorical Series is a dictionary array only where pyarrow knows pandas)."""
    if "pandas" in sys.modules:
        return
    sys.meta_path.insert(0, _PandasHidden)
    try:
        pa.array([""], pa.string())
    finally:
        sys.meta_path.remove(_PandasHidden)


# Characters of text a record batch holds at most (a batch of 1,024 web pages holds a few MB; of
# books or papers, far more): the worker's buffer, and a reader's batch, stay near 16 MB whatever
# the documents' size.
BATCH_CHARS = 16 << 20


class ShardWriter:
    """Writes documents into `prefix-NNNNN.arrow` files in `folder`, rolling at `max_bytes`.

    Documents are buffered into record batches of `batch_rows` rows, or fewer where their texts
    reach `batch_chars` characters first (the document that reaches it ends the batch): a batch
    of 1,024 books would hold half a gigabyte in the worker, twice over while it becomes Arrow
    arrays, and every reader of the shard would load it whole. `close()` returns the paths
    written, in order. Metadata keys not in the schema are an error, not silently lost.
    `checksum=False` (a pass's parts that only the next pass reads, never published or checked)
    skips hashing them: `info` then has no sha256. Metadata keys in `left_out` are not written
    (a run's carried fields, in its dropped documents).
    """

    def __init__(
        self,
        folder: Path,
        schema: pa.Schema,
        prefix: str = "part",
        max_bytes: int = 256 << 20,
        batch_rows: int = 1024,
        batch_chars: int = BATCH_CHARS,
        checksum: bool = True,
        left_out: frozenset[str] = frozenset(),
    ) -> None:
        self.folder = Path(folder)
        self.left_out = left_out
        self.checksum = checksum
        self.schema = schema
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.batch_rows = batch_rows
        self.batch_chars = batch_chars
        self._buffer_chars = 0  # characters of text in self._buffer
        self.meta_names = [f.name for f in schema][len(BASE_FIELDS):]
        self.meta_name_set = set(self.meta_names)
        self.paths: list[Path] = []
        self.info: list[dict] = []  # per closed shard: file, documents, bytes, sha256, mtime_ns
        self._buffer: list[Document] = []
        self._texts: list[str] = []  # the buffered documents' texts, as they were when written
        self._file: HashingFile | None = None
        self._stream: pa.RecordBatchStreamWriter | None = None  # writes into self._file
        self._rows_in_shard = 0
        self._bytes_in_shard = 0

    def write(self, doc: Document) -> None:
        self._buffer.append(doc)
        self._texts.append(doc.text)
        self._buffer_chars += len(doc.text)
        if len(self._buffer) >= self.batch_rows or self._buffer_chars >= self.batch_chars:
            self._flush_full()

    def write_many(self, docs: list[Document]) -> None:
        # Comprehensions, not map(attrgetter): an attribute of a slotted class read in the loop
        # takes the interpreter's specialised path, twice the speed of attrgetter's generic one.
        texts = [doc.text for doc in docs]  # taken once: counted here, the batch's column later
        self._buffer.extend(docs)
        self._texts.extend(texts)
        self._buffer_chars += sum(map(len, texts))
        if len(self._buffer) >= self.batch_rows or self._buffer_chars >= self.batch_chars:
            self._flush_full()

    def _flush_full(self) -> None:
        # Every full batch in the buffer, cut where the documents themselves say (batch_rows
        # rows, or the document whose text reaches batch_chars), however they arrived: a task
        # retried with smaller chunks (pipeline/engine/supervisor.py) writes the same bytes.
        buffer, texts = self._buffer, self._texts
        if self._buffer_chars < self.batch_chars:
            # No document reaches the character bound (small documents, the usual case): rows
            # alone cut, and the characters need no second count but the rest's.
            rows = self.batch_rows
            cuts = [(start, start + rows) for start in range(0, len(buffer) - len(buffer) % rows, rows)]
        else:
            ends = list(accumulate(map(len, texts)))  # characters up to each document
            cuts = []
            start, before = 0, 0
            while True:
                by_chars = bisect_left(ends, before + self.batch_chars, start) + 1
                end = min(start + self.batch_rows, by_chars)
                if end > len(buffer):
                    break
                cuts.append((start, end))
                start, before = end, ends[end - 1]
        last = 0
        for start, end in cuts:
            self._buffer, self._texts = buffer[start:end], texts[start:end]
            self._flush()
            last = end
        self._buffer, self._texts = buffer[last:], texts[last:]
        self._buffer_chars = sum(map(len, self._texts))

    def _flush(self) -> None:
        if not self._buffer:
            return
        docs, texts = self._buffer, self._texts
        self._buffer, self._texts = [], []
        self._buffer_chars = 0
        known = self.meta_name_set
        metas = [doc.meta for doc in docs]
        if self.left_out and any(not self.left_out.isdisjoint(meta) for meta in metas):
            metas = [{k: v for k, v in meta.items() if k not in self.left_out} for meta in metas]
        # At C speed; `any` first: a batch without metadata has no key to look up.
        if any(metas) and not known.issuperset(chain.from_iterable(metas)):
            for doc, meta in zip(docs, metas):
                if not known.issuperset(meta):
                    unknown = sorted(set(meta) - known)
                    raise ValueError(f"document {doc.id}: metadata {unknown} not declared in the schema")
        columns = [
            pa.array([doc.id for doc in docs], pa.string()),
            text_column(texts),
            _source_column([doc.source for doc in docs]),
        ]
        for name in self.meta_names:
            columns.append(pa.array(list(map(dict.get, metas, repeat(name))), self.schema.field(name).type))
        batch = pa.RecordBatch.from_arrays(columns, schema=self.schema)
        try:
            if self._stream is None:
                self._open()
            assert self._stream is not None
            self._stream.write_batch(batch)
        except OSError as e:
            raise with_path(e, self._final_path()) from e
        self._rows_in_shard += batch.num_rows
        self._bytes_in_shard += batch.nbytes
        if self._bytes_in_shard >= self.max_bytes:
            self._close_shard()

    def _final_path(self) -> Path:
        return self.folder / f"{self.prefix}-{len(self.paths):05d}.arrow"

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._file = HashingFile(str(self._final_path()) + ".tmp", self.checksum)
        # pyarrow's stream writer hands the file its buffers themselves (the columns' data,
        # not a serialised copy of each batch): the file writes and hashes them as they are.
        self._stream = pa.ipc.new_stream(self._file, self.schema)
        self._bytes_in_shard = 0
        self._rows_in_shard = 0

    def _close_shard(self) -> None:
        assert self._file is not None and self._stream is not None
        final = self._final_path()
        try:
            self._stream.close()  # the end-of-stream marker
            size, digest = self._file.close()
        except OSError as e:
            raise with_path(e, final) from e
        self._file = self._stream = None
        os.replace(str(final) + ".tmp", final)
        info = {"file": final.name, "documents": self._rows_in_shard, "bytes": size}
        if self.checksum:
            # A rerun trusts the shard while it stays as written (run_folder.file_problem): by its
            # seal, or where the file system keeps none, by the mtime recorded here.
            seal(final, f"sha256:{digest}")
            info |= {"sha256": digest, "mtime_ns": final.stat().st_mtime_ns}
        self.paths.append(final)
        self.info.append(info)

    def close(self) -> list[Path]:
        self._flush()
        if self._stream is not None:
            self._close_shard()
        return self.paths

    def abort(self) -> None:
        """Drop the shard being written, leaving only completed ones."""
        if self._file is not None:
            try:
                self._file.abort()
            finally:
                Path(str(self._final_path()) + ".tmp").unlink(missing_ok=True)
                self._file = self._stream = None  # the stream is dropped unclosed: nothing more is written


def text_column(values: list[str]) -> pa.Array:
    """`pa.array(values, pa.string())` for documents' texts, the same Arrow bytes, built from its
    two buffers: each text encoded by `str.encode` and joined, with their offsets. pyarrow converts
    a string that is not all ASCII by way of a UTF-8 copy it caches in the string object (an
    allocation per text, kept as long as the text): on the bench's pages it took 0.15-0.20 s for
    30,000 texts against 0.02-0.04 s here, the largest part of writing a pass's parts. A batch all
    of ASCII is pyarrow's fast case (it reads the strings' own bytes, no copy: 2 KB texts 4 times
    faster than here), as are ids and URLs, which keep `pa.array`. A value that is no string, a
    lone surrogate (pa.array's own error) and a batch of 2 GB or more (int32 offsets) go to
    `pa.array` as before."""
    try:
        if all(map(str.isascii, values)):  # a flag of each string: no scan of its characters
            return pa.array(values, pa.string())
        data = [value.encode("utf-8") for value in values]
    except (TypeError, AttributeError, UnicodeEncodeError):  # TypeError: a value that is no str
        return pa.array(values, pa.string())
    ends = np.cumsum(np.fromiter(map(len, data), dtype=np.int64, count=len(data)))
    if len(data) and ends[-1] >= 2**31:
        return pa.array(values, pa.string())
    offsets = np.zeros(len(data) + 1, dtype=np.int32)
    offsets[1:] = ends
    return pa.StringArray.from_buffers(len(data), pa.py_buffer(offsets), pa.py_buffer(b"".join(data)))


def _source_column(sources: list[str]) -> pa.Array:
    """The batch's `source` column: one name repeated, as a run's documents have it, is built
    from its two buffers (the name's bytes repeated, and their offsets) instead of converting a
    thousand Python strings: the same Arrow bytes as `pa.array`, in 2 us per 1,024 rows against
    its 25 (and `pa.repeat`'s 86)."""
    first = sources[0]
    # A name with a lone surrogate is not storable: pa.array raises its own error on it.
    if sources.count(first) == len(sources) and storable(first):
        name = first.encode("utf-8")
        if len(name) * len(sources) < 2**31:  # int32 offsets, as pa.string()'s
            offsets = np.arange(len(sources) + 1, dtype=np.int32) * np.int32(len(name))
            return pa.StringArray.from_buffers(len(sources), pa.py_buffer(offsets), pa.py_buffer(name * len(sources)))
    return pa.array(sources, pa.string())


def iter_shard(path: Path | str) -> Iterator[Document]:
    """Documents of one shard, in order."""
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_stream(source)
        meta_names = [f.name for f in reader.schema if f.name not in BASE_NAMES]
        for batch in reader:
            ids = batch.column("id").to_pylist()
            texts = batch.column("text").to_pylist()
            sources = batch.column("source").to_pylist()
            # A document's meta holds its non-null fields. Columns null in every row (filled by
            # a later pass's stages) hold none; when every other column is full, each row's dict
            # comes straight from the columns, without a test per field.
            rows = batch.num_rows
            columns = [(n, batch.column(n)) for n in meta_names]
            present = [(n, column) for n, column in columns if column.null_count < rows]
            names = [n for n, _ in present]
            values = [column.to_pylist() for _, column in present]
            if values and not any(column.null_count for _, column in present):
                metas = [dict(zip(names, row)) for row in zip(*values)]
            else:
                metas = [{n: col[i] for n, col in zip(names, values) if col[i] is not None} for i in range(rows)]
            yield from map(Document, ids, texts, sources, metas)


def shard_paths(folder: Path | str) -> list[Path]:
    """The shards of a corpus folder, in manifest order when there is a manifest."""
    return [path for path, _ in shard_entries(folder)]


def shard_entries(folder: Path | str) -> list[tuple[Path, dict]]:
    """Each shard of a corpus folder with its manifest.json entry (file, documents, bytes, sha256),
    in manifest order; without a manifest, the `shard-*.arrow` files with empty entries (nothing
    to check them against)."""
    folder = Path(folder)
    manifest = folder / "manifest.json"
    if manifest.exists():
        return [(folder / entry["file"], entry) for entry in manifest_shards(manifest)]
    if (folder / WORK).is_dir():
        # A run folder with no manifest: a run still going, or killed before it finished (its
        # finalise may have renamed some parts to shard-*.arrow already). Its shards are a part of
        # the corpus that would pass for all of it.
        raise UserError(f"{folder}: a `pipeline run {folder.name}` began here and has not finished (no "
                        f"manifest.json); run it again to finish it, then read the corpus")
    return [(path, {}) for path in sorted(folder.glob("shard-*.arrow"))]


def shard_problem(path: Path, entry: dict, sha256: bool = True) -> str | None:
    """What is wrong with one shard against its manifest entry, or None when it matches. The
    size is a stat; the sha256 (skipped when `sha256` is False) is one read of the whole file."""
    if not path.is_file():
        return f"{path}: listed in manifest.json but missing"
    size = path.stat().st_size
    if "bytes" in entry and size != entry["bytes"]:
        return f"{path}: {size} bytes, manifest.json says {entry['bytes']} (truncated or replaced)"
    if sha256 and "sha256" in entry and file_sha256(path) != entry["sha256"]:
        return f"{path}: sha256 does not match manifest.json (corrupt shard)"
    return None


def _refuse(problems: Iterable[str | None]) -> None:
    """The first problem, if any, as the one line a command ends with."""
    for problem in problems:
        if problem is not None:
            raise UserError(f"{problem}; `pipeline verify` lists every damaged shard")


def verified_shard_paths(folder: Path | str, threads: int = HASH_THREADS) -> list[Path]:
    """`shard_paths(folder)`, every shard first checked against manifest.json: all sizes (a stat
    each), then all sha256s, `threads` shards at a time (hashlib hashes without the GIL, so the
    cost is one read of the source's shards at the disk's speed or `threads` cores' hashing
    speed, whichever is slower). The first damaged shard, in manifest order, is a UserError."""
    entries = shard_entries(folder)
    _refuse(shard_problem(path, entry, sha256=False) for path, entry in entries)
    pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="sha256")
    try:
        _refuse(pool.map(lambda item: shard_problem(*item), [e for e in entries if "sha256" in e[1]]))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # after a problem: no more hashing
    return [path for path, _ in entries]


def read_corpus(folder: Path | str) -> Iterator[Document]:
    """Documents of a corpus folder. Every size is checked first (a stat a shard), and each shard's
    sha256 just before its documents are read: the read that hashes a shard leaves it in the page
    cache for the read that follows, so the check costs hashing time, not a second disk read."""
    entries = shard_entries(folder)
    _refuse(shard_problem(path, entry, sha256=False) for path, entry in entries)
    for path, entry in entries:
        _refuse([shard_problem(path, entry)])
        try:
            yield from iter_shard(path)
        except (OSError, pa.ArrowException) as e:  # no manifest to check it against: Arrow finds the damage
            raise unreadable_shard(path, e) from None


def unreadable_shard(path: Path, error: Exception) -> UserError:
    """The one line for a shard Arrow cannot read: pyarrow's errors do not name the file."""
    return UserError(f"{path}: unreadable corpus shard ({error})")


def record_batches(path: Path) -> Iterator[pa.RecordBatch]:
    """The record batches of one shard, memory-mapped; a shard Arrow cannot read is one line naming it."""
    try:
        with pa.memory_map(str(path)) as source:
            yield from pa.ipc.open_stream(source)
    except (OSError, pa.ArrowException) as e:
        raise unreadable_shard(path, e) from None


def count_rows(path: Path) -> int:
    with pa.memory_map(str(path)) as source:
        return sum(b.num_rows for b in pa.ipc.open_stream(source))


@dataclass(frozen=True)
class CorpusSize:
    documents: int
    text_bytes: int  # UTF-8 bytes of the text column, the unit the tokenizer sample is drawn in


def string_offsets(array: pa.Array) -> np.ndarray:
    """The offsets of a string column's values (length + 1), read without touching the text."""
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=width)
    return offsets[array.offset:array.offset + len(array) + 1].astype(np.int64)


def string_bytes(array: pa.Array) -> int:
    """UTF-8 bytes held by a string column."""
    if len(array) == 0:
        return 0
    offsets = string_offsets(array)
    return int(offsets[-1] - offsets[0])


def corpus_size(folder: Path) -> CorpusSize | None:
    """Documents and text bytes of a source's corpus shards; None when there are none.

    Reads only the Arrow metadata and the text column's offsets through a memory map, so it
    costs a few pages per record batch, not a pass over the text; each shard's size is checked
    against manifest.json (a stat), its sha256 is not (that would be a pass over the text).
    """
    entries = shard_entries(folder) if folder.is_dir() else []
    if not entries:
        return None
    _refuse(shard_problem(path, entry, sha256=False) for path, entry in entries)
    paths = [path for path, _ in entries]
    sizes = [shard_text_size(path) for path in paths]
    return CorpusSize(sum(d for d, _ in sizes), sum(b for _, b in sizes))


def shard_text_size(path: Path) -> tuple[int, int]:
    """(documents, UTF-8 bytes of text) of one corpus shard, from its offsets only."""
    documents = text_bytes = 0
    try:
        with pa.memory_map(str(path)) as source:
            for batch in pa.ipc.open_stream(source):
                documents += batch.num_rows
                text_bytes += string_bytes(batch.column("text"))
    except (OSError, pa.ArrowException) as e:
        raise unreadable_shard(path, e) from None
    return documents, text_bytes


def repeated_ids(paths: list[Path]) -> list[str]:
    """Ids that more than one document of these shards carries (sorted; empty when every id is
    unique); see `repeated_id_rows`."""
    return sorted({doc_id for doc_id, _, _ in repeated_id_rows(paths)})


def repeated_id_rows(paths: list[Path]) -> list[tuple[str, int, int]]:
    """(id, index of its shard in `paths`, row in that shard) of every document whose id another
    document of these shards carries too, in shard and row order.

    Memory is 8 bytes per document whatever the ids' length (a full C4 run: 365M ids, 3 GB of
    hashes against 10 GB of strings): every id is reduced to a 64-bit hash over the
    memory-mapped id column, the hashes are sorted in place, and only the ids whose hash repeats
    are read again and compared as strings, so a hash collision costs a second look, never a
    false report."""
    hashes = np.empty(sum(map(count_rows, paths)), dtype=np.uint64)
    filled = 0
    for _, ids in _id_columns(paths):
        hashes[filled:filled + len(ids)] = id_hashes(ids)
        filled += len(ids)
    hashes.sort()
    candidates = distinct(hashes[1:][hashes[1:] == hashes[:-1]])
    del hashes
    if not candidates.size:
        return []
    found: list[tuple[str, int, int]] = []
    rows_before = [0] * len(paths)  # rows of earlier batches of the same shard
    for index, ids in _id_columns(paths):
        rows = np.flatnonzero(find(id_hashes(ids), candidates)[0])
        found.extend((ids[int(row)].as_py(), index, rows_before[index] + int(row)) for row in rows)
        rows_before[index] += len(ids)
    counts = Counter(doc_id for doc_id, _, _ in found)
    return [row for row in found if counts[row[0]] > 1]


ID_ROWS_JOINED = 1 << 16


def _id_columns(paths: list[Path]) -> Iterator[tuple[int, pa.Array]]:
    """(index of the shard in `paths`, id column) of runs of its record batches, in order: a
    shard's batches joined up to ID_ROWS_JOINED ids, so that hashing them costs numpy's per-call
    overhead once per 64k ids, not once per batch of a thousand (a third of the check)."""
    for index, path in enumerate(paths):
        pending: list[pa.Array] = []
        held = 0
        with pa.memory_map(str(path)) as source:
            for batch in pa.ipc.open_stream(source):
                pending.append(batch.column("id"))
                held += batch.num_rows
                if held >= ID_ROWS_JOINED:
                    yield index, pa.concat_arrays(pending)
                    pending, held = [], 0
        if pending:
            yield index, pa.concat_arrays(pending)


_ID_WEIGHT_SEED = 20230224  # any fixed number: hashes only ever meet hashes of the same run
_id_weights = np.empty(0, dtype=np.uint64)


def _weights(count: int) -> np.ndarray:
    """SplitMix64's outputs 1..count from the seed: the i-th weight depends on i alone, so a longer
    table begins with the shorter one. Made by numpy arithmetic, not `np.random`, whose import is
    a tenth of a small run's fixed cost."""
    z = np.arange(1, count + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(_ID_WEIGHT_SEED)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)  # uint64 arithmetic wraps, as wanted
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


# Ids that still have a byte at a position, at the least, for that position to be summed across
# them in one gather: below it, a call's fixed cost (some 15 µs) outweighs the bytes' own.
COLUMN_IDS = 2048


def id_hashes(ids: pa.Array) -> np.ndarray:
    """A 64-bit hash of every string of `ids` (a string array), computed over Arrow's buffers by
    numpy, without a Python object per id: the sum of each byte times a fixed random weight for
    its position in the string, plus the length times one more weight. Equal strings hash equal
    wherever they sit; two different ones collide with probability at most 2^-56.

    Position by position while COLUMN_IDS or more ids have a byte there (a run's ids are mostly
    of like length): one gather of that byte of each, at under half the cost per byte of the
    way the rest is summed, each byte with its position in its id worked out."""
    global _id_weights
    offsets = string_offsets(ids)
    lengths = np.diff(offsets)
    longest = int(lengths.max(initial=0))
    if len(_id_weights) < longest + 1:  # a longer table of the same weights
        _id_weights = _weights(max(2 * longest, 256) + 1)
    first, last = int(offsets[0]), int(offsets[-1])
    data = ids.buffers()[2]
    body = np.frombuffer(data, dtype=np.uint8)[first:last] if data is not None else np.empty(0, dtype=np.uint8)
    starts = offsets[:-1] - first
    sums = np.zeros(len(ids), dtype=np.uint64)  # uint64 arithmetic wraps, as wanted
    shared = int(lengths.min()) if len(ids) >= COLUMN_IDS else 0  # positions every id has a byte at
    for position in range(shared):
        sums += body[starts + position].astype(np.uint64) * _id_weights[1 + position]
    position = shared  # every id's bytes before it are summed
    live = np.flatnonzero(lengths > position)  # ids with a byte at `position`
    while len(live) >= COLUMN_IDS:
        sums[live] += body[starts[live] + position].astype(np.uint64) * _id_weights[1 + position]
        position += 1
        live = live[lengths[live] > position]
    if len(live):  # the rest of each id still live, from `position` on: one segment each
        rest_lengths = lengths[live] - position
        if position == 0:  # the whole body, whose non-empty strings are the live ones
            rest_starts, rest = starts[live], body
        else:
            rest_starts = np.cumsum(rest_lengths) - rest_lengths
            count = int(rest_lengths.sum())
            rest = body[np.repeat(starts[live] + position - rest_starts, rest_lengths) + np.arange(count)]
        positions = np.arange(len(rest)) - np.repeat(rest_starts, rest_lengths)
        weighted = _id_weights[1 + position:][positions] * rest.astype(np.uint64)
        sums[live] += np.add.reduceat(weighted, rest_starts)
    return sums + lengths.astype(np.uint64) * _id_weights[0]
