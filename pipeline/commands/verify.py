"""`pipeline verify`: check a corpus's shards against the sha256 recorded in its manifest.json.

The writer hashes every shard while writing it (pipeline/engine/shards.py) and the manifest keeps the
digest, so a bit flipped on disk, a truncated copy or a shard swapped in from another run is
found by reading each shard once. The check of one shard, `shard_problem`, lives with the
shards (pipeline/engine/shards.py): the readers that hand a corpus to the user (`tokenizer train`'s
sample, `pipeline audit`, `tokenizer encode`) refuse a shard it finds damaged before using it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline.common.cli import add_corpus_and_source, report_checked
from pipeline.common.errors import UserError
from pipeline.engine.corpus_manifest import manifest_dropped_shards, manifest_files
from pipeline.engine.shards import shard_problem


@dataclass
class Verified:
    folder: Path
    shards: int  # listed in the manifest
    problems: list[str]  # one line per bad shard: "PATH: what is wrong"


def read_manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not path.exists():
        raise UserError(f"{path}: missing (not a finished corpus; run `pipeline run {folder.name}`)")
    # A damaged manifest, or one naming files outside the folder, is one line.
    manifest_files(path)
    manifest_dropped_shards(path)
    return json.loads(path.read_text())


def verify_corpus(folder: Path) -> Verified:
    manifest = read_manifest(folder)
    listed = {entry["file"] for entry in manifest["shards"]}
    problems = [p for entry in manifest["shards"] if (p := shard_problem(folder / entry["file"], entry))]
    # A shard under a final name that the manifest does not know would be read by tools that
    # glob the folder: report it too.
    problems += [f"{path}: not listed in manifest.json" for path in sorted(folder.glob("shard-*.arrow"))
                 if path.name not in listed]
    return Verified(folder, len(manifest["shards"]), problems)


def verify_command(root: Path, source: str | None) -> None:
    folders = [root / source] if source else sorted(p.parent for p in root.glob("*/manifest.json"))
    if not folders:
        raise UserError(f"{root}: no corpus found (no */manifest.json)")
    bad = 0
    for folder in folders:
        result = verify_corpus(folder)
        bad += report_checked("pipeline", folder.name, f"{result.shards} shard(s) checked against manifest.json",
                              result.problems)
    if bad:
        sys.exit(2)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_corpus_and_source(p)


def run(args: argparse.Namespace) -> None:
    verify_command(Path(args.corpus), args.source)
