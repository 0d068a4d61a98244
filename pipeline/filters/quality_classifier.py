"""The Wikipedia-reference classifier (LLaMA's last CommonCrawl filter, as RedPajama rebuilt it).

A fastText supervised model trained by `pipeline models classifier` on two classes:
reference-quality pages (`__label__wiki`: Wikipedia pages by default, or pages cited in
Wikipedia) and random CommonCrawl pages (`__label__cc`). A page is kept when
p(wiki) >= `threshold` (0.25, RedPajama's value); the probability is recorded as `wiki_prob`.
"""

from __future__ import annotations

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
# space, \t, \n, \v, \f, \r and \0 alone): the ASCII separators \x1c-\x1f and the Unicode spaces.
_ASCII_SPLIT_BY_PYTHON_ONLY = "\x1c\x1d\x1e\x1f"
_SPLIT_BY_PYTHON_ONLY = frozenset(_ASCII_SPLIT_BY_PYTHON_ONLY + "\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
                                  "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
# UTF-8 bytes: every ASCII byte but those separators deleted (what is left names the characters
# to look at), and the ASCII letters lower-cased with the newline made a space (bytes past
# ASCII kept as they are).
_ASCII_BUT_SEPARATORS = bytes(b for b in range(128) if chr(b) not in _ASCII_SPLIT_BY_PYTHON_ONLY)
_LOWER_ONE_LINE = bytes(range(256)).lower().replace(b"\n", b" ")


def classifier_text(text: str) -> str:
    """What the classifier sees, in training and in use: one lower-cased line of the words that
    Python's `str.split()` finds.

    fastText splits its input into words itself, so where the text holds no white space that
    Python splits on and fastText does not (nearly always), newlines made spaces give the model
    the same words as the split and the join, for a third of their CPU.

    Text past ASCII (nearly every real page: a curly quote, a dash, a ©) is looked at through its
    UTF-8 bytes: deleting the ASCII bytes but the separators leaves the few characters to look
    at. When none is such white space and none changes when lower-cased, the text lower-cased is
    its ASCII lower-cased, which one `bytes.translate` does with the newlines: the same string as
    `str.lower().replace()`, in about half the time of those walks (and of a regex's) over a
    string of two-byte characters."""
    if text.isascii():  # str's own walks: faster here than the bytes' round trip (3.0 against 4.5 us a page)
        if any(separator in text for separator in _ASCII_SPLIT_BY_PYTHON_ONLY):
            return " ".join(text.lower().split())
        return text.lower().replace("\n", " ")
    data = text.encode("utf-8", "surrogatepass")
    looked_at = set(data.translate(None, _ASCII_BUT_SEPARATORS).decode("utf-8", "surrogatepass"))
    if not looked_at.isdisjoint(_SPLIT_BY_PYTHON_ONLY):
        return " ".join(text.lower().split())
    if all(char.lower() == char for char in looked_at):
        return data.translate(_LOWER_ONE_LINE).decode("utf-8", "surrogatepass")
    return text.lower().replace("\n", " ")


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
