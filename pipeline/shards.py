"""Arrow IPC streaming shards: the corpus contract between sources and everything after.

Every shard has the columns id, text, source, then the typed metadata columns of its
source and stages. Writers never leave a partial file under a final name: a shard is
written as `<name>.tmp` and renamed once closed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from operator import attrgetter
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from pipeline.document import Document
from pipeline.errors import OUT_OF_SPACE

BASE_FIELDS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
]
BASE_NAMES = {f.name for f in BASE_FIELDS}


def build_schema(meta_fields: list[pa.Field]) -> pa.Schema:
    """The base columns followed by metadata columns, first declaration of a name winning."""
    fields = list(BASE_FIELDS)
    seen = set(BASE_NAMES)
    for f in meta_fields:
        if f.name not in seen:
            fields.append(f)
            seen.add(f.name)
    return pa.schema(fields)


_get_id, _get_text, _get_source = attrgetter("id"), attrgetter("text"), attrgetter("source")

def with_path(error: OSError, path: Path | str) -> OSError:
    """`error` naming the file it concerns. pyarrow, file objects and numpy raise write errors
    without a file name; the one line a command prints must say which file it was."""
    if error.filename is not None or error.errno is None:
        return error
    named = OSError(error.errno, os.strerror(error.errno), str(path))
    named.__cause__ = error
    return named


class ShardWriter:
    """Writes documents into `prefix-NNNNN.arrow` files in `folder`, rolling at `max_bytes`.

    Documents are buffered into record batches of `batch_rows` rows. `close()` returns the
    paths written, in order. Metadata keys not in the schema are an error, not silently lost.
    """

    def __init__(
        self,
        folder: Path,
        schema: pa.Schema,
        prefix: str = "part",
        max_bytes: int = 256 << 20,
        batch_rows: int = 1024,
    ) -> None:
        self.folder = Path(folder)
        self.schema = schema
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.batch_rows = batch_rows
        self.meta_names = [f.name for f in schema][len(BASE_FIELDS):]
        self.meta_name_set = set(self.meta_names)
        self.paths: list[Path] = []
        self.info: list[dict] = []  # per closed shard: file, documents, bytes, sha256
        self._buffer: list[Document] = []
        self._hasher: _FileHasher | None = None
        self._rows_in_shard = 0
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._sink: Any = None
        self._bytes_in_shard = 0

    def write(self, doc: Document) -> None:
        self._buffer.append(doc)
        if len(self._buffer) >= self.batch_rows:
            self._flush()

    def write_many(self, docs: list[Document]) -> None:
        self._buffer.extend(docs)
        if len(self._buffer) >= self.batch_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        docs, self._buffer = self._buffer, []
        known = self.meta_name_set
        for doc in docs:
            if doc.meta and not known.issuperset(doc.meta):
                unknown = sorted(set(doc.meta) - known)
                raise ValueError(f"document {doc.id}: metadata {unknown} not declared in the schema")
        columns = [
            pa.array(list(map(_get_id, docs)), pa.string()),
            pa.array(list(map(_get_text, docs)), pa.string()),
            pa.array(list(map(_get_source, docs)), pa.string()),
        ]
        for name in self.meta_names:
            columns.append(pa.array([d.meta.get(name) for d in docs], self.schema.field(name).type))
        batch = pa.RecordBatch.from_arrays(columns, schema=self.schema)
        try:
            if self._writer is None:
                self._open()
            assert self._writer is not None
            self._writer.write_batch(batch)
        except OSError as e:
            raise with_path(e, self._final_path()) from e
        self._hasher.advance(self._sink.tell())  # type: ignore[union-attr]
        self._rows_in_shard += batch.num_rows
        self._bytes_in_shard += batch.nbytes
        if self._bytes_in_shard >= self.max_bytes:
            self._close_shard()

    def _final_path(self) -> Path:
        return self.folder / f"{self.prefix}-{len(self.paths):05d}.arrow"

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = str(self._final_path()) + ".tmp"
        self._sink = pa.OSFile(tmp, "wb")
        self._writer = pa.ipc.new_stream(self._sink, self.schema)
        self._hasher = _FileHasher(tmp)
        self._bytes_in_shard = 0
        self._rows_in_shard = 0

    def _close_shard(self) -> None:
        assert self._writer is not None
        try:
            self._writer.close()
            size = self._sink.tell()
            self._sink.close()
        except OSError as e:
            raise with_path(e, self._final_path()) from e
        assert self._hasher is not None
        digest = self._hasher.finish(size)
        final = self._final_path()
        os.replace(str(final) + ".tmp", final)
        self.paths.append(final)
        self.info.append({"file": final.name, "documents": self._rows_in_shard, "bytes": size, "sha256": digest})
        self._writer = None

    def close(self) -> list[Path]:
        self._flush()
        if self._writer is not None:
            self._close_shard()
        return self.paths

    def abort(self) -> None:
        """Drop the shard being written, leaving only completed ones."""
        if self._writer is not None:
            try:
                # After a failed write (disk full) closing fails again: it must not hide that
                # error nor keep the temporary file.
                with contextlib.suppress(OSError):
                    self._writer.close()
                with contextlib.suppress(OSError):
                    self._sink.close()
                if self._hasher is not None:
                    self._hasher.finish(0)
            finally:
                Path(str(self._final_path()) + ".tmp").unlink(missing_ok=True)
                self._writer = None


class _FileHasher:
    """SHA-256 of a file while it is being written, on a background thread.

    The writer reports how far the file has been flushed; the thread reads and hashes up to
    there (hashlib releases the GIL), so the checksum costs almost no time on the writer's
    thread instead of a second full read at the end.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.digest = hashlib.sha256()
        self.target = 0
        self.closing = False
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def advance(self, size: int) -> None:
        with self.cond:
            self.target = size
            self.cond.notify()

    def finish(self, size: int) -> str:
        with self.cond:
            self.target = max(self.target, size)
            self.closing = True
            self.cond.notify()
        self.thread.join()
        return self.digest.hexdigest()

    def _run(self) -> None:
        done = 0
        with open(self.path, "rb") as f:
            while True:
                with self.cond:
                    while self.target <= done and not self.closing:
                        self.cond.wait()
                    target, closing = self.target, self.closing
                while done < target:
                    block = f.read(min(target - done, 8 << 20))
                    if not block:
                        break
                    self.digest.update(block)
                    done += len(block)
                if closing and done >= target:
                    return


