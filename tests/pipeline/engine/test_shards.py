"""The shard contract: Arrow IPC streams other tools load, atomically written, typed columns."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pytest

from pipeline.common.errors import UserError
from pipeline.engine.document import Document
from pipeline.engine import shards
from pipeline.engine.shards import (
    ShardWriter, build_schema, id_hashes, iter_shard, repeated_id_rows, repeated_ids, text_column,
)
from tests.pipeline.engine.fixtures import run, write_inputs


def test_engine_shard_loads_with_datasets_and_pyarrow(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in", files=2)
    run(tmp_path / "in", tmp_path / "out", workers=1)
    shard = tmp_path / "out" / "numbers" / "shard-00000.arrow"
    table = pa.ipc.open_stream(pa.OSFile(str(shard))).read_all()
    assert table.schema.names == ["id", "text", "source", "url", "number", "words", "score"]
    assert table.schema.field("number").type == pa.int64()
    assert table.schema.field("score").type == pa.float32()
    ds = datasets.Dataset.from_file(str(shard))
    assert ds.num_rows == table.num_rows > 0
    first = ds[0]
    assert first["id"] == "f0-1" and first["source"] == "numbers" and first["number"] == 1
    assert first["words"] == 160 and first["score"] == 0.25


def test_writer_rolls_over_and_leaves_no_partial_file(tmp_path: Path) -> None:
    schema = build_schema([pa.field("n", pa.int32())])
    writer = ShardWriter(tmp_path, schema, "shard", max_bytes=10_000, batch_rows=10)
    for i in range(200):
        writer.write(Document(str(i), "x" * 100, "t", {"n": i}))
    paths = writer.close()
    assert len(paths) >= 2
    assert not list(tmp_path.glob("*.tmp"))
    ids = [d.id for p in paths for d in iter_shard(p)]
    assert ids == [str(i) for i in range(200)]


def test_aborted_writer_keeps_only_finished_shards(tmp_path: Path) -> None:
    schema = build_schema([])
    writer = ShardWriter(tmp_path, schema, "shard", max_bytes=5_000, batch_rows=10)
    for i in range(95):
        writer.write(Document(str(i), "y" * 100, "t"))
    writer.abort()
    finished = sorted(tmp_path.glob("shard-*.arrow"))
    assert not list(tmp_path.glob("*.tmp"))
    for p in finished:
        list(iter_shard(p))  # every file under a final name is complete


def test_a_run_folder_without_its_manifest_is_refused_and_hand_made_shards_are_read(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in", files=2)
    report = run(tmp_path / "in", tmp_path / "out", workers=1)
    folder = tmp_path / "out" / "numbers"
    finished = list(shards.read_corpus(folder))
    assert len(finished) == report.documents_kept > 0
    # A finalise killed before its manifest: the shards renamed so far are part of the corpus.
    (folder / "manifest.json").unlink()
    expected = (f"{folder}: a `pipeline run numbers` began here and has not finished (no manifest.json); run it "
                "again to finish it, then read the corpus")
    for read in (shards.shard_paths, lambda f: list(shards.read_corpus(f)), shards.verified_shard_paths):
        with pytest.raises(UserError) as error:
            read(folder)
        assert str(error.value) == expected
    # Shards written by hand (no run folder): read as they are, in name order.
    hand_made = tmp_path / "hand-made"
    hand_made.mkdir()
    for path in sorted(folder.glob("shard-*.arrow")):
        (hand_made / path.name).write_bytes(path.read_bytes())
    assert [d.id for d in shards.read_corpus(hand_made)] == [d.id for d in finished]


def test_undeclared_metadata_is_an_error(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path, build_schema([]), batch_rows=1)
    with pytest.raises(ValueError, match="not declared"):
        writer.write(Document("a", "b", "c", {"surprise": 1}))


def test_writer_reports_rows_sizes_and_checksums_of_what_it_wrote(tmp_path: Path) -> None:
    from pipeline.common.files import file_sha256
    from pipeline.engine.shards import count_rows

    writer = ShardWriter(tmp_path, build_schema([]), "shard", max_bytes=50_000, batch_rows=7)
    for i in range(1000):
        writer.write(Document(str(i), "z" * (i % 300), "t"))
    paths = writer.close()
    assert [i["file"] for i in writer.info] == [p.name for p in paths]
    for path, info in zip(paths, writer.info):
        assert info["sha256"] == file_sha256(path)
        assert info["bytes"] == path.stat().st_size
        assert info["documents"] == count_rows(path)
    assert sum(i["documents"] for i in writer.info) == 1000


@pytest.mark.parametrize("threaded", [True, False])
def test_shard_bytes_are_exactly_what_pyarrows_stream_writer_writes(tmp_path: Path, monkeypatch,
                                                                     threaded: bool) -> None:
    """Written on a thread of their own or by the loop itself: the same bytes, and the sha256
    recorded is the file's."""
    import hashlib

    import pipeline.engine.hashing_file

    monkeypatch.setattr(pipeline.engine.hashing_file.HashingFile, "STEP", 3_000)  # many hand-overs
    monkeypatch.setattr(pipeline.engine.hashing_file, "_background_writes", threaded)
    schema = build_schema([pa.field("n", pa.int32()), pa.field("tag", pa.string())])
    writer = ShardWriter(tmp_path, schema, "shard", batch_rows=16)
    for i in range(500):
        writer.write(Document(str(i), "w" * (i % 97), "t", {"n": i} if i % 3 else {"tag": "x"}))
    [path] = writer.close()
    assert writer.info[0]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    with pa.memory_map(str(path)) as source:
        batches = list(pa.ipc.open_stream(source))
    reference = pa.BufferOutputStream()
    with pa.ipc.new_stream(reference, schema) as stream:
        for batch in batches:
            stream.write_batch(batch)
    assert len(batches) == 32
    assert path.read_bytes() == reference.getvalue().to_pybytes()


