"""`pipeline sample`: small raw inputs in each source's real format, good and bad documents
mixed so that every stage has something to keep and something to drop.

Each source has a module here with `write(folder: Path, seed: int) -> None` writing into
`<raw root>/<source>/`. Everything is generated: no third-party text is shipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def write_samples(out: Path, sources: list[str] | None = None, seed: int = 0) -> list[str]:
    """Write samples for `sources` (default: the paper's seven); returns those written."""
    from sources import PAPER_SOURCES, sample_writer

    wanted = sources or PAPER_SOURCES
    for name in wanted:
        sample_writer(name).write(out / name, seed)
    return list(wanted)


def command(args: argparse.Namespace) -> None:
    written = write_samples(Path(args.out), args.sources, args.seed)
    print(f"wrote sample inputs for {', '.join(written)} under {args.out}")
