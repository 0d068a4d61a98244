"""The Wikipedia-reference classifier (LLaMA's last CommonCrawl filter, as RedPajama rebuilt it).

A fastText supervised model trained by `pipeline models classifier` on two classes:
reference-quality pages (`__label__wiki`: Wikipedia pages by default, or pages cited in
Wikipedia) and random CommonCrawl pages (`__label__cc`). A page is kept when
p(wiki) >= `threshold` (0.25, RedPajama's value); the probability is recorded as `wiki_prob`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from pipeline.common.errors import UserError
from pipeline.engine.document import Document
from pipeline.engine.stage import Result, Stage
from pipeline.filters.langid import load_fasttext
from pipeline.filters.model_files import check_model_file

POSITIVE = "__label__wiki"
NEGATIVE = "__label__cc"


# White space to Python's str.split() that fastText's tokenizer does not split on (it splits on
# space, \t, \n, \v, \f, \r and \0 alone): the Unicode spaces and the ASCII separators \x1c-\x1f.
_SPLIT_BY_PYTHON_ONLY = re.compile("[\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")


def classifier_text(text: str) -> str:
    """What the classifier sees, in training and in use: one lower-cased line of the words that
    Python's `str.split()` finds.

    fastText splits its input into words itself, so where the text holds no white space that
    Python splits on and fastText does not (nearly always), newlines made spaces give the model
    the same words as the split and the join, for a third of their CPU."""
    if text.isascii():  # the same test as the pattern's, by four scans in C instead of a regex walk
        plain = not ("\x1c" in text or "\x1d" in text or "\x1e" in text or "\x1f" in text)
    else:
        plain = _SPLIT_BY_PYTHON_ONLY.search(text) is None
    if plain:
        return text.lower().replace("\n", " ")
    return " ".join(text.lower().split())


def classifier_description_path(model: Path) -> Path:
    """`pipeline models classifier`'s description of `model` (classifier.bin: classifier.json)."""
    return model.with_suffix(".json")


class ReferenceClassifier(Stage):
    name = "wiki_classifier"

    def __init__(self, model_path: str, threshold: float = 0.25) -> None:
        self.model_path = model_path
        self.threshold = threshold

    def fields(self) -> list[pa.Field]:
        return [pa.field("wiki_prob", pa.float32())]

    def check(self) -> None:
        """Raise a clear error now, before a long run, when the model is missing or damaged."""
        path = Path(self.model_path)
        # `--out DIR` writes DIR/classifier.bin: the folder is named only for a model of that name.
        elsewhere = path.name == "classifier.bin" and path.parent != Path("data/models")
        command = "pipeline models classifier" + (f" --out {path.parent}" if elsewhere else "")
        if not path.exists():
            raise UserError(f"{self.model_path}: reference classifier missing; run `{command}`")
        check_model_file(path, classifier_description_path(path), command)

    def model_files(self) -> list[Path]:
        return [Path(self.model_path)]

    def setup(self) -> None:
        self.check()
        self._model = load_fasttext(self.model_path)
        self._low = f"wiki_prob_below_{self.threshold:g}"

    def probabilities(self, texts: list[str]) -> list[float]:
        labels, scores = self._model.predict([classifier_text(t) for t in texts], k=2)
        probs = []
        for label, score in zip(labels, scores):
            by_label = dict(zip(label, score))
            probs.append(min(1.0, float(by_label.get(POSITIVE, 0.0))))  # fastText adds 1e-5 to each
        return probs

    def process(self, doc: Document) -> Result:
        return self.process_batch([doc])[0]

    def process_batch(self, docs: list[Document]) -> list[Result]:
        results: list[Result] = []
        for doc, prob in zip(docs, self.probabilities([d.text for d in docs])):
            doc.meta["wiki_prob"] = prob
            results.append(doc if prob >= self.threshold else self._low)
        return results
