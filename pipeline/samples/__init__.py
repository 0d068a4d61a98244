"""`pipeline sample`: small raw inputs in each source's real format, good and bad documents
mixed so that every stage has something to keep and something to drop.

Each source has a module here with `write(folder: Path, seed: int) -> None` writing into
`<raw root>/<source>/`. Everything is generated: no third-party text is shipped.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from pipeline.errors import UserError

WRITERS = {
    "commoncrawl": "pipeline.samples.commoncrawl",
    "c4": "pipeline.samples.c4",
    "github": "pipeline.samples.github",
    "wikipedia": "pipeline.samples.wikipedia",
    "books": "pipeline.samples.books",
    "arxiv": "pipeline.samples.arxiv",
    "stackexchange": "pipeline.samples.stackexchange",
    "jsonl": "pipeline.samples.jsonl",
}


def write_samples(out: Path, sources: list[str] | None = None, seed: int = 0) -> list[str]:
    """Write samples for `sources` (default: every source that has a writer); returns those written."""
    wanted = sources or [n for n in WRITERS if n != "jsonl"]
    unknown = [n for n in wanted if n not in WRITERS]
    if unknown:
        raise UserError(f"no sample writer for {unknown} (known: {', '.join(WRITERS)})")
    written = []
    for name in wanted:
        try:
            module = importlib.import_module(WRITERS[name])
        except ModuleNotFoundError as e:
            if e.name == WRITERS[name] and not sources:
                continue  # a source not built yet has no sample yet
            raise UserError(f"no sample writer for '{name}' yet") from None
        module.write(out / name, seed)
        written.append(name)
    return written


def command(args: argparse.Namespace) -> None:
    written = write_samples(Path(args.out), args.sources, args.seed)
    print(f"wrote sample inputs for {', '.join(written)} under {args.out}")
