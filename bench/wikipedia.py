"""Wikipedia on the real dumps: herd's reader and cleaning against a bare mwparserfromhell loop.

    .venv/bin/python bench/wikipedia.py [--rounds 5] [--dumps ../shared/realdata/wikipedia]

Over the same dumps (every `*.xml.bz2` in the folder; the real Ukrainian and Vietnamese ones
in ../shared/realdata/wikipedia), each round runs, one after the other:

- herd: the Wikipedia source's reader (bz2, the streaming MediaWiki reader, page checks, cited
  URLs) and its stages (wikitext cleaning, minimum length) on every document, as a worker does;
- bare: `bz2` + lxml's `iterparse` + `mwparserfromhell.parse(text).strip_code()` on the same
  articles (main namespace, not redirects): the least a wikitext-to-text pass can do with the
  same parser.

The machine may be shared, so CPU seconds (`time.process_time`) are measured, not wall time,
and the two alternate within each round so a busy spell costs both. The table gives each
side's CPU seconds per MB and MB/s per core (MB: decompressed dump bytes, as bench/sources.py
counts input), min / median / max over the rounds with the load average (bench/rounds.py), and
bare CPU / herd CPU per round: above 1, herd is the faster.
"""

from __future__ import annotations

import argparse
import bz2
import statistics
import sys
import time
from pathlib import Path

from lxml import etree
import mwparserfromhell

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rounds import spread, table  # noqa: E402
from pipeline.engine.document import Document  # noqa: E402
from sources.wikipedia import Wikipedia, WikipediaConfig, language_of  # noqa: E402

REAL_DUMPS = ROOT.parent / "shared" / "realdata" / "wikipedia"


def herd_pass(dumps: list[Path]) -> int:
    """Every document through the source's reader and stages; the number kept."""
    languages = sorted({language_of(str(path)) for path in dumps})
    source = Wikipedia(WikipediaConfig(languages=languages, task_bytes=0))
    stages = source.stages()
    kept = 0
    for path in dumps:
        for item in source.read(str(path)):
            if not isinstance(item, Document):
                continue
            for stage in stages:
                item = stage.process(item)
                if isinstance(item, str):
                    break
            else:
                kept += 1
    return kept


def bare_pass(dumps: list[Path]) -> int:
    """Every main-namespace, non-redirect article: bz2, lxml, parse, strip_code; the number of
    non-empty texts."""
    kept = 0
    for path in dumps:
        with bz2.open(path) as stream:
            try:
                for _, page in etree.iterparse(stream, events=("end",), tag="{*}page"):
                    ns = page.findtext("{*}ns")
                    text = page.findtext("{*}revision/{*}text") or ""
                    if ns == "0" and page.find("{*}redirect") is None:
                        kept += bool(mwparserfromhell.parse(text).strip_code().strip())
                    page.clear()
                    while page.getprevious() is not None:
                        del page.getparent()[0]
            except (etree.XMLSyntaxError, EOFError):
                pass  # a truncated sample dump ends mid-page: what came before is read
    return kept


def decompressed_bytes(dumps: list[Path]) -> int:
    total = 0
    for path in dumps:
        with bz2.open(path) as stream:
            try:
                while chunk := stream.read(1 << 20):
                    total += len(chunk)
            except EOFError:
                pass
    return total


def cpu_seconds(run, dumps: list[Path]) -> tuple[float, int]:
    start = time.process_time()
    result = run(dumps)
    return time.process_time() - start, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="alternating herd/bare rounds (default 5)")
    parser.add_argument("--dumps", type=Path, default=REAL_DUMPS, help="folder of *.xml.bz2 dumps")
    args = parser.parse_args(argv)
    dumps = sorted(args.dumps.glob("*.xml.bz2"))
    if not dumps:
        print(f"no *.xml.bz2 dumps in {args.dumps}: the real Wikipedia dumps are absent, nothing measured")
        return 0
    megabytes = decompressed_bytes(dumps) / 1e6
    print(f"dumps: {', '.join(path.name for path in dumps)} ({megabytes:.1f} MB decompressed)")
    herd_times, bare_times = [], []
    for round_number in range(1, args.rounds + 1):
        # Alternate which side goes first, so neither always runs on a warmer cache.
        order = [("herd", herd_pass), ("bare", bare_pass)]
        if round_number % 2 == 0:
            order.reverse()
        seconds = {}
        for name, run in order:
            seconds[name], count = cpu_seconds(run, dumps)
            print(f"  round {round_number} {name}: {seconds[name]:.2f} CPU s, {count} articles with text")
        herd_times.append(seconds["herd"])
        bare_times.append(seconds["bare"])
    ratios = [bare / herd for bare, herd in zip(bare_times, herd_times)]
    rows = [
        [name, spread(times), spread([t / megabytes for t in times], ".3f"), spread([megabytes / t for t in times]),
         spread([b / h for b, h in zip(bare_times, times)])]
        for name, times in (("herd: reader + stages", herd_times), ("bare: bz2 + lxml + mwparserfromhell", bare_times))
    ]
    table(f"Wikipedia, {len(dumps)} real dump(s), {megabytes:.1f} MB decompressed; one core",
          ("pipeline", "CPU s", "CPU s/MB", "MB/s/core", "bare's CPU / its CPU"), rows, args.rounds)
    print(f"\n  bare CPU / herd CPU, median of the rounds: {statistics.median(ratios):.2f} (above 1: herd is faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
