"""The reference classifier trained here by `pipeline models classifier` separates its two
fixture classes, and its threshold decides exactly what is kept."""

from __future__ import annotations

import json
import os
import re
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.engine.document import Document
from pipeline.filters.quality_classifier import ReferenceClassifier, classifier_text
from sources.samples.commoncrawl import encyclopedic, forum_post, spam_page
from tests.conftest import script, subprocess_env


def _reference(rng: random.Random) -> str:
    return encyclopedic(rng) + "\n" + encyclopedic(rng)  # always over the 1000-character minimum


def _random_page(rng: random.Random) -> str:
    return forum_post(rng, 8) if rng.random() < 0.5 else spam_page(rng)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("classifier")
    rng = random.Random(0)
    (folder / "wiki.jsonl").write_text("\n".join(json.dumps({"text": _reference(rng)}) for _ in range(150)) + "\n")
    (folder / "cc.jsonl").write_text("\n".join(json.dumps({"text": _random_page(rng)}) for _ in range(200)) + "\n")
    run = subprocess.run([script("pipeline"), "models", "classifier", "--positives", str(folder / "wiki.jsonl"),
                          "--negatives", str(folder / "cc.jsonl"), "--out", str(folder / "models")],
                         capture_output=True, text=True, env=subprocess_env(), cwd=folder)
    assert run.returncode == 0, run.stderr
    return folder / "models"


def test_classifier_json_says_how_it_was_made(model: Path) -> None:
    info = json.loads((model / "classifier.json").read_text())
    # Balanced classes: 150 reference pages (all over 1000 characters) and 150 of the 200 random ones.
    assert info["documents_per_class"] == 150
    assert info["labels"] == {"reference": "__label__wiki", "random": "__label__cc"}


def test_it_separates_the_two_fixture_classes(model: Path) -> None:
    stage = ReferenceClassifier(str(model / "classifier.bin"))
    stage.setup()
    rng = random.Random(42)  # pages not seen in training
    wiki = stage.probabilities([_reference(rng) for _ in range(30)])
    cc = stage.probabilities([_random_page(rng) for _ in range(30)])
    assert min(wiki) > 0.5 > max(cc)
    assert min(wiki) > max(cc)


def test_threshold_keeps_exactly_the_pages_at_or_above_it(model: Path) -> None:
    rng = random.Random(7)
    texts = [_reference(rng) for _ in range(5)] + [_random_page(rng) for _ in range(5)]
    probe = ReferenceClassifier(str(model / "classifier.bin"))
    probe.setup()
    probs = probe.probabilities(texts)
    for threshold in (0.25, sorted(probs)[3], 0.9):
        stage = ReferenceClassifier(str(model / "classifier.bin"), threshold=threshold)
        stage.setup()
        docs = [Document(str(i), t, "test") for i, t in enumerate(texts)]
        results = stage.process_batch(docs)
        kept = [isinstance(r, Document) for r in results]
        assert kept == [p >= threshold for p in probs]
        assert all(r == f"wiki_prob_below_{threshold:g}" for r in results if isinstance(r, str))
        assert [d.meta["wiki_prob"] for d in docs] == pytest.approx(probs)
    assert sum(p >= 0.25 for p in probs) == 5  # the default threshold keeps the reference pages only


def test_a_missing_model_names_the_command_to_run(tmp_path: Path) -> None:
    from pipeline.common.errors import UserError

    with pytest.raises(UserError, match="run `pipeline models classifier`"):
        ReferenceClassifier(str(tmp_path / "none.bin")).check()


def test_a_model_cut_short_is_refused_before_fasttext_loads_it(model: Path, tmp_path: Path) -> None:
    # fastText itself loads a classifier cut to a third without a word, and scores with it.
    from pipeline.common.errors import UserError
    from pipeline.filters.langid import load_fasttext

    copy = tmp_path / "models"
    shutil.copytree(model, copy)
    size = (copy / "classifier.bin").stat().st_size
    os.truncate(copy / "classifier.bin", size // 3)
    load_fasttext(str(copy / "classifier.bin"))  # the library's own load: no error
    stage = ReferenceClassifier(str(copy / "classifier.bin"))
    with pytest.raises(UserError) as error:
        stage.setup()
    assert str(error.value) == (
        f"{copy / 'classifier.bin'}: {size // 3:,} bytes, not the {size:,} written, as classifier.json records it: "
        f"damaged or replaced since `pipeline models classifier --out {copy}` wrote it; run that again")


def fasttext_words(line: str) -> list[str]:
    """The words fastText reads from a line: split on space, \\t, \\n, \\v, \\f, \\r and \\0 (its
    Dictionary::readWord), nothing else."""
    return [word for word in re.split("[ \t\n\v\f\r\0]+", line) if word]


@pytest.mark.parametrize("text", [
    "Plain ASCII page.\nSecond  line\twith\ttabs\r\nand CRLF\v\fend",
    "Unit\x1fseparated\x1crecords\x1dand\x1egroups",  # Python splits on these, fastText does not
    "Caf\u00e9 \u201cquoted\u201d\nno-break\u00a0space, thin\u2009space, ideographic\u3000space",
    "line\u2028separator and next\x85line",
    "NUL\0inside and 全角文字",
])
def test_the_classifier_sees_the_words_pythons_split_finds(text: str) -> None:
    # The model reads the words of one line; they must be those of " ".join(text.lower().split()),
    # whatever white space the page holds.
    line = classifier_text(text)
    assert "\n" not in line
    assert fasttext_words(line) == fasttext_words(" ".join(text.lower().split()))



@pytest.mark.parametrize("text", [
    "\u201cQuoted\u201d \u2014 ASCII CAPITALS around\nmarks that have no case \u00a9 2024",
    "Caf\u00c9 \u00c0 la CR\u00c8ME",  # capitals past ASCII: lower-cased by str.lower
    "\u0130stanbul",  # one character that lower-cases to two
    "\u039f\u0394\u039f\u03a3 \u03a3",  # a final sigma, which str.lower writes by its place in the word
    "Stra\u00dfe STRASSE \u1e9e \u01c5",  # sharp s, capital sharp s, a titlecase digraph
    "lone \ud800 surrogate AND\nCAPS",
    "emoji \U0001f600 HERE\n\u5168\u89d2",
])
def test_the_classifier_text_is_the_text_lower_cased_on_one_line(text: str) -> None:
    # No white space Python splits on apart from fastText's: the text lower-cased, newlines made
    # spaces, exactly as str.lower and str.replace write it, whatever path gets there.
    assert classifier_text(text) == text.lower().replace("\n", " ")