"""KenLM perplexity with a model trained here by `pipeline models lm`, and percentile buckets."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.common.errors import UserError
from pipeline.engine.document import Document
from pipeline.filters.perplexity import Perplexity, PerplexityBuckets
from sources.samples.text import document
from tests.conftest import script, subprocess_env


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lm")
    rng = random.Random(0)
    (folder / "reference.jsonl").write_text(
        "\n".join(json.dumps({"text": document(rng, 3)}) for _ in range(400)) + "\n")
    run = subprocess.run([script("pipeline"), "models", "lm", "--language", "en", "--input",
                          str(folder / "reference.jsonl"), "--out", str(folder / "models")],
                         capture_output=True, text=True, env=subprocess_env(), cwd=folder)
    assert run.returncode == 0, run.stderr
    return folder / "models"


def test_models_lm_writes_the_models_and_how_they_were_made(models: Path) -> None:
    assert (models / "en.sp.model").exists() and (models / "en.arpa.bin").exists()
    info = json.loads((models / "en.lm.json").read_text())
    assert info["documents"] == 400 and info["kenlm"]["order"] == 5
    assert info["command"][:3] == ["pipeline", "models", "lm"]


def test_models_lm_gives_the_same_model_files_for_the_same_text(models: Path, tmp_path: Path) -> None:
    # Trained again from the same reference, in another process and temporary folder: the model
    # files are the same bytes (SentencePiece writes no path of the folder it ran in).
    run = subprocess.run([script("pipeline"), "models", "lm", "--language", "en", "--input",
                          str(models.parent / "reference.jsonl"), "--out", str(tmp_path / "again")],
                         capture_output=True, text=True, env=subprocess_env(), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for name in ("en.sp.model", "en.arpa.bin"):
        assert (tmp_path / "again" / name).read_bytes() == (models / name).read_bytes(), name
    assert b"herd-lm-" not in (models / "en.sp.model").read_bytes()


def test_fluent_english_scores_lower_than_the_same_words_shuffled(models: Path) -> None:
    stage = Perplexity(str(models))
    stage.setup()
    rng = random.Random(99)  # texts the model has not seen
    fluent = [document(rng, 2) for _ in range(20)]
    shuffled = []
    for text in fluent:
        words = text.split()
        rng.shuffle(words)
        shuffled.append(" ".join(words))
    docs = [Document(str(i), t, "test", {"lang": "en"}) for i, t in enumerate(fluent + shuffled)]
    results = stage.process_batch(docs)
    assert all(isinstance(r, Document) for r in results)
    scores = [d.meta["perplexity"] for d in docs]
    for good, bad in zip(scores[:20], scores[20:]):
        assert 1 < good < bad
    assert max(scores[:20]) < min(scores[20:])


def test_perplexity_follows_the_ccnet_formula(models: Path) -> None:
    import kenlm
    import sentencepiece

    stage = Perplexity(str(models))
    stage.setup()
    # 漢字: unknown pieces; "A": a line of one piece
    text = "The River opened 12 Bridges 漢字.\n\nA local farmer built the tower.\nA"
    doc = Document("x", text, "test", {"lang": "en"})
    stage.process(doc)
    sp = sentencepiece.SentencePieceProcessor(model_file=str(models / "en.sp.model"))
    lm = kenlm.Model(str(models / "en.arpa.bin"))
    lines = ["the river opened 00 bridges 漢字.", "a local farmer built the tower.", "a"]  # normalised, blank skipped
    pieces = [sp.encode(line, out_type=str) for line in lines]
    assert sp.unk_id() in sp.encode(lines[0])  # the stage's fallback path is exercised
    assert len(pieces[2]) == 1
    log10 = sum(lm.score(" ".join(p)) for p in pieces)
    length = sum(len(p) + 1 for p in pieces)
    assert doc.meta["perplexity"] == pytest.approx(10 ** (-log10 / length), rel=1e-9)


def test_documents_in_a_language_without_a_model_are_dropped(models: Path) -> None:
    stage = Perplexity(str(models))
    stage.setup()
    assert stage.process(Document("d", "Der Fluss.", "test", {"lang": "de"})) == "no_lm_de"


def _bucketed(tmp_path: Path, values: dict[str, list[float]], **kwargs) -> tuple[PerplexityBuckets, list]:
    stage = PerplexityBuckets(**kwargs)
    docs = [Document(f"{lang}{i}", "t", "test", {"lang": lang, "perplexity": v})
            for lang, vs in values.items() for i, v in enumerate(vs)]
    partials = []
    for task, part in enumerate([docs[::2], docs[1::2]]):  # two tasks, interleaved
        partials.append(tmp_path / f"p{task}")
        stage.collect(iter(part), partials[-1])
    (tmp_path / "artefact").mkdir()
    stage.merge(partials, tmp_path / "artefact")
    stage.load(tmp_path / "artefact")
    return stage, [(d.meta["perplexity"], stage.process(d)) for d in docs]


@pytest.mark.parametrize("name, library", [("en.sp.model", "SentencePiece"), ("en.arpa.bin", "KenLM")])
def test_a_damaged_model_is_one_line_naming_it(models: Path, tmp_path: Path, name: str, library: str) -> None:
    copy = tmp_path / "models"
    shutil.copytree(models, copy)
    os.truncate(copy / name, (copy / name).stat().st_size // 2)
    with pytest.raises(UserError, match=rf"{name}: \S+ bytes, not the \S+ written, as en.lm.json records it: "
                                        rf"damaged or replaced since `pipeline models lm --language en --out {copy}`"):
        Perplexity(str(copy)).check()
    # A model with no record (brought from elsewhere): the library's own refusal, in one line.
    (copy / "en.lm.json").unlink()
    stage = Perplexity(str(copy))
    stage.check()
    with pytest.raises(UserError, match=rf"^{copy / name}: cannot load the {library} model \(.+\)$"):
        stage.setup()


def test_bucket_boundaries_are_the_per_language_percentiles(tmp_path: Path) -> None:
    rng = random.Random(1)
    values = {"en": [rng.uniform(10, 1000) for _ in range(101)], "de": [float(v) for v in range(1, 11)]}
    stage, results = _bucketed(tmp_path, values)
    cutoffs = json.loads((tmp_path / "artefact" / "cutoffs.json").read_text())
    for lang, vs in values.items():
        assert cutoffs[lang] == list(np.percentile(vs, [30, 60]))
    labels = [r if isinstance(r, str) else r.meta["bucket"] for _, r in results]
    # de: 1..10 gives p30 = 3.7 and p60 = 6.4: head 1-3, middle 4-6, tail 7-10.
    assert labels[101:] == ["head"] * 3 + ["middle"] * 3 + ["bucket_tail"] * 4
    # en: 101 values, so p30 and p60 are the 31st and 61st smallest: 30 head, 30 middle, 41 tail.
    low, high = cutoffs["en"]
    en = [p for p, _ in results[:101]]
    assert labels[:101] == ["head" if p < low else "middle" if p < high else "bucket_tail" for p in en]
    assert [labels[:101].count(b) for b in ("head", "middle", "bucket_tail")] == [30, 30, 41]


def test_given_cutoffs_and_kept_buckets(tmp_path: Path) -> None:
    _, results = _bucketed(tmp_path, {"en": [5.0, 15.0, 25.0, 35.0]}, cutoffs={"en": [10, 30]},
                           keep=["middle", "tail"])
    assert [r if isinstance(r, str) else r.meta["bucket"] for _, r in results] == [
        "bucket_head", "middle", "middle", "tail"]


def test_the_document_unit_scores_the_page_as_one_sentence_as_ccnets_mine(models: Path) -> None:
    import kenlm
    import sentencepiece

    stage = Perplexity(str(models), unit="document")
    stage.setup()
    doc = Document("x", "The River opened 12 Bridges.\n\nA local farmer built the tower.", "test", {"lang": "en"})
    stage.process(doc)
    sp = sentencepiece.SentencePieceProcessor(model_file=str(models / "en.sp.model"))
    lm = kenlm.Model(str(models / "en.arpa.bin"))
    # CCNet's normalize deletes the newlines: the lines are glued without a space.
    pieces = sp.encode("the river opened 00 bridges.a local farmer built the tower.", out_type=str)
    assert doc.meta["perplexity"] == pytest.approx(10 ** (-lm.score(" ".join(pieces)) / (len(pieces) + 1)), rel=1e-9)
    with pytest.raises(ValueError, match="unknown perplexity unit 'page'"):
        Perplexity(str(models), unit="page")
