"""CommonCrawl throughput and dedup memory, measured side by side in one run.

    .venv/bin/python bench/commoncrawl.py [--pages 40000] [--warc-pages 1000] [--hashes 2000000]
                                         [--repeats 3] [--no-datatrove]

Prints three tables:
1. dedup hash set: bytes per unique line hash kept between passes, the merge's CPU, and the
   heap of one merge process at its peak (tracemalloc; the merge runs in buckets of a bounded
   size), on `--hashes` random keys (CCNet's flat hash set needed about 27);
2. documents/s on one core for each stage over one generated WET file (the sample's page mix:
   articles of 2-3 KB with shared navigation, near-empty, German and French, spam, forum
   posts), end to end through `run_source` with one worker, against the library calls that
   run makes, on the arguments it makes them with, in a tight loop (`library_loop`: model
   loading, zlib, xxh3 and SHA-1 of dedup's hash pass, fastText language id, SentencePiece +
   KenLM, the classifier's fastText), with their ratio (target >= 0.85, issue #30). Each of
   the two runs in a new interpreter, timed there from after its imports and inputs, as a user
   starts `pipeline run` or a script (`in_fresh_process`); the same pair run in this bench's
   process is shown too, with the heap its workers inherit from it. And, as in earlier
   releases, lid + SentencePiece + KenLM on every line of every page (more pages and lines
   than the run scores, and none of its other calls);
3. WARC: our reader (resiliparse extraction) + language id against datatrove's WarcReader +
   Trafilatura + LanguageFilter on the same WARC file, one core each, and the ratio.

With `--real DIR` (default ../shared/realdata/commoncrawl when it exists) two more tables on
real third-party WARC and WET files:
4. main-content extraction on the real HTML pages: pages, pages of 300+ characters, body
   text kept and template lines removed (a template line: a line of the page's whole text
   found on two or more pages of its site; a body line: one found on no other), for our
   extraction, resiliparse's main content alone, the whole text, and datatrove's Trafilatura
   extractor when the bench extra is installed (the table says so when it is not);
5. our reader + language id over the real files against the bare library calls on the same
   records (FastWARC's ArchiveIterator, resiliparse's parse and the same two extractions,
   fastText predict), one core, and their ratio (target >= 0.85, issue #30).

datatrove is a benchmark-only peer (the `bench` extra: datatrove 0.10, plus warcio, trafilatura,
python-magic, faust-cchardet that its reader and extractor import, and fasteners that its
LanguageFilter requires); without it the peer rows are skipped with one line saying why. Its LanguageFilter would download
lid.176.bin; here it is given the same lid.176.ftz we use, wrapped so that fastText 0.9.3 with
numpy 2 accepts its one-string predict calls (one list of one string, the same C++ work).
Seconds are CPU seconds of this process and its forked workers (pipeline/engine/resources.py
cpu_seconds_with_children), so other programs on a shared machine do not count. Every timed
comparison runs its variants in turn, `--repeats` rounds; cells give min / median / max, with the
load average (bench/rounds.py).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import pickle
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import tracemalloc
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xxhash

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rounds import alternate, spread, table  # noqa: E402
from pipeline.commands.models import train_classifier, train_lm  # noqa: E402
from pipeline.commands.run import run_source  # noqa: E402
from pipeline.dedup.line import LineDedup  # noqa: E402
from pipeline.dedup.line_groups import BUCKET_KEYS, write_group_duplicates  # noqa: E402
from pipeline.text.normalize import dedup_lines  # noqa: E402
from pipeline.engine.document import Document  # noqa: E402
from pipeline.engine.resources import cpu_seconds_with_children  # noqa: E402
from pipeline.engine.shards import skip_pandas_probe  # noqa: E402
from pipeline.filters.langid import LanguageId, bundled_model_path, load_fasttext, one_line  # noqa: E402
from pipeline.filters.min_chars import MinChars  # noqa: E402
from pipeline.filters.perplexity import Perplexity, PerplexityBuckets, lm_sentences  # noqa: E402
from pipeline.filters.quality_classifier import ReferenceClassifier, classifier_text  # noqa: E402
from pipeline.formats.warc import http_html, iter_warc_records  # noqa: E402
from sources.commoncrawl import CommonCrawl, CommonCrawlConfig  # noqa: E402
from sources.samples import commoncrawl as sample  # noqa: E402

BATCH = 256
# A fresh interpreter's round (`in_fresh_process`) finds its inputs here, in the bench's work folder.
WET_NAME = "CC-MAIN-bench-00000.warc.wet.gz"
LIBRARY_INPUTS = "library-inputs.pickle"


# --- inputs and models ---------------------------------------------------------------------


def make_inputs(work: Path, pages: int, warc_pages: int) -> tuple[Path, Path, Path]:
    rng = random.Random(0)
    wet = work / "wet" / WET_NAME
    sample.write_members(wet, sample.wet_records(rng, web_pages(rng, pages)))
    warc = work / "warc" / "CC-MAIN-bench-00000.warc.gz"
    sample.write_members(warc, heavy_warc_records(rng, sample.sample_pages(rng, warc_pages)))
    models = work / "models"
    reference = work / "reference.jsonl"
    texts = [sample.encyclopedic(rng) for _ in range(3000)] + [sample.forum_post(rng, 4) for _ in range(1000)]
    reference.write_text("\n".join(json.dumps({"text": t}) for t in texts) + "\n")
    train_lm([str(reference)], models)
    train_classifier([str(reference)], [str(wet)], models)
    return wet, warc, models


def web_pages(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """The sample's page mix, with articles as long as a typical CommonCrawl page (2-3 KB of
    text; the sample keeps them short for tests). As on real pages, they are not all ASCII:
    the sample's articles open with a quote in curly quotes and an em dash, and its footers
    say © (sources/samples/commoncrawl.py article_page)."""
    nav_lines = {line for lines in sample.NAV.values() for line in lines}
    pages = []
    for url, text in sample.sample_pages(rng, count):
        lines = text.split("\n")
        if lines[0] in nav_lines and len(lines) > 3:  # an article: more paragraphs before the footer
            extra = [sample.paragraph(rng, rng.randint(4, 7)) for _ in range(2)]
            text = "\n".join(lines[:-1] + extra + [lines[-1]])
        pages.append((url, text))
    return pages


def heavy_html(rng: random.Random, title: str, text: str, site: str) -> str:
    """A page closer to a real one (tens of KB): menus, inline script and style, a sidebar
    of related links and comment markup around the article."""
    links = "".join(f"<li><a href='/section/{i}'>Section {i} {rng.choice(['news', 'sport', 'arts'])}</a></li>"
                    for i in range(150))
    script = "<script>" + "".join(f"var v{i} = {{id: {i}, name: 'widget{i}', on: true}};" for i in range(300)) + "</script>"
    style = "<style>" + "".join(f".c{i} {{ margin: {i}px; color: #{i:06x}; }}" for i in range(200)) + "</style>"
    related = "".join(f"<div class='card'><a href='/r/{i}'><img src='/i/{i}.jpg' alt='photo {i}'>"
                      f"<span>{sample.sentence(rng)}</span></a></div>" for i in range(30))
    paragraphs = "".join(f"<p>{line}</p>" for line in text.split("\n"))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>{style}{script}</head>"
            f"<body><header><nav><ul>{links}</ul></nav></header><div class='layout'>"
            f"<main><article><h1>{title}</h1>{paragraphs}</article></main>"
            f"<aside>{related}</aside></div><footer><p>{sample.FOOTER[site].format(year=2020)}</p>"
            f"<ul>{links}</ul></footer></body></html>")


def heavy_warc_records(rng: random.Random, pages: list[tuple[str, str]]) -> list[bytes]:
    records = []
    for url, text in pages:
        site = url.split("/")[2]
        html = heavy_html(rng, text.split("\n")[0][:60], text, site).encode()
        payload = sample.http_response(html, "text/html; charset=utf-8")
        records.append(sample.warc_record(rng, "response", url, payload, "application/http; msgtype=response",
                                          payload_type="text/html"))
    return records


# --- 1. dedup memory -----------------------------------------------------------------------


def dedup_memory(work: Path, unique: int) -> list[tuple]:
    """Random keys standing in for line hashes: 4 files, 10% of keys in two files."""
    rng = np.random.default_rng(0)
    keys = rng.integers(1, 2**63, size=unique, dtype=np.uint64)
    shared = keys[: unique // 10]
    partial = work / "dedup" / "partial"
    partial.mkdir(parents=True)
    files = np.array_split(keys, 4)
    index = {}
    for number, part in enumerate(files):
        mine = np.unique(np.concatenate([part, shared[number::4]]) if number % 2 else part)
        np.save(partial / f"{number}-keys.npy", mine)
        np.save(partial / f"{number}-repeated.npy", np.empty(0, dtype="<u8"))
        index[f"/f{number}"] = [number, ""]  # file key -> [partial number, snapshot]
    (partial / "index.json").write_text(json.dumps(index))
    artefact = work / "dedup" / "artefact"
    artefact.mkdir()
    stage = LineDedup()
    started = cpu_seconds_with_children()
    stage.merge([partial], artefact)  # in buckets, on as many processes as there are cores
    seconds = cpu_seconds_with_children() - started
    duplicates = np.load(artefact / "group-00000.npy")
    # The heap a merge process holds: the same group in one process, traced (tracemalloc does
    # not see into the processes the stage's merge forks).
    tracemalloc.start()
    write_group_duplicates([(partial, number) for number in range(len(files))], work / "dedup" / "one.npy")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return [
        ("unique line hashes", f"{unique:,}"),
        ("duplicate hashes (the set the filter pass holds)", f"{len(duplicates):,}"),
        ("bytes per hash in the kept set", f"{duplicates.nbytes / len(duplicates):.1f}"),
        ("merge peak of one process (tracemalloc): MB, and bytes per unique hash",
         f"{peak / 2**20:.0f} MB, {peak / unique:.1f} (buckets of about {BUCKET_KEYS:,} keys)"),
        ("merge CPU seconds (all its processes)", f"{seconds:.2f}"),
        ("CCNet (flat hash set), bytes per hash", "about 27"),
    ]


# --- 2. stages on one WET file -------------------------------------------------------------


def timed_batches(stage, docs: list[Document]) -> tuple[list[Document], float]:
    kept, seconds = [], 0.0
    for i in range(0, len(docs), BATCH):
        chunk = docs[i : i + BATCH]
        started = cpu_seconds_with_children()
        results = stage.process_batch(chunk)
        seconds += cpu_seconds_with_children() - started
        kept.extend(r for r in results if isinstance(r, Document))
    return kept, seconds


@dataclass
class LibraryInputs:
    """What herd's CommonCrawl run hands its libraries, captured while its stages run one by one
    over the WET file: the arguments of a bare loop of the same library calls."""

    wet: Path  # read and inflated (zlib), as the reader does
    pages: list[bytes]  # page texts hashed whole (xxh3-128), once: line dedup's filter pass reuses the hash
    lines: list[bytes]  # normal-form lines hashed (SHA-1), once: the filter pass reuses the keys
    lid: list[str]  # one line per page for fastText language id
    lm: list[str]  # normalised sentences for SentencePiece + KenLM
    lm_unknown: list[int]  # those holding a piece SentencePiece does not know: encoded again as strings
    classifier: list[str]  # the reference classifier's fastText input


def stage_rates(wet: Path, models: Path) -> tuple[list[tuple], list[Document], LibraryInputs]:
    source = CommonCrawl(CommonCrawlConfig(models_dir=str(models)))
    started = cpu_seconds_with_children()
    docs = [d for d in source.read(str(wet)) if isinstance(d, Document)]
    rows = [("read (gunzip + WET parse)", len(docs), cpu_seconds_with_children() - started)]
    raw = [Document(d.id, d.text, d.source, dict(d.meta)) for d in docs]
    # CCNet's order: the length floor before any line is hashed.
    floor = MinChars(300)
    n = len(docs)
    docs, seconds = timed_batches(floor, docs)
    rows.append((floor.name, n, seconds))

    pages = [d.text.encode("utf-8") for d in docs]
    lines = [line for d in docs for line in dedup_lines(d.text) if line]
    dedup = LineDedup()
    dedup.setup()
    work = Path(tempfile.mkdtemp(prefix="herd-bench-"))
    started = cpu_seconds_with_children()
    for i in range(0, len(docs), BATCH):  # keyed once, as the run keys each chunk before its parts
        dedup.annotate(docs[i : i + BATCH])
    dedup.collect(iter(docs), work / "partial")
    (work / "artefact").mkdir()
    dedup.merge([work / "partial"], work / "artefact")
    dedup.load(work / "artefact")
    rows.append(("line dedup, hash pass", len(docs), cpu_seconds_with_children() - started))
    current = docs
    captured: dict[str, list[str]] = {}
    for stage in [dedup, LanguageId(), Perplexity(str(models))]:
        if stage is not dedup:  # set up and loaded above
            stage.setup()
        if isinstance(stage, LanguageId):
            captured["lid"] = [one_line(d.text) for d in current]
        elif isinstance(stage, Perplexity):
            captured["lm"] = [s for d in current for s in lm_sentences(d.text)]
        n = len(current)
        current, seconds = timed_batches(stage, current)
        rows.append((stage.name if stage is not dedup else "line dedup, filter pass", n, seconds))
    buckets = PerplexityBuckets()
    started = cpu_seconds_with_children()
    buckets.collect(iter(current), work / "ppl")
    (work / "ppl-artefact").mkdir()
    buckets.merge([work / "ppl"], work / "ppl-artefact")
    buckets.load(work / "ppl-artefact")
    n = len(current)
    current, _ = timed_batches(buckets, current)
    rows.append(("perplexity buckets (both passes)", n, cpu_seconds_with_children() - started))
    classifier = ReferenceClassifier(str(models / "classifier.bin"))
    classifier.setup()
    captured["classifier"] = [classifier_text(d.text) for d in current]
    n = len(current)
    current, seconds = timed_batches(classifier, current)
    rows.append(("wiki classifier", n, seconds))
    shutil.rmtree(work, ignore_errors=True)
    # The run encodes a sentence with an unknown piece a second time, as strings, to score its
    # surface text (pipeline/filters/perplexity.py): found here with SentencePiece alone.
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(models / "en.sp.model"))
    unknown = [n for n, ids in enumerate(sp.encode(captured["lm"], num_threads=1)) if sp.unk_id() in ids]
    inputs = LibraryInputs(wet, pages, lines, captured["lid"], captured["lm"], unknown, captured["classifier"])
    return [(name, f"{n:,}", f"{s:.2f}", f"{n / s:,.0f}") for name, n, s in rows], raw, inputs


def library_loop(inputs: LibraryInputs, models: Path) -> float:
    """The library calls a herd run makes, on the arguments it makes them with, in a tight loop:
    seconds. Read the WET file and inflate its gzip members (zlib); hash every page text
    (xxh3-128) and every normal-form line (SHA-1) once, in line dedup's hash pass (its filter
    pass reads the keys the hash pass carried through the Arrow parts); fastText language id
    on every page dedup kept; SentencePiece ids looked up as pieces and KenLM on every sentence
    of the English pages (a sentence with a piece SentencePiece does not know is encoded again
    as strings, as the run scores its surface text); the reference classifier's fastText on the
    pages the buckets kept.
    Loading the four models is timed too, as it is in the run. Not included: the numpy sorts
    and searches of the dedup keys (milliseconds)."""
    import kenlm
    import sentencepiece

    started = cpu_seconds_with_children()
    lid = load_fasttext(bundled_model_path())
    classifier = load_fasttext(str(models / "classifier.bin"))
    sp = sentencepiece.SentencePieceProcessor(model_file=str(models / "en.sp.model"))
    lm = kenlm.Model(str(models / "en.arpa.bin"))
    table = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    data = memoryview(inputs.wet.read_bytes())
    member = zlib.decompressobj(zlib.MAX_WBITS | 16)
    for start in range(0, len(data), 1 << 16):  # one gzip member per record: fed in windows, so
        window = data[start : start + (1 << 16)]  # that a member's end leaves little unused data
        while window:
            member.decompress(window)
            if not member.eof:
                break
            window = member.unused_data
            member = zlib.decompressobj(zlib.MAX_WBITS | 16)
    sha1, xxh = hashlib.sha1, xxhash.xxh3_128_digest
    for page in inputs.pages:
        xxh(page)
    for line in inputs.lines:
        sha1(line).digest()
    for i in range(0, len(inputs.lid), BATCH):
        lid.predict(inputs.lid[i : i + BATCH], k=1)
    sentences = []
    for i in range(0, len(inputs.lm), BATCH * 16):
        encoded = sp.encode(inputs.lm[i : i + BATCH * 16], num_threads=1)
        sentences += [" ".join([table[j] for j in ids]) for ids in encoded]
    again = sp.encode([inputs.lm[n] for n in inputs.lm_unknown], out_type=str, num_threads=1)
    for n, pieces in zip(inputs.lm_unknown, again):
        sentences[n] = " ".join(pieces)
    for sentence in sentences:
        lm.score(sentence)
    for i in range(0, len(inputs.classifier), BATCH):
        classifier.predict(inputs.classifier[i : i + BATCH], k=2)
    return cpu_seconds_with_children() - started


def bare_loop(texts: list[str], models: Path, via_ids: bool) -> float:
    """fastText predict + SentencePiece encode + KenLM score of every text: seconds. Pieces
    as strings from SentencePiece (CCNet's calls), or `via_ids`: ids looked up in a piece
    table (the faster calls our perplexity stage makes)."""
    import kenlm
    import sentencepiece

    lid = load_fasttext(bundled_model_path())
    sp = sentencepiece.SentencePieceProcessor(model_file=str(models / "en.sp.model"))
    lm = kenlm.Model(str(models / "en.arpa.bin"))
    table = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    started = cpu_seconds_with_children()
    for i in range(0, len(texts), BATCH):
        chunk = texts[i : i + BATCH]
        lid.predict([one_line(t) for t in chunk], k=1)
        lines = [line for t in chunk for line in t.split("\n") if line]
        if via_ids:
            for ids in sp.encode(lines, num_threads=1):
                lm.score(" ".join([table[j] for j in ids]))
        else:
            for pieces in sp.encode(lines, out_type=str, num_threads=1):
                lm.score(" ".join(pieces))
    return cpu_seconds_with_children() - started


E2E_BY_PASS: list[list[float]] = []  # each fresh end-to-end round's task CPU by pass (timings.json)


def end_to_end(wet: Path, models: Path, work: Path) -> tuple[int, float, list[float]]:
    """`run_source` over the WET file with one worker: documents read, CPU seconds (this process's
    and its workers'), and the worker's CPU by pass."""
    skip_pandas_probe()  # as the `pipeline run` command's process does before its run (a no-op after the first)
    source = CommonCrawl(CommonCrawlConfig(models_dir=str(models)))
    shutil.rmtree(work, ignore_errors=True)
    started = cpu_seconds_with_children()
    report = run_source(source, str(wet.parent), str(work / "corpus"), workers=1, show_progress=False)
    seconds = cpu_seconds_with_children() - started
    timings = json.loads((work / "corpus" / source.name / "timings.json").read_text())
    return report.stats["documents_read"], seconds, timings["task_cpu_seconds_by_pass"]


def in_fresh_process(what: str, work: Path) -> tuple[int, float]:
    """One round of `what` in a new interpreter, timed there from after its imports and its inputs
    are loaded, as `pipeline run` and a hand-written script each start: "e2e" (`end_to_end`, whose
    pass times join E2E_BY_PASS) or "calls" (`library_loop` on the inputs `stage_rates` captured,
    saved in `work`). Run in this process instead, either would start from this bench's heap: the
    captured inputs, every page and line of the WET file (about 300 MB at 40,000 pages), which
    `end_to_end`'s forked workers inherit and no run a user starts has. Measured so, both take
    more CPU and vary more: on 2 cores, end to end 9.2-12.0 s against 8.3-8.9 s in a process
    forked before the inputs were made, every pass slower, in alternating rounds."""
    done = subprocess.run([sys.executable, __file__, "--one", what, "--work", str(work)], check=True,
                          capture_output=True, text=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    if what == "e2e":
        E2E_BY_PASS.append(measured["by_pass"])
    return measured["documents"], measured["seconds"]


def one_round(what: str, work: Path) -> dict:
    """`in_fresh_process`'s side: the round measured in this (new) process."""
    wet, models = work / "wet" / WET_NAME, work / "models"
    if what == "e2e":
        documents, seconds, by_pass = end_to_end(wet, models, work / "run")
        return {"documents": documents, "seconds": seconds, "by_pass": by_pass}
    inputs = LibraryInputs(**pickle.loads((work / LIBRARY_INPUTS).read_bytes()))
    return {"documents": len(inputs.lid), "seconds": library_loop(inputs, models)}


# --- 3. WARC against datatrove ---------------------------------------------------------------


def ours_warc(warc: Path) -> tuple[int, int, float]:
    source = CommonCrawl()
    lid = LanguageId()
    lid.setup()
    started = cpu_seconds_with_children()
    read = kept = 0
    batch: list[Document] = []
    for item in source.read(str(warc)):
        if isinstance(item, Document):
            read += 1
            batch.append(item)
            if len(batch) == BATCH:
                kept += sum(isinstance(r, Document) for r in lid.process_batch(batch))
                batch = []
    kept += sum(isinstance(r, Document) for r in lid.process_batch(batch))
    return read, kept, cpu_seconds_with_children() - started


def datatrove_warc(warc: Path, work: Path) -> tuple[int, int, float]:
    from datatrove.utils import _import_utils

    # datatrove insists on the `fasttext-numpy2-wheel` distribution, a fork that installs the
    # same `fasttext` module over ours; the bench keeps our fasttext and skips that check.
    real_check = _import_utils._is_distribution_available
    _import_utils._is_distribution_available = lambda name: name == "fasttext-numpy2-wheel" or real_check(name)

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import LanguageFilter
    from datatrove.pipeline.readers import WarcReader  # 0.10 moved the readers out of pipeline.formats
    from datatrove.utils import lid as dt_lid

    class OneStringModel:
        """lid.176.ftz behind datatrove's `model.predict(str, k)` call."""

        def __init__(self) -> None:
            self.model = load_fasttext(bundled_model_path())

        def predict(self, text: str, k: int = 1):
            labels, scores = self.model.predict([text], k=k)
            return labels[0], scores[0]

    shared = OneStringModel()
    dt_lid.FT176LID.model = property(lambda self: shared)
    counts = {}

    def count(data, rank: int = 0, world_size: int = 1):
        n = 0
        for _ in data:
            n += 1
        counts["kept"] = n
        return iter(())

    pipeline = [WarcReader(str(warc.parent), glob_pattern="*.warc.gz"), Trafilatura(favour_precision=True),
                LanguageFilter(languages=["en"]), count]
    # A logging folder of its own for every run: datatrove skips the tasks a folder records as
    # done, and a second round would measure nothing.
    logs = Path(tempfile.mkdtemp(prefix="dt-logs-", dir=work))
    executor = LocalPipelineExecutor(pipeline=pipeline, tasks=1, workers=1, logging_dir=str(logs))
    started = cpu_seconds_with_children()
    executor.run()
    seconds = cpu_seconds_with_children() - started
    shutil.rmtree(logs, ignore_errors=True)
    if "kept" not in counts:
        raise SystemExit("datatrove ran no task: the comparison would time nothing")
    read = sum(1 for item in CommonCrawl().read(str(warc)) if isinstance(item, Document))
    return read, counts["kept"], seconds


def datatrove_missing() -> str | None:
    """Why datatrove cannot run here (one line), or None: it, or a package its WARC reader,
    extractor or LanguageFilter imports, is not installed."""
    for module in ("datatrove", "warcio", "trafilatura", "magic", "cchardet", "fasteners"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (the bench extra, locked: ./install.sh --bench)"
    return None


def datatrove_in_fresh_process(warc: Path, work: Path) -> tuple[int, int, float]:
    """datatrove forks a sandbox per extractor; forking this process (threads of pyarrow,
    fastText, tqdm already started) can hang the child, so datatrove runs in its own."""
    import subprocess

    run = subprocess.run([sys.executable, __file__, "--datatrove-only", str(warc), str(work)],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"datatrove run failed: {run.stderr.strip()[-2000:]}")
    return tuple(json.loads(run.stdout.strip().splitlines()[-1]))


# --- 4 and 5. real WARC and WET files ---------------------------------------------------------

REAL_DEFAULT = Path(__file__).resolve().parents[1] / "../shared/realdata/commoncrawl"


def real_html_pages(folder: Path) -> list[tuple[str, str]]:
    """(site, HTML) of every 200 HTML response in the real WARC files."""
    from urllib.parse import urlsplit

    pages = []
    for path in sorted(folder.glob("*.warc.gz")):
        for record in iter_warc_records(str(path)):
            if getattr(record, "type", "") != "response":
                continue
            page = http_html(record.body)
            if isinstance(page, tuple):
                url = record.headers.get("warc-target-uri", "").strip("<>")
                pages.append(((urlsplit(url).hostname or "").removeprefix("www."), page[0]))
    return pages


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def extraction_rows(pages: list[tuple[str, str]]) -> list[tuple]:
    from collections import Counter

    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    from pipeline.text.html import html_page_to_text

    whole = [_lines(extract_plain_text(HTMLTree.parse(h), main_content=False, alt_texts=False)) for _, h in pages]
    on_pages = Counter((site, line) for (site, _), lines in zip(pages, whole) for line in set(lines))
    methods = {
        "ours: main content, whole text under 25%": lambda h: html_page_to_text(h)[1],
        "resiliparse main content alone": lambda h: extract_plain_text(HTMLTree.parse(h), main_content=True,
                                                                        alt_texts=False),
        "resiliparse whole text": lambda h: extract_plain_text(HTMLTree.parse(h), main_content=False, alt_texts=False),
    }
    try:
        from datatrove.pipeline.extractors import Trafilatura

        extractor = Trafilatura(favour_precision=True)
        methods["datatrove Trafilatura (favour_precision)"] = lambda h: extractor.extract(h) or ""
        missing = ""
    except ImportError as e:
        missing = f"datatrove Trafilatura: not installed ({e.name}); ./install.sh --bench for this row"
    rows = []
    for name, extract in methods.items():
        body = body_kept = template = template_removed = long_pages = 0
        for (site, html), lines in zip(pages, whole):
            out = set(_lines(extract(html)))
            long_pages += sum(map(len, out)) >= 300
            for line in lines:
                if on_pages[(site, line)] >= 2:
                    template += 1
                    template_removed += line not in out
                else:
                    body += len(line)
                    body_kept += len(line) if line in out else 0
        rows.append((name, len(pages), long_pages, f"{body_kept / body:.1%}", f"{template_removed / template:.1%}"))
    if missing:
        rows.append((missing, "", "", "", ""))
    return rows


def real_throughput(folder: Path, repeats: int) -> dict[str, list[tuple[int, float]]]:
    """(pages, seconds) of our reader + langid and of the bare library calls, `repeats` rounds in turn."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    files = sorted(folder.glob("*.warc.gz")) + sorted(folder.glob("*.wet.gz"))
    lid = LanguageId()
    lid.setup()
    model = load_fasttext(bundled_model_path())

    def ours() -> int:
        pages = 0
        for path in files:
            batch = [d for d in CommonCrawl().read(str(path)) if isinstance(d, Document)]
            lid.process_batch(batch)
            pages += len(batch)
        return pages

    def bare() -> int:
        pages = 0
        for path in files:
            texts = []
            with open(path, "rb") as f:
                for record in ArchiveIterator(f, record_types=WarcRecordType.response | WarcRecordType.conversion,
                                              parse_http=True):
                    if record.record_type == WarcRecordType.conversion:
                        texts.append(record.reader.read().decode("utf-8", "replace"))
                        continue
                    if record.http_headers is None or record.http_headers.status_code != 200 \
                            or "html" not in (record.http_content_type or ""):
                        continue
                    tree = HTMLTree.parse(record.reader.read().decode("utf-8", "replace"))
                    main = extract_plain_text(tree, main_content=True, alt_texts=False)
                    extract_plain_text(tree, main_content=False, alt_texts=False)
                    texts.append(main)
            model.predict([one_line(t) for t in texts], k=1)
            pages += len(texts)
        return pages

    def timed(run) -> tuple[int, float]:  # noqa: ANN001
        started = cpu_seconds_with_children()
        pages = run()
        return pages, cpu_seconds_with_children() - started

    return alternate({"ours: reader + langid": lambda: timed(ours),
                      "bare: FastWARC + resiliparse (same 2 extractions) + fastText": lambda: timed(bare)}, repeats)


def real_tables(folder: Path, repeats: int) -> None:
    pages = real_html_pages(folder)
    table(f"main-content extraction on the {len(pages)} real HTML pages of {folder} (template: a whole-text line "
          "on 2+ pages of its site)", ("extraction", "pages", "300+ chars", "body text kept", "template lines removed"),
          extraction_rows(pages), 1)
    rounds = max(repeats, 5)
    runs = real_throughput(folder, rounds)
    table(f"the real WARC and WET files of {folder}; one core", ("pipeline", "pages", "seconds", "pages/s"),
          [(name, f"{m[0][0]:,}", spread([s for _, s in m], ".3f"), spread([n / s for n, s in m], ",.0f"))
           for name, m in runs.items()], rounds)
    ours_rate, bare_rate = (statistics.median(n / s for n, s in m) for m in runs.values())
    read, bare_read = (m[0][0] for m in runs.values())
    # Pages per second, not seconds: FastWARC reads fewer pages (it does not parse the bare-LF
    # HTTP headers of the ClueWeb09 file, so those pages never reach the extraction).
    print(f"\n  ours / bare library calls on real files, median pages/s: {ours_rate / bare_rate:.2f} "
          f"(target >= 0.85; the bare loop reads {bare_read} of the {read} pages)")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--datatrove-only":
        print(json.dumps(datatrove_warc(Path(sys.argv[2]), Path(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=40000, help="pages in the WET file (default %(default)s, about a real WET file)")
    parser.add_argument("--warc-pages", type=int, default=1000, help="HTML pages in the WARC file")
    parser.add_argument("--hashes", type=int, default=2_000_000, help="unique hashes for the memory table")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds of every timed comparison "
                        "(default %(default)s)")
    parser.add_argument("--no-datatrove", action="store_true", help="skip the datatrove comparison")
    parser.add_argument("--real", default=str(REAL_DEFAULT) if REAL_DEFAULT.exists() else "",
                        help="folder of real WARC/WET files for tables 4 and 5 (default %(default)s)")
    parser.add_argument("--real-only", action="store_true", help="only the tables on the real files")
    parser.add_argument("--one", choices=("e2e", "calls"), help=argparse.SUPPRESS)  # internal: in_fresh_process
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_round(args.one, Path(args.work))))
        return
    if args.real:
        real_tables(Path(args.real), args.repeats)
    elif args.real_only:
        raise SystemExit("--real-only needs --real DIR (no ../shared/realdata/commoncrawl here)")
    if args.real_only:
        return
    work = Path(tempfile.mkdtemp(prefix="herd-bench-cc-"))
    try:
        table("dedup hash set", ("measure", "value"), dedup_memory(work, args.hashes), 1)
        wet, warc, models = make_inputs(work, args.pages, args.warc_pages)
        rows, docs, inputs = stage_rates(wet, models)
        (work / LIBRARY_INPUTS).write_bytes(pickle.dumps(vars(inputs)))
        stages_seconds = sum(float(row[2]) for row in rows)
        texts = [d.text for d in docs]
        e2e_name, calls_name = "end to end: run_source, 1 worker", "bare: the library calls herd makes, on its arguments"
        every_ccnet = "bare, every page: lid + sp pieces + kenlm (CCNet calls)"
        every_ours = "bare, every page: lid + sp ids->pieces + kenlm (our calls)"
        warm = " (in this bench's process)"
        runs = alternate({
            e2e_name: lambda: in_fresh_process("e2e", work),
            calls_name: lambda: in_fresh_process("calls", work),
            e2e_name + warm: lambda: end_to_end(wet, models, work / "run")[:2],
            calls_name + warm: lambda: (len(inputs.lid), library_loop(inputs, models)),
            every_ccnet: lambda: (len(texts), bare_loop(texts, models, via_ids=False)),
            every_ours: lambda: (len(texts), bare_loop(texts, models, via_ids=True)),
        }, args.repeats)
        mean_chars = sum(map(len, texts)) / len(texts)
        for name, measured in runs.items():
            rows.append((name, f"{measured[0][0]:,}", spread([s for _, s in measured]),
                         spread([n / s for n, s in measured], ",.0f")))
        table(f"one WET file, {len(texts):,} pages of {mean_chars:,.0f} characters on average; one core; the first "
              "two timed rows each in a new process, from after its imports and inputs",
              ("stage", "docs in", "seconds", "docs/s"), rows, args.repeats)
        medians = {name: statistics.median(s for _, s in measured) for name, measured in runs.items()}
        e2e, bare, bare_ids = medians[e2e_name], medians[every_ccnet], medians[every_ours]

        def ratio(e2e_runs: list, calls_runs: list) -> float:  # median of the rounds' ratios
            return statistics.median(c / e for (_, e), (_, c) in zip(e2e_runs, calls_runs))

        print(f"\n  end to end / the library calls it makes (median of the rounds' ratios): "
              f"{ratio(runs[e2e_name], runs[calls_name]):.2f} (target >= 0.85), each in a new process; "
              f"{ratio(runs[e2e_name + warm], runs[calls_name + warm]):.2f} both in this bench's process, whose "
              "heap (the captured inputs) the run's forked workers inherit")
        print(f"  end to end / every page's lid + SentencePiece + KenLM (medians): {bare / e2e:.2f} with CCNet's calls, "
              f"{bare_ids / e2e:.2f} with ours: these score every line of every page (herd scores the English "
              "pages' lines left after dedup) and leave out reading, dedup hashing and the classifier")
        print(f"  the stages' rows above add up to {stages_seconds:.2f} s: the other {e2e - stages_seconds:.2f} s of the "
              "end to end median are the engine's (passes through Arrow parts, shard writing, set-up, workers)")
        passes = [statistics.median(p[i] for p in E2E_BY_PASS) for i in range(len(E2E_BY_PASS[0]))]
        print(f"  end to end, the worker's CPU by pass (timings.json, medians): {' + '.join(f'{p:.2f}' for p in passes)} "
              f"= {sum(passes):.2f} s (1: read, 300 characters, dedup's hash pass; 2: dedup's filter, language id, "
              "perplexity; 3: buckets, classifier, shards); the rest of the run is the parent's and the workers' start")

        warc_variants = {"ours: reader (resiliparse) + langid": lambda: ours_warc(warc)}
        missing = None if args.no_datatrove else datatrove_missing()
        if not args.no_datatrove and missing is None:
            warc_variants["datatrove: WarcReader + Trafilatura + LanguageFilter"] = (
                lambda: datatrove_in_fresh_process(warc, work))
        warc_runs = alternate(warc_variants, args.repeats)
        table(f"one WARC file, {args.warc_pages:,} HTML pages; one core", ("pipeline", "pages", "kept en",
              "seconds", "pages/s"), [(name, f"{m[0][0]:,}", f"{m[0][1]:,}", spread([x[2] for x in m]),
                                       spread([x[0] / x[2] for x in m], ",.0f")) for name, m in warc_runs.items()],
              args.repeats)
        if missing is not None:
            print(f"\n  datatrove comparison skipped: {missing}")
        elif len(warc_runs) == 2:
            ours_rate, theirs_rate = (statistics.median(x[0] / x[2] for x in m) for m in warc_runs.values())
            print(f"\n  ours / datatrove (median pages/s): {ours_rate / theirs_rate:.1f}x (target >= 1.5)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
