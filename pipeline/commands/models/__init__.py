"""`pipeline models lm|classifier`: train the CommonCrawl filters' models into data/models/.

lm: SentencePiece (unigram, trained on the normalised reference text) and a KenLM 5-gram
    (`lmplz -o 5 --discount_fallback`, then `build_binary`) on the SentencePiece pieces, as
    CCNet did on Wikipedia. Writes `<lang>.sp.model`, `<lang>.arpa.bin`, `<lang>.lm.json`.
classifier: a fastText supervised model, reference pages (`__label__wiki`, at least
    --min-chars characters) against as many random CommonCrawl pages (`__label__cc`), as
    RedPajama rebuilt LLaMA's filter. Writes `classifier.bin` and `classifier.json`. The
    reference pages are, as in the paper, the web pages Wikipedia cites with
    `--positives cited`: the pages of the WARC/WET inputs (`--cited-pages`, by default the
    random pages' inputs, or a folder of fetched pages) whose URL one of the articles in
    `--cited-urls` (the Wikipedia corpus's `cited_urls` column, or a .txt of URLs) cites; the
    random class then leaves those pages out. Otherwise (the default, and RedPajama's
    shortcut) they are Wikipedia articles.

Every JSON records the inputs, document and line counts, the settings and the command, so
a model can be traced to what made it, and `generated_sample`: whether its inputs were the
ones `pipeline sample` writes (a CommonCrawl run warns when such a toy model meets real pages).
The model files themselves are reproducible: the same inputs and settings give the same bytes.
So a rerun trains nothing when its JSON's `made_from` (the settings that shape the model and a
fingerprint of every input file read) is what this run would record and every model file is as
its "files" record says: it says so in one line and writes nothing (`already_trained`).

Inputs (`--input`, `--positives`, `--negatives`) are corpus shard folders or `.arrow`
files, `.jsonl[.gz]` files with a `text` field, `.txt` files (one document per line), or
CommonCrawl `.warc.gz`/`.wet.gz` files or folders of them. A corpus folder (one with a
manifest.json, wherever it is found) gives the shards its manifest lists, each checked against
its sha256 first: not a run's work files, its dropped documents or a stray copy. By default the
reference text is the stand-in written by `pipeline sample` (`data/raw/commoncrawl/reference`)
where it exists, else the Wikipedia corpus (`data/corpus/wikipedia`, from `pipeline run
wikipedia`); the random pages are the raw CommonCrawl inputs (`data/raw/commoncrawl`).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.common.cli import Command
from pipeline.common.errors import InputError, UserError, sigterm_ends_at_once
from pipeline.common.files import check_output_folder, check_regular_file, refuse_overlap, write_json_atomic
from pipeline.common.warn import warn
from pipeline.engine.document import Document
from pipeline.engine.run_folder import WORK
from pipeline.filters.model_files import FILES, recorded_files
from pipeline.commands.models.made_from import (
    MADE_FROM, PAGE_KINDS, READ_KINDS, URL_KINDS, classifier_made_from, lm_made_from,
)
from pipeline.filters.perplexity import lm_description_path, lm_model_path, lm_sentences, sp_model_path
from pipeline.filters.quality_classifier import NEGATIVE, POSITIVE, classifier_description_path, classifier_text

DEFAULT_OUTPUT = "data/models"
# The sample's stand-in first: only `pipeline sample` writes it, and the tiny sample Wikipedia
# corpus (from `pipeline run all`) has too few long pages to train on; real setups have no
# stand-in and use the Wikipedia corpus.
REFERENCE_DEFAULTS = ["data/raw/commoncrawl/reference", "data/corpus/wikipedia"]
RANDOM_PAGES_DEFAULT = "data/raw/commoncrawl"
CITED_URLS_DEFAULT = "data/corpus/wikipedia"
CITED = "cited"  # `--positives cited`


# --- reading texts -------------------------------------------------------------------------


def iter_texts(paths: list[str], lang: str | None = None, kinds: tuple[str, ...] = ()) -> Iterator[str]:
    """Document texts of every input; inside folders only files of `kinds` when given ("arrow",
    "jsonl", "txt", "warc"); corpus rows with a `lang` column other than `lang` are skipped."""
    for path in paths:
        p = given_input(path)
        if p.is_dir():
            usable = [f for f in _folder_inputs(p) if _kind(f) and (not kinds or _kind(f) in kinds)]
        else:  # a file named explicitly is used whatever `kinds` says
            usable = [p] if _kind(p) else []
        if not usable:
            raise UserError(f"{path}: no usable input (.arrow shards, .jsonl, .txt, .warc.gz or .wet.gz files)")
        for f in usable:
            yield from _texts_of(f, lang)


def given_input(path: str) -> Path:
    """An input as given (`--input`, `--positives`, ...): a folder, or a regular file (links
    followed). A FIFO would block the reader until something writes to it, a device never ends
    (a `z.txt` linked to /dev/zero filled the memory): one line naming it, before any reading."""
    check_regular_file(path, "an input file or folder", folder_ok=True)
    p = Path(path)
    if not p.exists():
        raise UserError(f"{path}: input does not exist")
    return p


def _lines(path: Path) -> Iterator[str]:
    """The lines of a .txt or .jsonl[.gz] input as UTF-8 (invalid bytes replaced), split where a
    text file's lines end (\n, \r\n, \r). A line over MAX_LINE_BYTES is passed over as it is
    read, as a run's readers do: one endless line must not be held whole."""
    from pipeline.formats.files import MAX_LINE_BYTES, bounded_lines, open_binary

    with open_binary(str(path)) as raw:
        for line in bounded_lines(raw, MAX_LINE_BYTES):
            if line is not None:
                yield from line.decode("utf-8", "replace").removesuffix("\r").split("\r")