def test_documents_read_back_carry_exactly_their_non_null_fields_in_schema_order(tmp_path: Path) -> None:
    """Batches where every field is set, where a field is null in every row (a later pass's),
    and where a field is set in some rows only: each document comes back with the fields it was
    written with, no null ones, keys in the schema's order."""
    schema = build_schema([pa.field("a", pa.int64()), pa.field("later", pa.float32()),
                           pa.field("b", pa.string()), pa.field("some", pa.bool_())])
    docs = []
    for i in range(40):
        meta = {"b": f"b{i}", "a": i}  # inserted out of schema order
        if i >= 20 and i % 3 == 0:  # the second batch: `some` in a third of its rows
            meta["some"] = i % 2 == 0
        docs.append(Document(str(i), f"text {i}", "t", meta))
    writer = ShardWriter(tmp_path, schema, "shard", batch_rows=20)
    writer.write_many(docs)
    [path] = writer.close()
    back = list(iter_shard(path))
    assert [(d.id, d.text, d.source) for d in back] == [(d.id, d.text, d.source) for d in docs]
    for doc, original in zip(back, docs):
        expected = [(k, original.meta[k]) for k in ("a", "later", "b", "some") if k in original.meta]
        assert list(doc.meta.items()) == expected


@pytest.mark.parametrize("threaded", [True, False])
def test_a_failed_write_names_the_shard_and_leaves_no_file(tmp_path: Path, monkeypatch, threaded: bool) -> None:
    import errno

    import pipeline.engine.hashing_file

    def disk_full(fd: int, buffers: list) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline.engine.hashing_file.HashingFile, "STEP", 1)
    monkeypatch.setattr(pipeline.engine.hashing_file, "_write_all", disk_full)
    monkeypatch.setattr(pipeline.engine.hashing_file, "_background_writes", threaded)
    writer = ShardWriter(tmp_path, build_schema([]), "shard", batch_rows=1)
    with pytest.raises(OSError) as failure:
        for i in range(1000):  # the error surfaces at a later write, or at close
            writer.write(Document(str(i), "v" * 100, "t"))
        writer.close()
    assert failure.value.errno == errno.ENOSPC
    assert failure.value.filename == str(tmp_path / "shard-00000.arrow")
    writer.abort()  # after the failure: returns, and removes the temporary file
    assert list(tmp_path.iterdir()) == []


