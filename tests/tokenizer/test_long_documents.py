"""Long documents in bounded pieces (tokenizer/long_documents.py): cut at spaces, the tokens are
those of the whole document; only a run without a space is cut elsewhere."""

from __future__ import annotations

import random

import numpy as np
import pytest
import sentencepiece as spm

from tests.tokenizer.conftest import trained  # noqa: F401  (the session's small tokenizer)
from tests.tokenizer.corpus import TEST_SET, document_text
from tokenizer.long_documents import cut_points, encode_documents, encode_long
from tokenizer.train import TrainResult


def prose(documents: int = 200) -> str:
    rng = random.Random(7)
    english = [document_text(rng, language_mix=0.0) for _ in range(documents)]  # spaces every few characters
    return "\n".join(english) + "".join(t for t in TEST_SET if t.isascii()) * 3


@pytest.mark.parametrize("bound", [64, 101, 997, 5000])
def test_cuts_at_spaces_give_the_tokens_of_the_whole_document(trained: TrainResult, bound: int) -> None:  # noqa: F811
    processor = spm.SentencePieceProcessor(model_file=str(trained.model))
    text = prose()
    cuts = cut_points(text, bound)
    assert cuts and all(text[c] == " " and text[c - 1] != " " for c in cuts)  # every cut at a space
    starts = [0, *cuts, len(text)]
    assert max(b - a for a, b in zip(starts, starts[1:])) <= bound
    whole = np.array(processor.encode(text, add_bos=True, add_eos=True))
    assert np.array_equal(encode_long(processor, text, bound), whole)


def test_a_run_without_a_space_is_cut_at_the_bound_and_decodes_to_itself(trained: TrainResult) -> None:  # noqa: F811
    processor = spm.SentencePieceProcessor(model_file=str(trained.model))
    text = "word " * 150 + "x" * 2500 + " tail"
    # The last space in the window's last half, then character boundaries inside the run.
    assert cut_points(text, 1000) == [749, 1749, 2749]
    ids = encode_long(processor, text, 1000)
    assert ids[0] == processor.bos_id() and ids[-1] == processor.eos_id()
    assert processor.decode(ids[1:-1].tolist()) == text


def test_documents_up_to_the_bound_are_encoded_whole_in_one_batch(trained: TrainResult) -> None:  # noqa: F811
    processor = spm.SentencePieceProcessor(model_file=str(trained.model))
    texts = ["short", prose(20), "also short", ""]
    bound = len(texts[1]) // 3
    expected = processor.encode(texts, add_bos=True, add_eos=True)
    got = encode_documents(processor, texts, bound)
    assert [list(g) for g in got] == expected
