"""Exact dedup as a global stage: the smallest id of each text wins across tasks."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

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
    assert isinstance(stage.winners.keys, np.memmap)
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