def write_id_shards(folder: Path, id_lists: list[list[str]]) -> list[Path]:
    """One shard per list, in batches of 3 rows so ids sit at every offset of a batch."""
    paths = []
    for index, ids in enumerate(id_lists):
        writer = ShardWriter(folder / f"s{index}", build_schema([]), "shard", batch_rows=3)
        for doc_id in ids:
            writer.write(Document(doc_id, "text", "t"))
        paths += writer.close()
    return paths


@pytest.mark.parametrize("joined", [1, 4, shards.ID_ROWS_JOINED])  # batches of 3 hashed one by one, or joined
def test_repeated_ids_are_found_across_shards_and_batches(tmp_path: Path, monkeypatch, joined: int) -> None:
    monkeypatch.setattr(shards, "ID_ROWS_JOINED", joined)
    paths = write_id_shards(tmp_path, [["a", "b", "", "ünï", "c", "long-" * 50], ["d", "b", "ünï", "e"], ["", "f"]])
    assert repeated_ids(paths) == ["", "b", "ünï"]  # the empty id counts like any other
    assert repeated_ids(paths[1:2]) == []
    assert repeated_ids([]) == []
    # Where each copy is: (id, shard, row), rows counted across the shard's batches of 3.
    assert repeated_id_rows(paths) == [("b", 0, 1), ("", 0, 2), ("ünï", 0, 3), ("b", 1, 1), ("ünï", 1, 2),
                                       ("", 2, 0)]


def test_a_hash_collision_is_never_reported_as_a_repeated_id(tmp_path: Path, monkeypatch) -> None:
    paths = write_id_shards(tmp_path, [["a", "b", "c"], ["d", "a"]])
    monkeypatch.setattr(shards, "id_hashes", lambda ids: np.zeros(len(ids), dtype=np.uint64))  # all collide
    assert repeated_ids(paths) == ["a"]
    assert repeated_id_rows(paths) == [("a", 0, 0), ("a", 1, 1)]


def test_id_hashes_depend_on_the_string_only() -> None:
    words = [f"{prefix}{i}" for prefix in ("", "doc-", "ü/") for i in range(20_000)] + [""]
    whole = id_hashes(pa.array(words))
    assert len(set(whole.tolist())) == len(words)  # no collision among 60,001 distinct ids
    sliced = pa.array(["x", *words, "y"]).slice(1, len(words))  # an array with an offset
    assert np.array_equal(id_hashes(sliced), whole)
    assert np.array_equal(id_hashes(pa.array(list(reversed(words)))), whole[::-1])
    assert id_hashes(pa.array(["ab"]))[0] != id_hashes(pa.array(["ba"]))[0]  # positions are weighed


