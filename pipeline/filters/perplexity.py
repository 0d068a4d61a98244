"""CCNet perplexity: a SentencePiece + KenLM 5-gram score per document, then buckets.

Two stages, because a bucket needs the whole corpus's perplexities first:
- `Perplexity` scores each document: CCNet normalisation (`normalize_for_lm`), each unit
  SentencePiece-tokenised and scored by KenLM (with <s> and </s>); document perplexity =
  10 ** (-sum of unit log10 scores / sum of (pieces + 1)), the +1 counting </s>. The unit is
  a line by default (`unit="line"`, blank lines skipped): herd scores what CCNet's DocLM is
  written to score. CCNet's mine.py normalises the whole page before SentencePiece, and its
  normaliser deletes newlines, so the page is one sentence with its lines glued together
  (`unit="document"` does exactly that).
- `PerplexityBuckets` (a global stage) collects the perplexities per language, computes
  the percentiles (30 and 60 by default, numpy's linear interpolation) over all of them,
  and then labels each document head (< p30), middle (< p60) or tail; given cutoffs skip
  the percentiles. Documents whose bucket is not in `keep` are dropped as `bucket_tail`.

Models live in `model_dir` as `<lang>.sp.model` and `<lang>.arpa.bin` (CCNet's names),
written by `pipeline models lm --language <lang>`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa

from pipeline.common.errors import UserError
from pipeline.engine.document import Document
from pipeline.engine.stage import GlobalStage, Result, Stage
from pipeline.filters.model_files import check_model_file, load_failure
from pipeline.text.normalize import normalize_for_lm, normalize_lines_for_lm

BUCKETS = ("head", "middle", "tail")
UNITS = ("line", "document")  # what one KenLM sentence is (see the module's docstring)
UNKNOWN_MARK = "\x00"  # the piece table's entry for SentencePiece's unknown id (LanguageModel)


def sp_model_path(model_dir: str | Path, lang: str) -> Path:
    return Path(model_dir) / f"{lang}.sp.model"


def lm_model_path(model_dir: str | Path, lang: str) -> Path:
    return Path(model_dir) / f"{lang}.arpa.bin"


def lm_description_path(model_dir: str | Path, lang: str) -> Path:
    """`pipeline models lm`'s description of both files, their bytes and sha256s included."""
    return Path(model_dir) / f"{lang}.lm.json"


def check_language_model(model_dir: str | Path, lang: str) -> None:
    """One UserError, with the command that writes them, when a model file is missing or is not
    the file `pipeline models lm` recorded (pipeline/filters/model_files.py)."""
    command = f"pipeline models lm --language {lang}{'' if str(model_dir) == 'data/models' else f' --out {model_dir}'}"
    for path in (sp_model_path(model_dir, lang), lm_model_path(model_dir, lang)):
        if not path.exists():
            raise UserError(f"{path}: perplexity model missing; run `{command}`")
        check_model_file(path, lm_description_path(model_dir, lang), command)


class LanguageModel:
    """One language's SentencePiece tokenizer and KenLM model."""

    def __init__(self, model_dir: str | Path, lang: str) -> None:
        import kenlm
        import sentencepiece

        check_language_model(model_dir, lang)
        sp_path, lm_path = sp_model_path(model_dir, lang), lm_model_path(model_dir, lang)
        try:
            self.sp = sentencepiece.SentencePieceProcessor(model_file=str(sp_path))
        except (RuntimeError, OSError) as e:  # "could not parse ModelProto": no model, or a damaged one
            raise UserError(f"{sp_path}: cannot load the SentencePiece model ({load_failure(e)})") from None
        try:
            self.lm = kenlm.Model(str(lm_path))
        except (OSError, RuntimeError) as e:  # KenLM's FormatLoadException arrives as OSError
            raise UserError(f"{lm_path}: cannot load the KenLM model ({load_failure(e)})") from None
        # Encoding to ids and looking pieces up here is about twice as fast as asking
        # SentencePiece for strings. A sentence with an unknown id is encoded again as strings
        # (the surface text, as in the training data, where "<unk>" would differ); the unknown
        # id's entry is a character no piece holds (normalised text has no control character),
        # so one search finds such sentences. A piece that held it anyway would only cost that
        # second encoding, never change a score.
        self.pieces = [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]
        self.pieces[self.sp.unk_id()] = UNKNOWN_MARK

    def perplexities(self, texts: list[str], unit: str = "line") -> list[float]:
        """Perplexity of each text, scored by `unit` (one of UNITS); all sentences of all texts go
        to SentencePiece in one call, and to KenLM in one `map`: the loop over sentences runs in C."""
        sentences_of = [lm_sentences(text, unit) for text in texts]
        lines = list(chain.from_iterable(sentences_of))
        # num_threads=1: a worker is one core; parallelism comes from the executor.
        encoded: list[list] = self.sp.encode(lines, num_threads=1)
        sentences = [_joined_pieces(self.pieces, ids) for ids in encoded]
        if UNKNOWN_MARK in "".join(sentences):
            with_unknown = [n for n, sentence in enumerate(sentences) if UNKNOWN_MARK in sentence]
            as_text = self.sp.encode([lines[n] for n in with_unknown], out_type=str, num_threads=1)
            for n, pieces in zip(with_unknown, as_text):
                sentences[n], encoded[n] = " ".join(pieces), pieces
        counts = list(map(len, sentences_of))
        owner = np.repeat(np.arange(len(texts)), counts)
        # bincount adds each text's values in sentence order, as a running Python sum would:
        # the same floats to the last bit. Every sentence counts its pieces and </s>.
        log_score = np.bincount(owner, weights=list(map(self.lm.score, sentences)), minlength=len(texts))
        length = np.bincount(owner, weights=list(map(len, encoded)), minlength=len(texts)) + counts
        return [10.0 ** (-s / n) if n else float("inf") for s, n in zip(log_score.tolist(), length.tolist())]


