"""Throughput of every source on its generated sample, and C4's quality filter against datatrove's.

For each source with a sample writer (sources/samples/<source>.py) and a source module: write
the sample (`--copies` times with different seeds, side by side, so fixed costs do not
dominate), run the whole pipeline with one worker through `pipeline.commands.run.run_source`, and print
MB/s per core of raw input (decompressed bytes of every input file). Then time the C4 quality
rules on the C4 sample's documents against datatrove's C4QualityFilter on the same documents,
and print the ratio (above 1.0: faster than datatrove) and how often both decide alike.
Finally, if bench/near_dedup.py exists, its `main()` adds its section, so one command prints
everything. The machine may be shared: figures are rough.

Every run is repeated `--rounds` times, the variants in turn; cells give min / median / max,
with the load average. CPU seconds count the forked worker that does a run's work.

    .venv/bin/python bench/sources.py [--copies 10] [--sources c4 github ...] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import importlib.util
import inspect
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.engine.resources import cpu_seconds_with_children  # noqa: E402
from bench.rounds import alternate, spread, table  # noqa: E402
from pipeline.commands.run import run_source  # noqa: E402
from pipeline.common.errors import UserError  # noqa: E402
from pipeline.engine.document import Document  # noqa: E402
from pipeline.engine.source import Source  # noqa: E402
from pipeline.filters.c4_quality import C4Thresholds, clean_page  # noqa: E402
from pipeline.corpus.mixture import LLAMA1  # noqa: E402
from pipeline.commands.sample import write_samples  # noqa: E402


def raw_bytes(path: Path) -> int:
    """Decompressed size of one input file (what a reader actually has to get through)."""
    name = path.name.lower()
    if name.endswith(".gz"):
        try:
            with gzip.open(path, "rb") as f:
                return sum(len(chunk) for chunk in iter(lambda: f.read(1 << 20), b""))
        except Exception:  # a deliberately truncated or corrupt sample file
            return path.stat().st_size
    if name.endswith(".bz2"):
        import bz2

        try:
            return len(bz2.decompress(path.read_bytes()))
        except Exception:
            return path.stat().st_size
    if name.endswith(".7z"):
        import py7zr

        try:
            with py7zr.SevenZipFile(path) as archive:
                return sum(info.uncompressed or 0 for info in archive.list())
        except Exception:  # a deliberately truncated sample archive
            return path.stat().st_size
    return path.stat().st_size


def _with_copy_suffix(name: str, copy: int) -> str:
    """`c4-train.00000.json.gz` -> `c4-train-c1.00000.json.gz`: a unique name that still
    matches the source's patterns (suffixes and name prefixes are kept)."""
    stem, dot, rest = name.partition(".")
    return f"{stem}-c{copy}{dot}{rest}"


# Wikipedia page ids of copy k are moved up by k times this: far above any sample's ids.
PAGE_ID_STRIDE = 10_000_000
PAGE_ID = re.compile(rb"(<page>\s*<title>[^<]*</title>\s*<ns>[^<]*</ns>\s*<id>)(\d+)(</id>)")


def write_copies(name: str, root: Path, copies: int) -> Path:
    """`copies` samples of `name` side by side in `root/name`, each written with its own seed and
    given ids of its own: documents of two copies never share an id (the engine refuses a run
    where they do), so the copies are read as that many times the documents."""
    target = root / name
    for copy in range(copies):
        staging = root / f"_copy{copy}"
        write_samples(staging, [name], seed=copy)
        if copy > 0:
            _fresh_ids(name, staging / name, copy)
        for entry in sorted((staging / name).iterdir()):
            dest = target / (entry.name if copy == 0 else _with_copy_suffix(entry.name, copy))
            target.mkdir(parents=True, exist_ok=True)
            shutil.move(str(entry), dest)
        shutil.rmtree(staging)
    return target


def _fresh_ids(name: str, folder: Path, copy: int) -> None:
    """Make the ids of a copy its own where the sample's ids do not follow from file names, which
    write_copies already makes unique: Wikipedia's come from each page's <id>, arXiv's folders of
    .tex files from the paper folder's name one level down."""
    if name == "wikipedia":
        for path in sorted(folder.glob("*.xml*")):
            _shift_page_ids(path, copy * PAGE_ID_STRIDE)
    elif name == "arxiv":
        for paper in sorted(p for p in folder.glob("*/*") if p.is_dir()):
            paper.rename(paper.with_name(_with_copy_suffix(paper.name, copy)))