def test_an_ids_hash_is_the_same_however_its_array_is_summed() -> None:
    """A large array is summed position by position while enough ids reach a position, the rest
    byte by byte; a one-id array byte by byte only. An id repeated in two chunks must hash the
    same either way, and as the documented sum says (computed here in plain Python)."""
    weights = [int(w) for w in shards._weights(3001)]

    def documented(doc_id: str) -> int:
        data = doc_id.encode("utf-8")
        return (sum(byte * weights[1 + k] for k, byte in enumerate(data)) + len(data) * weights[0]) % (1 << 64)

    ids = [f"doc-{i}" for i in range(shards.COLUMN_IDS + 500)] + ["ü" * n for n in range(1, 40)] + ["x" * 3000]
    # Without an empty id every id shares its first 2 bytes (one "ü"); with one, none are shared.
    for chunk in (ids, ids[:7] + [""] + ids[7:]):
        whole = id_hashes(pa.array(chunk)).tolist()
        assert [id_hashes(pa.array([doc_id]))[0] for doc_id in chunk[::97]] == whole[::97]
        assert [whole[chunk.index(doc_id)] for doc_id in ("doc-2047", "üüü", "x" * 3000)] == \
            [documented(doc_id) for doc_id in ("doc-2047", "üüü", "x" * 3000)]
    assert id_hashes(pa.array([""]))[0] == documented("") == 0


def test_batches_of_long_documents_end_at_a_character_bound_whatever_the_chunks(tmp_path: Path) -> None:
    """1,024 books would be half a gigabyte in one record batch: a batch also ends at the document
    whose text reaches `batch_chars`, cut by the documents alone, so a task written in other
    chunks (a retried one) writes the same bytes."""
    docs = [Document(str(i), "b" * (1000 + i % 7), "t") for i in range(103)]

    def written(folder: Path, chunks: list[int]) -> tuple[bytes, list[int]]:
        writer = ShardWriter(folder, build_schema([]), "shard", batch_rows=10, batch_chars=3500)
        start = 0
        for size in chunks:
            writer.write_many(docs[start:start + size])
            start += size
        for doc in docs[start:]:
            writer.write(doc)
        [path] = writer.close()
        with pa.memory_map(str(path)) as source:
            rows = [batch.num_rows for batch in pa.ipc.open_stream(source)]
        return path.read_bytes(), rows

    one_by_one, rows = written(tmp_path / "a", [])
    assert rows == [4] * 25 + [3]  # the 4th document of each batch passes 3,500 characters
    assert written(tmp_path / "b", [103])[0] == one_by_one
    assert written(tmp_path / "c", [1, 50, 7, 30])[0] == one_by_one
    short = [Document(str(i), "s" * 10, "t") for i in range(25)]  # the row bound as before
    writer = ShardWriter(tmp_path / "d", build_schema([]), "shard", batch_rows=10, batch_chars=3500)
    writer.write_many(short)
    [path] = writer.close()
    with pa.memory_map(str(path)) as source:
        assert [batch.num_rows for batch in pa.ipc.open_stream(source)] == [10, 10, 5]
    # Short documents in any chunks, then long ones after them: the same bytes as one at a time.
    mixed = short + docs[:12]
    writer = ShardWriter(tmp_path / "e", build_schema([]), "shard", batch_rows=10, batch_chars=3500)
    for doc in mixed:
        writer.write(doc)
    [alone] = writer.close()
    for name, chunks in [("f", [3, 9, 13, 12]), ("g", [20, 17]), ("h", [37])]:
        writer = ShardWriter(tmp_path / name, build_schema([]), "shard", batch_rows=10, batch_chars=3500)
        start = 0
        for size in chunks:
            writer.write_many(mixed[start:start + size])
            start += size
        [path] = writer.close()
        assert path.read_bytes() == alone.read_bytes(), chunks
    with pa.memory_map(str(alone)) as source:
        # 5 short ones (50 characters) and 4 long pass 3,500 characters; then 4 long and 4 long
        assert [batch.num_rows for batch in pa.ipc.open_stream(source)] == [10, 10, 9, 4, 4]


