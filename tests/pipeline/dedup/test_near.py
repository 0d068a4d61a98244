"""Near-duplicate detection: the word-overlap estimate and the deterministic survivor."""

from __future__ import annotations

import random

import pytest

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