def _folder_inputs(folder: Path) -> list[Path]:
    """What a folder input holds, in path order: its files, and each corpus folder in it (one with
    a manifest.json) as the folder itself. A corpus is read through its manifest (`read_corpus`:
    the shards it lists, each checked against its sha256), never as every .arrow under it: a
    running or killed run's parts (`_work/`), its dropped documents and a stray file are not its
    documents, and a damaged shard would otherwise train a model on damaged text unnoticed. A run
    folder with no manifest yet (`_work/` and no manifest.json) is a corpus too: reading it refuses
    it as unfinished (pipeline/engine/shards.py `shard_entries`), never walks its parts."""
    if _is_corpus(folder):
        return [folder]
    found: list[Path] = []
    for child in sorted(folder.iterdir()):
        if child.is_dir() and not child.is_symlink():
            found.extend(_folder_inputs(child))
        elif child.is_file():
            found.append(child)
    return found


def _is_corpus(folder: Path) -> bool:
    """A corpus folder: a finished run's (manifest.json) or a run's not finished (`_work/`)."""
    return (folder / "manifest.json").is_file() or (folder / WORK).is_dir()


def _kind(path: Path) -> str:
    name = path.name
    if path.is_dir():
        return "arrow" if _is_corpus(path) else ""
    if name.endswith(".arrow") and "dropped" not in path.parts:
        return "arrow"
    if name.endswith((".jsonl", ".jsonl.gz")):
        return "jsonl"
    if name.endswith(".txt"):
        return "txt"
    if name.endswith((".warc.gz", ".wet.gz", ".warc", ".wet")):
        return "warc"
    return ""


def _documents(path: Path) -> Iterator[Document]:
    """The documents of a corpus folder (checked against its manifest) or of one .arrow shard."""
    from pipeline.engine.shards import iter_shard, read_corpus

    return read_corpus(path) if path.is_dir() else iter_shard(path)


def _texts_of(path: Path, lang: str | None) -> Iterator[str]:
    kind = _kind(path)
    if kind == "arrow":
        for doc in _documents(path):
            if lang is None or doc.meta.get("lang") in (None, lang):
                yield doc.text
    elif kind == "jsonl":
        from pipeline.formats.files import decoded_json

        for line in _lines(path):
            if line.strip():
                row = decoded_json(line)  # a line that is no JSON object of a text is passed over
                if isinstance(row, dict) and isinstance(row.get("text"), str):
                    yield row["text"]
    elif kind == "txt":
        yield from (line for line in _lines(path) if line.strip())
    elif kind == "warc":
        for _, text in _warc_pages(path):
            yield text