BOOKS_WRITER = """
import resource, sys, tempfile
from pathlib import Path
from pipeline.engine.document import Document
from pipeline.engine.shards import ShardWriter, build_schema, skip_pandas_probe
skip_pandas_probe()  # as a worker does before its first document
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
line = "a line of a book's prose. " * 16000  # 400 KB
with tempfile.TemporaryDirectory() as folder:
    writer = ShardWriter(Path(folder), build_schema([]), "part")
    for start in range(0, 640, 32):  # the engine's chunks; each book a string of its own
        writer.write_many([Document(str(i), line + str(i), "books") for i in range(start, start + 32)])
    writer.close()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_a_task_of_books_holds_a_bounded_batch_not_1024_books(tmp_path: Path) -> None:
    """640 books of 400 KB (256 MB of text): the writer held them all until 1,024 rows made a batch,
    and their Arrow copy beside them (920 MB more resident, 140 MB with the bound); with the character bound a batch
    is about 16 MB."""
    import subprocess
    import sys

    from tests.conftest import subprocess_env

    done = subprocess.run([sys.executable, "-c", BOOKS_WRITER], env=subprocess_env(), capture_output=True,
                          text=True, timeout=300, cwd=Path(__file__).parents[3], check=True)
    assert int(done.stdout) < 200  # MB of growth: a few batches in flight, not the task's books


def test_only_a_file_with_a_checksum_gets_a_writer_thread(tmp_path: Path, monkeypatch) -> None:
    # A pass's parts (no checksum) are written by the loop itself: a thread would only move the
    # copy into the page cache, for more CPU in hand-overs than it saves.
    import threading

    import pipeline.engine.hashing_file
    from pipeline.engine.hashing_file import HashingFile

    monkeypatch.setattr(pipeline.engine.hashing_file, "_background_writes", True)
    hashed = HashingFile(str(tmp_path / "shard"), checksum=True)
    plain = HashingFile(str(tmp_path / "part"), checksum=False)
    writing = {thread.name for thread in threading.enumerate()}
    assert f"write {tmp_path / 'shard'}" in writing and f"write {tmp_path / 'part'}" not in writing
    for file in (hashed, plain):
        file.write(b"bytes")
        assert file.close()[0] == 5
    assert (tmp_path / "part").read_bytes() == b"bytes"


@pytest.mark.parametrize("sources", [["commoncrawl"] * 1024, ["wikipédia"] * 3, [""] * 4, ["books", "github"]])
def test_source_column_writes_the_bytes_a_converted_list_writes(tmp_path: Path, sources: list[str]) -> None:
    """One source name repeated is built from buffers, not converted row by row: the shard's
    bytes must be those of the plain pyarrow conversion of the same names."""
    schema = build_schema([])
    writer = ShardWriter(tmp_path / "ours", schema, "shard", batch_rows=len(sources))
    writer.write_many([Document(f"d{i}", f"text {i}", name) for i, name in enumerate(sources)])
    (ours,) = writer.close()
    batch = pa.RecordBatch.from_arrays(
        [pa.array([f"d{i}" for i in range(len(sources))]), pa.array([f"text {i}" for i in range(len(sources))]),
         pa.array(sources, pa.string())], schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as stream:
        stream.write_batch(batch)
    assert ours.read_bytes() == sink.getvalue().to_pybytes()
    assert pa.ipc.open_stream(ours.read_bytes()).read_all().column("source").to_pylist() == sources


@pytest.mark.parametrize("texts", [
    [""], ["plain", "", "accents é à", "日本語のテキスト", "emoji \U0001F600 and \u2019 quotes"], ["x" * 70_000] * 3,
])
def test_texts_are_stored_as_pyarrow_stores_them_byte_for_byte(texts: list[str]) -> None:
    built, expected = text_column(texts), pa.array(texts, pa.string())
    assert built.to_pylist() == texts
    assert [b.to_pybytes() if b is not None else None for b in built.buffers()] == \
        [b.to_pybytes() if b is not None else None for b in expected.buffers()]


def test_a_text_arrow_cannot_store_is_pyarrows_own_error() -> None:
    with pytest.raises(Exception) as expected:
        pa.array(["ok", "lone \ud800 surrogate"], pa.string())
    with pytest.raises(type(expected.value)):
        text_column(["ok", "lone \ud800 surrogate"])
