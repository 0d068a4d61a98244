"""Near-duplicate detection: the word-overlap estimate and the deterministic survivor."""

from __future__ import annotations

import random

import pytest

import datasketch.lsh

from pipeline.dedup import near
from pipeline.dedup.near import Signer, choose_survivors, word_overlap
from sources.samples.books import book_text, change_words, share_paragraphs


@pytest.mark.slow
def test_overlap_estimate_separates_near_duplicates_from_half_copies() -> None:
    rng = random.Random(11)
    signer = Signer()
    a = book_text(rng, 10000)
    sa = signer.sign(a)
    assert word_overlap(sa, signer.sign(a)) == 1.0
    assert word_overlap(sa, signer.sign(change_words(a, 0.05, rng))) > 0.9
    assert word_overlap(sa, signer.sign(share_paragraphs(a, 0.97, rng))) > 0.9
    assert word_overlap(sa, signer.sign(share_paragraphs(a, 0.5, rng))) < 0.65
    assert word_overlap(sa, signer.sign(change_words(a, 0.3, rng))) < 0.85
    assert word_overlap(sa, signer.sign(book_text(rng, 10000))) < 0.1


def test_survivor_is_the_longest_then_smallest_id() -> None:
    rng = random.Random(5)
    signer = Signer()
    a = book_text(rng, 4000)
    longer = a + "\n\n" + book_text(rng, 100)
    texts = {"b/2": a, "a/9": a, "c/1": longer, "d/0": book_text(rng, 4000), "e/short": "too short"}
    ids = sorted(texts)
    dropped = choose_survivors(ids, [signer.sign(texts[i]) for i in ids])
    assert dropped == {"a/9": "c/1", "b/2": "c/1"}


def test_merge_reads_each_partial_file_once_whatever_its_number_of_books(tmp_path, monkeypatch) -> None:
    """Memory of the merge grows with the books, not with their square: every signature of one
    partial file is a view of one array read once (reading it per book kept a copy per book)."""
    from pipeline.dedup import near
    from pipeline.engine.document import Document

    stage = near.NearDedup()
    stage.setup()
    rng = random.Random(3)
    partials = []
    for n in range(2):
        docs = [Document(f"b{n}-{i}", book_text(rng, 300), "books", {}) for i in range(5)]
        partials.append(tmp_path / f"partial{n}")
        stage.collect(docs, partials[-1])
    seen: list = []
    monkeypatch.setattr(near, "choose_survivors", lambda ids, signatures, threshold: seen.extend(signatures) or {})
    (tmp_path / "artefact").mkdir()
    stage.merge(partials, tmp_path / "artefact")
    assert len(seen) == 10
    assert len({id(s.minhashes.base) for s in seen}) == 2


def test_the_lsh_bands_are_datasketchs_own_choice_made_once_per_process(monkeypatch) -> None:
    """datasketch picks (bands, rows) by numerical integration, 0.4 s for 512 bins: the choice is
    the same for every index, so it is made once, and it is the one datasketch makes."""
    fresh = datasketch.lsh.MinHashLSH(threshold=near.CANDIDATE_JACCARD, num_perm=near.NUM_PERM)
    near.lsh_bands.cache_clear()
    calls = []
    optimal = datasketch.lsh._optimal_param
    monkeypatch.setattr(datasketch.lsh, "_optimal_param", lambda *a, **k: calls.append(a) or optimal(*a, **k))
    rng = random.Random(3)
    signer = Signer()
    text = book_text(rng, 2000)
    for _ in range(3):
        assert choose_survivors(["a", "b"], [signer.sign(text), signer.sign(text)]) == {"b": "a"}
    assert len(calls) == 1
    assert near.lsh_bands(near.CANDIDATE_JACCARD, near.NUM_PERM) == (fresh.b, fresh.r)
