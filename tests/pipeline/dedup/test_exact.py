"""Exact dedup as a global stage: the smallest id of each text wins across tasks."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.dedup import exact
from pipeline.dedup.exact import ExactDedup
from pipeline.engine.document import Document


def _docs(*pairs: tuple[str, str]) -> list[Document]:
    return [Document(i, t, "x", {}) for i, t in pairs]


def test_collect_merge_load_process(tmp_path: Path) -> None:
    stage = ExactDedup()
    task0 = _docs(("b", "same"), ("c", "unique"))
    task1 = _docs(("a", "same"), ("d", "same"))
    stage.collect(iter(task0), tmp_path / "p0")
    stage.collect(iter(task1), tmp_path / "p1")
    (tmp_path / "art").mkdir()
    stage.merge([tmp_path / "p0", tmp_path / "p1"], tmp_path / "art")
    fresh = ExactDedup()
    fresh.load(tmp_path / "art")
    assert [fresh.process(d) if isinstance(fresh.process(d), str) else d.id for d in task0 + task1] == [
        "duplicate", "c", "a", "duplicate"]


def _run(tmp_path: Path, tasks: list[list[Document]]) -> ExactDedup:
    stage = ExactDedup()
    for number, docs in enumerate(tasks):
        stage.collect(iter(docs), tmp_path / f"p{number}")
    (tmp_path / "art").mkdir()
    stage.merge([tmp_path / f"p{number}" for number in range(len(tasks))], tmp_path / "art")
    fresh = ExactDedup()
    fresh.load(tmp_path / "art")
    return fresh


def test_winners_are_one_mapped_8_byte_key_per_distinct_text(tmp_path: Path) -> None:
    # Ids that sort differently as bytes of other encodings: the smallest code point order wins,
    # as Python's min over the ids of each text says.
    texts = ["alpha", "beta", "alpha", "gamma", "beta", "alpha"]
    ids = ["é1", "z2", "a3", "Ω4", "ü5", "b6"]
    docs = _docs(*zip(ids, texts))
    stage = _run(tmp_path, [docs[:2], docs[2:4], docs[4:]])
    expected = {text: min(i for i, t in zip(ids, texts) if t == text) for text in set(texts)}
    kept = [d.id for d in docs if not isinstance(stage.process(d), str)]
    assert sorted(kept) == sorted(expected.values()) == ["a3", "z2", "Ω4"]
    assert isinstance(stage.winners.keys.base, np.memmap)  # a view of the mapped file, not a copy
    assert stage.winners.keys.nbytes == 8 * len(expected)


def test_a_run_without_documents_keeps_nothing_and_does_not_fail(tmp_path: Path) -> None:
    stage = _run(tmp_path, [[], []])
    assert len(stage.winners.keys) == 0
    assert stage.process(Document("x", "text", "x", {})) == "duplicate"  # never seen in the hash pass


def test_runs_of_one_text_spanning_merge_slices_keep_their_smallest_id(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(exact, "MERGE_SLICE", 3)  # every run of copies crosses a slice boundary
    rng = random.Random(7)
    pairs = [(f"id{n:03d}", f"text {rng.randrange(9)}") for n in range(60)]
    rng.shuffle(pairs)
    docs = _docs(*pairs)
    stage = _run(tmp_path, [docs[:25], docs[25:26], docs[26:]])
    smallest = {text: min(i for i, t in pairs if t == text) for _, text in pairs}
    assert sorted(d.id for d in docs if not isinstance(stage.process(d), str)) == sorted(smallest.values())


def _pairs_kept(stage: ExactDedup, docs: list[Document]) -> list[str]:
    return sorted(d.id for d in docs if not isinstance(stage.process(d), str))


def test_a_merge_in_buckets_keeps_each_texts_smallest_id(tmp_path: Path, monkeypatch) -> None:
    # 4 pairs a bucket: 200 texts over three tasks make about a hundred buckets, each a slice of
    # every task's file.
    monkeypatch.setattr(exact, "BUCKET_PAIRS", 4)
    rng = random.Random(11)
    pairs = [(f"id{n:04d}", f"text {rng.randrange(200)}") for n in range(500)]
    rng.shuffle(pairs)
    docs = _docs(*pairs)
    tasks = [docs[:200], docs[200:201], docs[201:]]
    stage = _run(tmp_path, tasks)
    smallest = {text: min(i for i, t in pairs if t == text) for _, text in pairs}
    task_pairs = sum(len({d.text for d in task}) for task in tasks)  # each task writes one pair a text
    assert 2 ** (stage.winners.bits - 1) < task_pairs / 4 <= 2 ** stage.winners.bits  # the fewest buckets
    assert len(stage.winners.keys) == len(smallest)
    assert bool(np.all(stage.winners.keys[1:] >= stage.winners.keys[:-1]))  # one sorted array
    assert _pairs_kept(stage, docs) == sorted(smallest.values())


def test_a_task_file_written_unsorted_by_an_older_herd_is_sorted_before_its_buckets(tmp_path: Path,
                                                                                    monkeypatch) -> None:
    monkeypatch.setattr(exact, "BUCKET_PAIRS", 2)
    pairs = [(f"id{n:02d}", f"text {n % 7}") for n in range(30)]
    docs = _docs(*pairs)
    first: dict[bytes, str] = {}
    for doc in docs:
        exact.keep_smallest(first, exact.text_hash(doc.text), doc.id)
    # As the writer was before it sorted: the dict's own order.
    table = pa.table({"hash": pa.array(list(first), pa.binary(16)), "id": pa.array(list(first.values()))},
                     schema=exact.SCHEMA)
    with pa.OSFile(str(tmp_path / "old"), "wb") as sink, pa.ipc.new_file(sink, exact.SCHEMA) as writer:
        writer.write_table(table)
    (tmp_path / "art").mkdir()
    stage = ExactDedup()
    stage.merge([tmp_path / "old"], tmp_path / "art")
    stage.load(tmp_path / "art")
    assert stage.winners.bits > 0
    assert _pairs_kept(stage, docs) == sorted(min(i for i, t in pairs if t == text) for text in {t for _, t in pairs})


def test_winners_merged_before_buckets_are_read_as_one_bucket(tmp_path: Path) -> None:
    pairs = [(f"id{n:02d}", f"text {n % 5}") for n in range(20)]
    docs = _docs(*pairs)
    stage = _run(tmp_path, [docs[:10], docs[10:]])
    (tmp_path / "art" / "winners.json").unlink()  # as an older herd left its artefact
    again = ExactDedup()
    again.load(tmp_path / "art")
    assert again.winners.bits == 0
    assert _pairs_kept(again, docs) == _pairs_kept(stage, docs) == [f"id{n:02d}" for n in range(5)]


def test_buckets_merged_by_two_processes_are_the_same_winners(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(exact, "BUCKET_PAIRS", 8)
    rng = random.Random(5)
    pairs = [(f"id{n:04d}", f"text {rng.randrange(150)}") for n in range(400)]
    docs = _docs(*pairs)
    for number, task in enumerate([docs[:150], docs[150:]]):
        ExactDedup().collect(iter(task), tmp_path / f"p{number}")
    partials = [tmp_path / "p0", tmp_path / "p1"]
    one, two = tmp_path / "one.npy", tmp_path / "two.npy"
    texts = {t for _, t in pairs}
    assert exact.merge_first_ids(partials, one, processes=1) == exact.merge_first_ids(partials, two, processes=2) \
        == len(texts)
    assert one.read_bytes() == two.read_bytes()
    assert json.loads(two.with_suffix(".json").read_text())["bucket_bits"] > 0
    stage = ExactDedup()
    stage.winners = exact.Winners(two)
    assert _pairs_kept(stage, docs) == sorted(min(i for i, t in pairs if t == text) for text in texts)