def iter_shard(path: Path | str) -> Iterator[Document]:
    """Documents of one shard, in order."""
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_stream(source)
        meta_names = [f.name for f in reader.schema if f.name not in BASE_NAMES]
        for batch in reader:
            ids = batch.column("id").to_pylist()
            texts = batch.column("text").to_pylist()
            sources = batch.column("source").to_pylist()
            metas = [batch.column(n).to_pylist() for n in meta_names]
            for i in range(batch.num_rows):
                meta = {n: col[i] for n, col in zip(meta_names, metas) if col[i] is not None}
                yield Document(ids[i], texts[i], sources[i], meta)


def shard_paths(folder: Path | str) -> list[Path]:
    """The shards of a corpus folder, in manifest order when there is a manifest."""
    folder = Path(folder)
    manifest = folder / "manifest.json"
    if manifest.exists():
        return [folder / s["file"] for s in json.loads(manifest.read_text())["shards"]]
    return sorted(folder.glob("shard-*.arrow"))


def read_corpus(folder: Path | str) -> Iterator[Document]:
    for path in shard_paths(folder):
        yield from iter_shard(path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def count_rows(path: Path) -> int:
    with pa.memory_map(str(path)) as source:
        return sum(b.num_rows for b in pa.ipc.open_stream(source))