def _joined_pieces(pieces: list[str], ids: list[int]) -> str:
    """The pieces of `ids`, space-separated: what KenLM scores. `itemgetter` looks them all up in
    one C call, a quarter faster than a lookup per piece in Python (SentencePiece's own strings
    are slower still); it returns a bare piece, not a tuple, for a single id."""
    if len(ids) > 1:
        return " ".join(itemgetter(*ids)(pieces))
    return pieces[ids[0]] if ids else ""


def lm_sentences(text: str, unit: str = "line") -> list[str]:
    """The normalised sentences KenLM scores for `text`: each non-blank line, or the whole text
    as one (CCNet's mine.py)."""
    if unit == "document":
        whole = normalize_for_lm(text)
        return [whole] if whole else []
    return normalize_lines_for_lm(text)


class Perplexity(Stage):
    name = "perplexity"

    def __init__(self, model_dir: str, languages: tuple[str, ...] | list[str] = ("en",), unit: str = "line") -> None:
        if unit not in UNITS:
            raise ValueError(f"unknown perplexity unit {unit!r} (known: {', '.join(UNITS)})")
        self.model_dir = model_dir
        self.languages = tuple(languages)
        self.unit = unit

    def fields(self) -> list[pa.Field]:
        return [pa.field("perplexity", pa.float32())]

    def check(self) -> None:
        """Raise a clear error now, before a long run, when a model is missing or damaged."""
        for lang in self.languages:
            check_language_model(self.model_dir, lang)

    def model_files(self) -> list[Path]:
        return [path for lang in self.languages
                for path in (sp_model_path(self.model_dir, lang), lm_model_path(self.model_dir, lang))]

    def setup(self) -> None:
        self._models = {lang: LanguageModel(self.model_dir, lang) for lang in self.languages}

    def process(self, doc: Document) -> Result:
        return self.process_batch([doc])[0]

    def process_batch(self, docs: list[Document]) -> list[Result]:
        by_lang: dict[str, list[int]] = defaultdict(list)
        for i, doc in enumerate(docs):
            by_lang[doc.meta.get("lang") or self.languages[0]].append(i)
        results: list[Result] = list(docs)
        for lang, indices in by_lang.items():
            model = self._models.get(lang)
            if model is None:
                for i in indices:
                    results[i] = f"no_lm_{lang}"
                continue
            for i, value in zip(indices, model.perplexities([docs[i].text for i in indices], self.unit)):
                docs[i].meta["perplexity"] = value
        return results


class PerplexityBuckets(GlobalStage):
    name = "perplexity_bucket"

    def __init__(self, percentiles: tuple[float, float] | list[float] = (30.0, 60.0),
                 cutoffs: dict[str, list[float]] | None = None,
                 keep: tuple[str, ...] | list[str] = ("head", "middle")) -> None:
        if len(percentiles) != 2 or not 0 <= percentiles[0] <= percentiles[1] <= 100:
            raise ValueError(f"percentiles must be two increasing numbers in [0, 100], got {percentiles}")
        unknown = set(keep) - set(BUCKETS)
        if unknown:
            raise ValueError(f"unknown buckets {sorted(unknown)} (known: {', '.join(BUCKETS)})")
        self.percentiles = tuple(float(p) for p in percentiles)
        self.cutoffs = {lang: [float(c) for c in pair] for lang, pair in (cutoffs or {}).items()}
        self.keep = tuple(keep)

    def fields(self) -> list[pa.Field]:
        return [pa.field("bucket", pa.string())]

    def collect(self, docs: Iterable[Document], partial: Path) -> None:
        values: dict[str, list[float]] = defaultdict(list)
        for doc in docs:
            values[doc.meta.get("lang") or ""].append(doc.meta["perplexity"])
        partial.mkdir(parents=True)
        for lang, v in values.items():
            np.save(partial / f"{lang or '_'}.npy", np.asarray(v, dtype=np.float64))

    def merge(self, partials: list[Path], artefact: Path) -> None:
        values: dict[str, list[np.ndarray]] = defaultdict(list)
        for partial in partials:
            for path in partial.glob("*.npy"):
                values[path.stem].append(np.load(path))
        cutoffs = {}
        for lang, arrays in sorted(values.items()):
            joined = np.concatenate(arrays)
            cutoffs[lang] = [float(c) for c in np.percentile(joined, self.percentiles)] if len(joined) else []
        cutoffs.update(self.cutoffs)  # given cutoffs win over measured ones
        (artefact / "cutoffs.json").write_text(json.dumps(cutoffs, indent=1, sort_keys=True))

    def load(self, artefact: Path) -> None:
        self._cutoffs = json.loads((artefact / "cutoffs.json").read_text())

    def bucket(self, lang: str, perplexity: float) -> str:
        low, high = self._cutoffs[lang or "_"]
        return "head" if perplexity < low else "middle" if perplexity < high else "tail"

    def process(self, doc: Document) -> Result:
        bucket = self.bucket(doc.meta.get("lang") or "", doc.meta["perplexity"])
        doc.meta["bucket"] = bucket
        return doc if bucket in self.keep else f"bucket_{bucket}"
