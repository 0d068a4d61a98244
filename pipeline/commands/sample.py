"""`pipeline sample`: small raw inputs for every source, written by each source's registered
sample writer (pipeline/engine/registry.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.corpus.mixture import LLAMA1
from pipeline.engine.registry import sample_writer


def write_samples(out: Path, sources: list[str] | None = None, seed: int = 0) -> list[str]:
    """Write samples for `sources` (default: the paper's seven); returns those written."""
    wanted = sources or LLAMA1.sources()
    for name in wanted:
        sample_writer(name).write(out / name, seed)
    return list(wanted)


def command(args: argparse.Namespace) -> None:
    written = write_samples(Path(args.out), args.sources, args.seed)
    print(f"wrote sample inputs for {', '.join(written)} under {args.out}")
