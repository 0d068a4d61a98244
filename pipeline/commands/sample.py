"""`pipeline sample`: small raw inputs for every source, written by each source's registered
sample writer (pipeline/engine/registry.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.common.cli import add_renamed
from pipeline.corpus.mixture import LLAMA1
from pipeline.engine.registry import sample_writer


def write_samples(out: Path, sources: list[str] | None = None, seed: int = 0) -> list[str]:
    """Write samples for `sources` (default: the paper's seven); returns those written."""
    wanted = sources or LLAMA1.sources()
    for name in wanted:
        sample_writer(name).write(out / name, seed)
    return list(wanted)


def add_arguments(p: argparse.ArgumentParser) -> None:
    raw = p.add_argument("--raw", default="data/raw", metavar="DIR",
                         help="raw root; one folder per source (default %(default)s)")
    add_renamed(p, raw, "--out")
    p.add_argument("--sources", nargs="*", help="only these sources (default: all)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def run(args: argparse.Namespace) -> None:
    written = write_samples(Path(args.raw), args.sources, args.seed)
    print(f"wrote sample inputs for {', '.join(written)} under {args.raw}")