def _warc_pages(path: Path) -> Iterator[tuple[str, str]]:
    """(url, text) of the pages of a WARC/WET file, the text as a CommonCrawl run makes it."""
    from pipeline.formats.warc import WarcPage, iter_warc_pages
    from pipeline.text.html import HtmlTooDeep, html_page_to_text

    try:
        for page in iter_warc_pages(str(path)):
            if isinstance(page, WarcPage):
                try:
                    text = html_page_to_text(page.content)[1] if page.is_html else page.content
                except HtmlTooDeep:
                    continue  # a run drops it (html_too_deep): no model learns from it either
                yield page.url, text.strip()
    except InputError as e:  # a file cut short still gives the pages before the cut
        warn(f"warning: {e}")


def iter_pages(paths: list[str]) -> Iterator[tuple[str, str]]:
    """(url, text) of every page in WARC/WET files and corpus shards (folders are searched)."""
    for path in paths:
        p = given_input(path)
        files = _folder_inputs(p) if p.is_dir() else [p]
        usable = [f for f in files if _kind(f) in PAGE_KINDS]
        if not usable:
            raise UserError(f"{path}: no pages with URLs (.warc.gz / .wet.gz files or .arrow shards)")
        for f in usable:
            if _kind(f) == "arrow":
                for doc in _documents(f):
                    yield str(doc.meta.get("url") or ""), doc.text
                continue
            yield from _warc_pages(f)


def load_cited_urls(paths: list[str]) -> set[str]:
    """URL keys (`url_key`) of every URL cited: the `cited_urls` column of Wikipedia corpus
    shards, or `.txt` files of one URL a line."""
    from pipeline.text.cited_urls import url_key

    keys: set[str] = set()
    for path in paths:
        p = given_input(path)
        files = _folder_inputs(p) if p.is_dir() else [p]
        usable = [f for f in files if _kind(f) in URL_KINDS]
        if not usable:
            raise UserError(f"{path}: no cited URLs (Wikipedia corpus shards with a cited_urls column, or .txt files)")
        for f in usable:
            if _kind(f) == "txt":
                keys.update(url_key(url) for line in _lines(f) for url in line.split())
                continue
            for doc in _documents(f):
                keys.update(url_key(u) for u in doc.meta.get("cited_urls") or [])
    keys.discard("")
    return keys


def trained_on_generated_sample(paths: list[str]) -> bool:
    from pipeline.common.generated import is_generated

    return any(is_generated(p) for p in paths)


def default_input(given: list[str] | None, defaults: list[str], what: str, flag: str) -> list[str]:
    if given:
        return given
    for candidate in defaults:
        if Path(candidate).exists():
            return [candidate]
    raise UserError(f"no {what} found at {' or '.join(defaults)}; pass {flag} (run `pipeline sample` "
                    "for sample data, or `pipeline run wikipedia` for the real reference text)")



def check_output(out: Path, inputs: list[str]) -> None:
    """Refuse an --out that is no folder (a file, /dev/null) or that overlaps an input, before any
    work: models written among their inputs are read as inputs by the next training, and a later
    `pipeline sample` or `pipeline run` finds files there that are none of its own."""
    check_output_folder(out)
    for given in inputs:
        refuse_overlap(out, "model folder", Path(given), f"the input {given}", "pick an --out outside the inputs")


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise UserError(f"KenLM's {name} not found beside {sys.executable} or on PATH; run ./install.sh")
    return found


# --- lm ----------------------------------------------------------------------------------


def drawn_lines(text_file: Path, lines: int, keep: int, seed: int) -> Iterator[str]:
    """The `lines` lines of `text_file` (without their newlines), or, when it holds more than `keep`
    (and `keep` is not 0), `keep` of them drawn at random with `seed`, in the file's order.

    Drawn here and not by SentencePiece (its `input_sentence_size`): its draw takes its seed from
    the system's entropy whatever `set_random_generator_seed` says, so a text of more lines than
    that gave another model each run."""
    import numpy as np

    chosen = None
    if keep and lines > keep:
        chosen = np.sort(np.random.default_rng(seed).choice(lines, size=keep, replace=False)).tolist()
        chosen.append(lines)  # a sentinel past the last line
    with open(text_file, encoding="utf-8") as text:
        if chosen is None:
            yield from (line.rstrip("\n") for line in text)
            return
        at = 0
        for number, line in enumerate(text):
            if number == chosen[at]:
                yield line.rstrip("\n")
                at += 1


