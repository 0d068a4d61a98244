"""Book near-duplicate detector: measured precision and recall on generated pairs from 50% to
99% word overlap, for both ways books differ (scattered word edits, shared passages), and the
throughput of the Wikipedia, Books and ArXiv sources in MB/s per core.

    .venv/bin/python bench/near_dedup.py [--pairs 8] [--words 6000] [--rounds 3] [--inputs 1.0]

A pair is a true near-duplicate when its overlap is above 90% (the paper's rule); the detector
is the one the books source runs (LSH candidates, then the word-overlap estimate), so a pair
counts as detected when `choose_survivors` drops one of the two. Throughput runs the sources in
turn, `--rounds` times: min / median / max and the load average (bench/rounds.py).
bench/sources.py calls `main()`.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.engine.resources import cpu_seconds_with_children  # noqa: E402
from bench.rounds import alternate, spread, table  # noqa: E402
from pipeline.dedup.near import OVERLAP_THRESHOLD, Signer, choose_survivors  # noqa: E402
from sources.samples.books import book_text, change_words, share_paragraphs  # noqa: E402

OVERLAPS = [0.5, 0.6, 0.7, 0.8, 0.85, 0.88, 0.9, 0.92, 0.95, 0.97, 0.99]
KINDS = {"word edits": change_words, "shared passages": share_paragraphs}


def detector_table(pairs: int = 8, words: int = 6000, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    signer = Signer()
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    rows = []
    for overlap in OVERLAPS:
        detected = {}
        for kind, make in KINDS.items():
            hits = 0
            for _ in range(pairs):
                original = book_text(rng, words)
                copy = make(original, 1 - overlap, rng) if kind == "word edits" else make(original, overlap, rng)
                found = bool(choose_survivors(["a", "b"], [signer.sign(original), signer.sign(copy)]))
                hits += found
                truth = overlap > OVERLAP_THRESHOLD
                counts[("tp" if found else "fn") if truth else ("fp" if found else "tn")] += 1
            detected[kind] = hits
        rows.append(f"{overlap:>7.0%} {detected['word edits']:>6}/{pairs:<3} {detected['shared passages']:>10}/{pairs:<3}"
                    f" {'remove' if overlap > OVERLAP_THRESHOLD else 'keep':>8}")
    # Unrelated books: never removed.
    unrelated = sum(bool(choose_survivors(["a", "b"], [signer.sign(book_text(rng, words)), signer.sign(book_text(rng, words))]))
                    for _ in range(pairs))
    counts["fp"] += unrelated
    counts["tn"] += pairs - unrelated
    precision = counts["tp"] / max(1, counts["tp"] + counts["fp"])
    recall = counts["tp"] / max(1, counts["tp"] + counts["fn"])
    lines = [
        f"near-duplicate detector: pairs of {words:,}-word books, {pairs} pairs per cell, removed when overlap > 90%",
        f"{'overlap':>7} {'word edits':>10} {'shared passages':>15} {'should':>8}",
        *rows,
        f"{'0%':>7} unrelated books removed: {unrelated}/{pairs}",
        f"precision {precision:.3f}  recall {recall:.3f}  "
        f"(tp {counts['tp']}, fp {counts['fp']}, fn {counts['fn']}, tn {counts['tn']})",
    ]
    return lines


def throughput_table(rounds: int, inputs: float = 1.0) -> None:
    """MB/s per core of each source's reader and stages (one worker, CPU with the forked worker's),
    on generated inputs (`inputs` of 3,000 Wikipedia pages, 24 books and 300 papers: the test
    suite's smoke run takes a twentieth); the sources in turn, `rounds` times."""
    from pipeline.commands.run import run_source
    from sources.arxiv import ArXiv
    from sources.books import Books
    from sources.samples import arxiv as arxiv_sample
    from sources.samples import wikipedia as wiki_sample
    from sources.samples.books import gutenberg_file
    from sources.wikipedia import Wikipedia

    work = Path(tempfile.mkdtemp(prefix="herd-bench-"))
    rows = []
    try:
        rng = random.Random(1)
        wiki = work / "wikipedia"
        wiki.mkdir()
        pages = [wiki_sample.Page(f"Place {i}", wiki_sample.generated_article(rng, f"Place {i}") * 3, i)
                 for i in range(1, max(1, round(3000 * inputs)) + 1)]
        wiki_sample.write_dump(wiki / "enwiki-20220701-pages-articles.xml.bz2", "en", pages)
        books = work / "books" / "gutenberg"
        books.mkdir(parents=True)
        for i in range(max(1, round(24 * inputs))):
            (books / f"pg{i}.txt").write_text(gutenberg_file(f"Book {i}", "A", i, book_text(rng, 30000)))
        arxiv = work / "arxiv"
        arxiv.mkdir()
        for i in range(max(1, round(300 * inputs))):
            main = arxiv_sample.paper_main(rng) + "\n".join(arxiv_sample.paragraph(rng) for _ in range(20))
            files = [("main.tex", main.encode()), ("sections/intro.tex", arxiv_sample.paragraph(rng).encode())]
            (arxiv / f"2101.{i:05d}.tar.gz").write_bytes(arxiv_sample.tar_gz(files))
        runs_of = {"wikipedia": (Wikipedia(), wiki), "books": (Books(), work / "books"), "arxiv": (ArXiv(), arxiv)}

        def run(source, folder: Path) -> tuple[int, float]:  # noqa: ANN001
            shutil.rmtree(work / "out", ignore_errors=True)
            cpu = cpu_seconds_with_children()
            report = run_source(source, str(folder), str(work / "out"), workers=1, show_progress=False)
            return report.stats["documents_read"], cpu_seconds_with_children() - cpu

        runs = alternate({name: lambda pair=pair: run(*pair) for name, pair in runs_of.items()}, rounds)
        for name, measured in runs.items():
            source, folder = runs_of[name]
            chars = _text_bytes(source, str(folder))
            rows.append([name, f"{measured[0][0]:,}", f"{chars / 1e6:.1f}", spread([s for _, s in measured]),
                         spread([chars / 1e6 / s for _, s in measured])])
    finally:
        shutil.rmtree(work)
    table("source throughput, 1 worker (MB of raw document text read per CPU second)",
          ["source", "docs", "MB", "CPU s (with workers)", "MB/s/core"], rows, rounds)


def _text_bytes(source, root: str) -> int:
    """UTF-8 bytes of the documents the reader yields (before any stage)."""
    from pipeline.engine.document import Document

    return sum(len(item.text.encode()) for path in source.list_inputs(root) for item in source.read(path)
               if isinstance(item, Document))


def report(pairs: int = 8, words: int = 6000, throughput: bool = True, rounds: int = 3, inputs: float = 1.0) -> None:
    print("\n".join(detector_table(pairs, words)))  # counts, not timings: one round says it all
    if throughput:
        throughput_table(rounds, inputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--words", type=int, default=6000)
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the throughput runs (default %(default)s)")
    parser.add_argument("--inputs", type=float, default=1.0,
                        help="share of the throughput inputs to generate (default %(default)s: 3,000 Wikipedia pages, "
                        "24 books, 300 papers)")
    args = parser.parse_args()
    if not 0 < args.inputs <= 100:
        parser.error(f"--inputs must be in (0, 100], got {args.inputs}")
    report(args.pairs, args.words, not args.no_throughput, args.rounds, args.inputs)


if __name__ == "__main__":
    main()
