"""`pipeline sample`: small raw inputs in each source's real format, good and bad documents
mixed so that every stage has something to keep and something to drop.

Each source has a module here with `write(folder: Path, seed: int) -> None` writing into
`<raw root>/<source>/`. Everything is generated: no third-party text is shipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# The file beside generated inputs that lists them, so that a model trained on them, or a run
# over them, can tell (the CommonCrawl run warns when toy models meet real pages).
GENERATED_MARKER = "GENERATED_SAMPLE.json"


def mark_generated(folder: Path, names: list[str]) -> None:
    """Record that `names` (relative to `folder`) were written by `pipeline sample`."""
    (folder / GENERATED_MARKER).write_text(json.dumps({"written_by": "pipeline sample", "files": names}, indent=1))


def is_generated(path: str | Path) -> bool:
    """Whether `path` was written by `pipeline sample`: the nearest marker at or above it
    lists it, or lists a file inside it (a folder of generated inputs)."""
    p = Path(str(path).removeprefix("file://")).absolute()
    for folder in [p, *p.parents]:
        marker = folder / GENERATED_MARKER
        if marker.is_file():
            try:
                names = json.loads(marker.read_text())["files"]
            except (ValueError, KeyError, OSError):
                return False
            listed = [(folder / n).absolute() for n in names]
            return any(file == p or p in file.parents for file in listed)
    return False


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
