"""The install script builds KenLM's lmplz; the kenlm module scores with what it builds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import kenlm

from tests.conftest import BIN


def test_lmplz_trains_a_trigram_model_that_kenlm_scores(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["the cat sat on the mat", "the dog sat on the log", "a cat saw a dog"] * 20) + "\n")
    arpa = tmp_path / "model.arpa"
    with open(corpus, "rb") as src, open(arpa, "wb") as dst:
        subprocess.run([str(BIN / "lmplz"), "-o", "3", "--discount_fallback", "-S", "64M"], stdin=src, stdout=dst,
                       stderr=subprocess.DEVNULL, check=True)
    binary = tmp_path / "model.bin"
    subprocess.run([str(BIN / "build_binary"), str(arpa), str(binary)], check=True, capture_output=True)
    model = kenlm.Model(str(binary))
    assert model.order == 3
    seen = model.score("the cat sat on the mat", bos=True, eos=True)
    unseen = model.score("mat the on sat cat the", bos=True, eos=True)
    assert seen > unseen
    assert -10 < seen < 0