def train_lm(inputs: list[str], output: Path, lang: str = "en", vocab_size: int = 65536, order: int = 5,
             max_documents: int = 0, command_line: list[str] | None = None, memory: str = "20%",
             sp_sentences: int = 2_000_000, seed: int = 0) -> dict:
    """Train `<lang>.sp.model` and `<lang>.arpa.bin` in `output`; returns the description written.
    `memory` is lmplz's `-S` budget for its sort buffers (a size such as 2G, or a share of RAM).
    SentencePiece trains on `sp_sentences` lines drawn at random with `seed` when the text has more
    (0: on all of them); KenLM always counts every line."""
    import sentencepiece

    # Taken before the inputs are read: one written while they are read moves its mtime after
    # this, and the next run trains again.
    origin = lm_made_from(inputs, lang, vocab_size, order, max_documents, sp_sentences, seed)
    output.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="herd-lm-") as tmp_name:
        tmp = Path(tmp_name)
        text_file = tmp / "normalised.txt"
        documents = lines = 0
        with open(text_file, "w", encoding="utf-8") as out:
            for text in iter_texts(inputs, lang):
                for line in lm_sentences(text):  # the reference is read line by line, as CCNet's
                    out.write(line + "\n")
                    lines += 1
                documents += 1
                if max_documents and documents >= max_documents:
                    break
        if lines == 0:
            raise UserError(f"{', '.join(inputs)}: no text to train the {lang} language model on")
        sp_file = tmp / "sp.model"
        try:
            # The lines come from an iterator and the model goes to a writer, not from and to
            # paths: SentencePiece records its input and output paths in the model's trainer
            # spec, and these are in a temporary folder of a new name each run. So the same text
            # gives the same model file, byte for byte. The pieces and scores are the ones it
            # learns reading the file itself: the normal form holds no control character (no
            # "\r", which its own line reader treats otherwise), so a line is the same sentence.
            with sigterm_ends_at_once(), open(sp_file, "wb") as model:
                sentencepiece.SentencePieceTrainer.train(
                    sentence_iterator=drawn_lines(text_file, lines, sp_sentences, seed), model_writer=model,
                    vocab_size=vocab_size, model_type="unigram",
                    hard_vocab_limit=False,  # a small reference text caps the vocabulary below the request
                    character_coverage=0.9999, input_sentence_size=0,  # the lines drawn, all of them
                    num_threads=1, minloglevel=2,
                )
        except RuntimeError as e:
            raise UserError(f"SentencePiece training failed on {', '.join(inputs)}: {e}") from None
        sp = sentencepiece.SentencePieceProcessor(model_file=str(sp_file))
        pieces_file = tmp / "pieces.txt"
        with open(text_file, encoding="utf-8") as src, open(pieces_file, "w", encoding="utf-8") as dst:
            batch = []
            for line in src:
                batch.append(line.rstrip("\n"))
                if len(batch) == 10_000:
                    dst.writelines(" ".join(p) + "\n" for p in sp.encode(batch, out_type=str, num_threads=1))
                    batch = []
            dst.writelines(" ".join(p) + "\n" for p in sp.encode(batch, out_type=str, num_threads=1))
        arpa = tmp / "lm.arpa"
        with open(pieces_file, "rb") as src, open(arpa, "wb") as dst:
            run = subprocess.run([_tool("lmplz"), "-o", str(order), "--discount_fallback", "-S", memory,
                                  "-T", str(tmp)], stdin=src, stdout=dst, stderr=subprocess.PIPE)
        if run.returncode != 0:
            raise UserError(f"lmplz failed: {run.stderr.decode(errors='replace').strip().splitlines()[-1:]}")
        binary_tmp = tmp / "lm.bin"
        run = subprocess.run([_tool("build_binary"), str(arpa), str(binary_tmp)], capture_output=True)
        if run.returncode != 0:
            raise UserError(f"build_binary failed: {run.stderr.decode(errors='replace').strip()[-300:]}")
        shutil.move(sp_file, sp_model_path(output, lang))
        shutil.move(binary_tmp, lm_model_path(output, lang))
    description = {
        "kind": "lm",
        "language": lang,
        "inputs": inputs,
        "generated_sample": trained_on_generated_sample(inputs),
        "documents": documents,
        "lines": lines,
        "normalisation": "CCNet normalize(punct=1), line by line: stripped, lower-case, NFD without Mn marks, "
                         "digits to 0, its punctuation map, control characters removed",
        "sentencepiece": {"model_type": "unigram", "vocab_size_requested": vocab_size,
                          "vocab_size": sp.get_piece_size(), "file": sp_model_path(output, lang).name,
                          "trained_on_lines": min(lines, sp_sentences) if sp_sentences else lines, "seed": seed},
        "kenlm": {"order": order, "command": f"lmplz -o {order} --discount_fallback; build_binary",
                  "file": lm_model_path(output, lang).name},
        "seconds": round(time.time() - started, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command_line or [],
        MADE_FROM: origin,
        FILES: recorded_files(sp_model_path(output, lang), lm_model_path(output, lang)),
    }
    write_json_atomic(lm_description_path(output, lang), description)
    return description


# --- classifier ----------------------------------------------------------------------------

_TRAIN_FASTTEXT = """
import json, sys
import fasttext
model = fasttext.train_supervised(input=sys.argv[1], verbose=0, **json.loads(sys.argv[2]))
model.save_model(sys.argv[3])
"""


def train_classifier(positives: list[str], negatives: list[str], output: Path, min_chars: int = 1000,
                     max_per_class: int = 100_000, epochs: int = 10, seed: int = 0,
                     command_line: list[str] | None = None) -> dict:
    """Train `classifier.bin` in `output` on balanced classes (reference texts: Wikipedia
    articles or any text); returns the description written."""
    origin = classifier_made_from({"positives": positives, "negatives": negatives}, min_chars, max_per_class,
                                  epochs, seed)  # before the inputs are read, as in train_lm
    wiki = [classifier_text(t) for t in iter_texts(positives) if len(t) >= min_chars]
    # In folders, random pages come from WARC/WET files and shards only: a raw CommonCrawl
    # folder may hold the sample's reference stand-in, which must not land in the random class.
    cc = [classifier_text(t) for t in iter_texts(negatives, kinds=READ_KINDS["negatives"]) if t.strip()]
    if not wiki:
        raise UserError(f"{', '.join(positives)}: no reference page of at least {min_chars} characters "
                        "(pass --min-chars or more reference text)")
    inputs = {"positives": positives, "negatives": negatives}
    return _train(wiki, cc, negatives, inputs, origin, output, min_chars, max_per_class, epochs, seed,
                  command_line)


def train_classifier_on_cited(cited_urls: list[str], pages: list[str], negatives: list[str], output: Path,
                              min_chars: int = 1000, max_per_class: int = 100_000, epochs: int = 10, seed: int = 0,
                              command_line: list[str] | None = None) -> dict:
    """Train `classifier.bin` with the pages Wikipedia cites as the reference class (the
    paper's recipe): pages of `pages` whose URL is cited, against pages of `negatives` that
    are not."""
    from pipeline.text.cited_urls import url_key

    origin = classifier_made_from({"cited_urls": cited_urls, "cited_pages": pages, "negatives": negatives},
                                  min_chars, max_per_class, epochs, seed)  # before the inputs are read
    cited = load_cited_urls(cited_urls)
    if not cited:
        raise UserError(f"{', '.join(cited_urls)}: no cited URL (run `pipeline run wikipedia` for the cited_urls "
                        "column)")
    found = [text for url, text in iter_pages(pages) if url_key(url) in cited]
    wiki = [classifier_text(t) for t in found if len(t) >= min_chars]
    if not wiki:
        raise UserError(f"{', '.join(pages)}: none of the {len(found):,} cited pages found has "
                        f"{min_chars} characters or more (of {len(cited):,} cited URLs)")
    cc = [classifier_text(t) for url, t in iter_pages(negatives) if t.strip() and url_key(url) not in cited]
    inputs = {"positives": CITED, "cited_urls": cited_urls, "cited_pages": pages, "negatives": negatives,
              "cited_urls_known": len(cited), "cited_pages_found": len(found)}
    return _train(wiki, cc, [*pages, *negatives], inputs, origin, output, min_chars, max_per_class, epochs, seed,
                  command_line)


def _train(wiki: list[str], cc: list[str], random_inputs: list[str], inputs: dict, origin: dict[str, Any],
           output: Path, min_chars: int, max_per_class: int, epochs: int, seed: int,
           command_line: list[str] | None) -> dict:
    output.mkdir(parents=True, exist_ok=True)
    started = time.time()
    rng = random.Random(seed)
    if not cc:
        raise UserError(f"{', '.join(random_inputs)}: no CommonCrawl page to use as the random class")
    # Equal classes (RedPajama: as many random pages as reference pages).
    per_class = min(len(wiki), len(cc), max_per_class)
    rows = [f"{POSITIVE} {t}" for t in rng.sample(wiki, per_class)]
    rows += [f"{NEGATIVE} {t}" for t in rng.sample(cc, per_class)]
    rng.shuffle(rows)
    settings = {"epoch": epochs, "lr": 0.2, "wordNgrams": 2, "dim": 32, "bucket": 100_000, "minCount": 1,
                "thread": 1, "seed": seed}
    with tempfile.TemporaryDirectory(prefix="herd-classifier-") as tmp_name:
        train_file = Path(tmp_name) / "train.txt"
        train_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
        tmp_model = Path(tmp_name) / "classifier.bin"
        for attempt in range(4):
            # A fresh interpreter trains: fastText 0.9 reports "Encountered NaN" on a healthy
            # input in a process that has done other work first (not reproducible alone), and
            # diverges at a rate that suits other inputs; half the rate then trains.
            run = subprocess.run([sys.executable, "-c", _TRAIN_FASTTEXT, str(train_file), json.dumps(settings),
                                  str(tmp_model)], capture_output=True, text=True)
            if run.returncode == 0:
                break
            if "NaN" not in run.stderr or attempt == 3:
                raise UserError(f"fastText training failed: {run.stderr.strip().splitlines()[-1:]}")
            settings["lr"] /= 2
        shutil.move(tmp_model, output / "classifier.bin")
    paths = [p for key in ("positives", "cited_urls", "cited_pages", "negatives")
             for p in (inputs.get(key) if isinstance(inputs.get(key), list) else [])]
    description = {
        "kind": "classifier",
        **inputs,
        "generated_sample": trained_on_generated_sample(paths),
        "labels": {"reference": POSITIVE, "random": NEGATIVE},
        "documents_per_class": per_class,
        "reference_min_chars": min_chars,
        "fasttext": settings,
        "file": "classifier.bin",
        "seconds": round(time.time() - started, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command_line or [],
        MADE_FROM: origin,
        FILES: recorded_files(output / "classifier.bin"),
    }
    write_json_atomic(classifier_description_path(output / "classifier.bin"), description)
    return description


# --- commands: pipeline/commands/models/lm.py and classifier.py --------------------------------

METAVAR = "KIND"
COMMANDS = [
    Command("lm", "pipeline.commands.models.lm", "SentencePiece + KenLM 5-gram perplexity model (CCNet)"),
    Command("classifier", "pipeline.commands.models.classifier",
            "fastText classifier of reference pages against random CommonCrawl pages"),
]


def command_line(kind: str, args: argparse.Namespace) -> list[str]:
    """`pipeline models KIND` with every option as resolved (defaults included), for the JSON
    that describes a model: running it again rebuilds the same model."""
    words = ["pipeline", "models", kind]
    for name, value in sorted(vars(args).items()):
        if value is None or value is False:
            continue
        flag = f"--{name.replace('_', '-')}"
        if value is True:
            words.append(flag)
        else:
            words += [flag, *(str(v) for v in value)] if isinstance(value, list) else [flag, str(value)]
    return words