def _shift_page_ids(path: Path, offset: int) -> None:
    """Add `offset` to every page id of a MediaWiki XML file (.xml, or .xml.bz2 of one stream or
    many, as multistream dumps are). A cut .bz2 (a deliberately truncated sample) stays cut: its
    last stream is cut again. A copy's name is no multistream dump's name (write_copies renames
    it), so it is read whole whatever its streams."""
    import bz2

    data = path.read_bytes()
    if path.suffix != ".bz2":
        path.write_bytes(_shift_ids(data, offset))
        return
    streams: list[bytes] = []  # each bz2 stream's text, rewritten and packed again one by one
    rest, cut = data, False
    while rest:
        stream = bz2.BZ2Decompressor()
        try:
            streams.append(stream.decompress(rest))
        except OSError:
            return  # not bz2 data: its ids are never read
        if not stream.eof:
            cut = True
            break
        rest = stream.unused_data
    packed = [bz2.compress(_shift_ids(text, offset)) for text in streams]
    if cut:  # the last stream stays cut, as the sample cut it: the pages before it are still read
        packed[-1] = packed[-1][: len(packed[-1]) // 2]
    path.write_bytes(b"".join(packed))


def _shift_ids(xml: bytes, offset: int) -> bytes:
    return PAGE_ID.sub(lambda m: m[1] + str(int(m[2]) + offset).encode() + m[3], xml)


def prepare_source(name: str, copies: int, work: Path) -> tuple[Source, Path, int] | str:
    """(source, inputs, input bytes) of `copies` samples of `name` in `work`, or why not."""
    from pipeline.engine.registry import source_class

    try:
        source = source_class(name)()
    except UserError as e:
        return str(e)
    try:
        inputs = write_copies(name, work / "raw", copies)
    except (UserError, ModuleNotFoundError) as e:
        return f"no sample writer ({e})"
    size = sum(raw_bytes(Path(p)) for p in source.list_inputs(str(inputs)))
    return with_models(source, inputs, work / "models"), inputs, size


def run_once(source: Source, inputs: Path, out: Path) -> tuple[int, int, float, float] | str:
    """(documents read, kept, wall seconds, CPU seconds of this process and its workers), or why not."""
    shutil.rmtree(out, ignore_errors=True)
    cpu, started = cpu_seconds_with_children(), time.perf_counter()
    try:
        report = run_source(source, str(inputs), str(out), workers=1, show_progress=False)
    except UserError as e:  # e.g. a model the source needs has not been trained here
        return str(e)
    return report.stats["documents_read"], report.documents_kept, time.perf_counter() - started, cpu_seconds_with_children() - cpu


def with_models(source: Source, inputs: Path, models: Path) -> Source:
    """CommonCrawl's filters need a perplexity model and a reference classifier: train them
    (untimed) from the sample's stand-in reference pages, as the README's main job does."""
    if source.name != "commoncrawl":
        return source
    from pipeline.commands.models import train_classifier, train_lm

    reference = sorted(str(p) for p in inputs.glob("reference*/*") if p.is_file())
    train_lm(reference, models)
    train_classifier(reference, [str(inputs)], models)
    return type(source)(dataclasses.replace(source.config, models_dir=str(models)))


def sources_table(names: list[str], copies: int, rounds: int) -> None:
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-sources-") as tmp:
        prepared = {name: prepare_source(name, copies, Path(tmp) / name) for name in names}
        ready = {name: p for name, p in prepared.items() if not isinstance(p, str)}
        runs = alternate({name: lambda name=name: run_once(ready[name][0], ready[name][1], Path(tmp) / name / "out")
                          for name in ready}, rounds)
    for name in names:
        failed = prepared[name] if isinstance(prepared[name], str) else next(
            (r for r in runs[name] if isinstance(r, str)), None)
        if failed is not None:
            rows.append([name, f"not measured: {failed}", "", "", "", "", ""])
            continue
        size = ready[name][2]
        read, kept = runs[name][0][0], runs[name][0][1]
        rows.append([name, f"{size / 1e6:.2f}", f"{read:,}", f"{kept:,}", spread([r[2] for r in runs[name]]),
                     spread([r[3] for r in runs[name]]), spread([size / 1e6 / r[3] for r in runs[name]])])
    table(f"Sources: whole pipeline, 1 worker, sample x{copies}",
          ["source", "input MB", "docs read", "kept", "wall s", "CPU s (with workers)", "MB/s/core (CPU)"], rows, rounds)


def c4_documents(copies: int) -> list[str]:
    from sources.c4 import C4

    texts: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-c4docs-") as tmp:
        inputs = write_copies("c4", Path(tmp), copies)
        for path in sorted(inputs.glob("*.json.gz")):
            try:
                texts.extend(d.text for d in C4().read(str(path)) if isinstance(d, Document))
            except UserError:
                pass  # the sample's truncated file
    return texts


def c4_against_datatrove(copies: int, rounds: int) -> None:
    texts = c4_documents(copies)
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    thresholds = C4Thresholds()
    ours_no_sentences = C4Thresholds(min_sentences=0)
    variants = {
        "herd C4Quality": lambda: [clean_page(t, thresholds).text for t in texts],
        "herd, no sentence rule": lambda: [clean_page(t, ours_no_sentences).text for t in texts],
    }
    missing = _datatrove_missing()
    if missing is None:
        from datatrove.data import Document as DatatroveDocument
        from datatrove.pipeline.filters.c4_filters import C4QualityFilter

        reference, reference_no_sentences = C4QualityFilter(), C4QualityFilter(min_num_sentences=-1)

        def theirs(filter_) -> list:  # noqa: ANN001
            out = []
            for i, text in enumerate(texts):
                doc = DatatroveDocument(text=text, id=str(i))
                out.append(doc.text if filter_.filter(doc) is True else None)
            return out

        variants["datatrove C4QualityFilter"] = lambda: theirs(reference)
        variants["datatrove, no sentence rule"] = lambda: theirs(reference_no_sentences)
    outputs: dict[str, list] = {}

    def timed(name: str) -> float:
        started = time.perf_counter()
        outputs[name] = variants[name]()
        return time.perf_counter() - started

    try:
        runs = alternate({name: lambda name=name: timed(name) for name in variants}, rounds)
    except Exception as e:  # e.g. datatrove's sentence splitter's dependency (spaCy) missing
        missing = f"datatrove's C4QualityFilter could not run: {type(e).__name__}: {e}"
        del variants["datatrove C4QualityFilter"], variants["datatrove, no sentence rule"]
        runs = alternate({name: lambda name=name: timed(name) for name in variants}, rounds)
    rows = [[name, f"{len(texts):,}", f"{megabytes:.2f}", spread([len(texts) / s for s in seconds], ",.0f"),
             spread([megabytes / s for s in seconds])] for name, seconds in runs.items()]
    table("C4 quality filter against datatrove's C4QualityFilter (same documents, 1 core)",
          ["implementation", "docs", "MB", "docs/s", "MB/s"], rows, rounds)
    if missing is not None:
        print(f"\ndatatrove comparison skipped: {missing}")
        return
    ours_out, theirs_out = outputs["herd C4Quality"], outputs["datatrove C4QualityFilter"]
    ratio = statistics.median(runs["datatrove C4QualityFilter"]) / statistics.median(runs["herd C4Quality"])
    same_decision = sum((a is None) == (b is None) for a, b in zip(ours_out, theirs_out))
    same_text = sum(a == b for a, b in zip(ours_out, theirs_out))
    print(f"\nratio herd / datatrove (medians): {ratio:.1f}x  "
          f"(same keep/drop decision on {same_decision}/{len(texts)} documents, identical output on "
          f"{same_text}/{len(texts)}; differences come from page-level lorem ipsum / curly bracket rules "
          f"and regex vs spaCy sentence counting)")


def _datatrove_missing() -> str | None:
    """Why datatrove cannot be compared here (one line), or None."""
    for module in ("datatrove", "spacy"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (the bench extra, locked: ./install.sh --bench)"
    return None


def near_dedup_section() -> None:
    """bench/near_dedup.py's section, when that benchmark exists."""
    path = Path(__file__).with_name("near_dedup.py")
    if not path.exists():
        return
    spec = importlib.util.spec_from_file_location("bench_near_dedup", path)
    if spec is None or spec.loader is None:
        return
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        main = getattr(module, "main", None)
        if main is None:
            print("\nbench/near_dedup.py has no main(); skipped")
            return
        print("\n## Near-duplicate detection (bench/near_dedup.py)\n")
        saved, sys.argv = sys.argv, [str(path)]  # its own argument parser must not see ours
        try:
            main([]) if inspect.signature(main).parameters else main()
        finally:
            sys.argv = saved
    except SystemExit:
        pass
    except Exception as e:  # its section failing must not hide the figures above
        print(f"bench/near_dedup.py failed: {type(e).__name__}: {e}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=10, help="sample copies side by side (default %(default)s)")
    parser.add_argument("--sources", nargs="+", default=LLAMA1.sources(),
                        help="sources to measure (default: every source with a sample writer)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of every run (default %(default)s)")
    parser.add_argument("--skip-near-dedup", action="store_true", help="do not run bench/near_dedup.py")
    args = parser.parse_args(argv)
    if args.copies < 1:
        parser.error("--copies must be at least 1")
    sources_table(args.sources, args.copies, args.rounds)
    if "c4" in args.sources:
        c4_against_datatrove(args.copies, args.rounds)
    if not args.skip_near_dedup:
        near_dedup_section()


if __name__ == "__main__":
    main()
