"""`pipeline verify`: check a corpus's shards against the sha256 recorded in its manifest.json.

The writer hashes every shard while writing it (pipeline/engine/shards.py) and the manifest keeps the
digest, so a bit flipped on disk, a truncated copy or a shard swapped in from another run is
found by reading each shard once. The check of one shard, `shard_problem`, lives with the
shards (pipeline/engine/shards.py): the readers that hand a corpus to the user (`tokenizer train`'s
sample, `pipeline audit`, `tokenizer encode`) refuse a shard it finds damaged before using it.

The manifest is checked too: an entry without its sha256 (herd writes one for every shard), a
shard listed twice, and document counts that are not the shards' own. The manifest records only
the names of a --keep-dropped run's dropped shards, no size or sha256: each is checked to exist,
to end with Arrow's end-of-stream marker and to read as Arrow, which finds one cut short or
replaced by something else, not a byte changed inside its text.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from pipeline.common.cli import READ_ONLY_HINT, add_corpus_and_source, report_checked
from pipeline.commands.remote_output import local_corpus_root
from pipeline.commands.remove import pending_removal_problem
from pipeline.common.errors import UserError
from pipeline.common.files import READ_DEPTH, refuse_special_files
from pipeline.engine.corpus_manifest import DROPPED, checked_manifest
from pipeline.engine.shards import shard_problem

# What pyarrow's stream writer ends every stream with (the continuation marker, then a message
# length of 0): a shard without it was cut short, whatever Arrow makes of the batches before.
END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"


@dataclass
class Verified:
    folder: Path
    shards: int  # listed in the manifest
    dropped: int  # dropped shards listed in the manifest
    problems: list[str]  # one line per problem: "PATH: what is wrong"


def arrow_rows(path: Path, validate: bool = False) -> int | str:
    """The documents of a shard, or what Arrow finds wrong with it, as text. `validate` checks every
    batch's buffers too (offsets, UTF-8): a pass over the data, for a shard no sha256 vouches for."""
    try:
        with pa.memory_map(str(path)) as source:
            rows = 0
            for batch in pa.ipc.open_stream(source):
                if validate:
                    batch.validate(full=True)
                rows += batch.num_rows
            return rows
    except (OSError, pa.ArrowException) as e:
        return str(e)


def kept_shard_problem(path: Path, entry: dict) -> str | None:
    """`shard_problem`, then the documents the shard holds against the entry's count: a count
    edited in the manifest passes every check of the shard's bytes."""
    problem = shard_problem(path, entry)
    if problem:
        return problem
    rows = arrow_rows(path)
    if isinstance(rows, str):  # its sha256 matches: the manifest was written for a damaged file
        return f"{path}: unreadable corpus shard ({rows})"
    if rows != entry["documents"]:
        return f"{path}: {rows} documents, manifest.json says {entry['documents']}"
    return None


def dropped_shard_problem(path: Path) -> str | None:
    """What is wrong with a dropped shard, which the manifest names only: missing, cut short, or
    not Arrow."""
    if not path.is_file():
        return f"{path}: listed in manifest.json but missing"
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - len(END_OF_STREAM)))
        if f.read() != END_OF_STREAM:
            return f"{path}: cut short (no Arrow end-of-stream marker at its end)"
    rows = arrow_rows(path, validate=True)
    return f"{path}: unreadable corpus shard ({rows})" if isinstance(rows, str) else None


def total_problems(path: Path, manifest: dict, shards: list[dict]) -> list[str]:
    """The manifest's totals against its shard entries: herd writes both from the same counts."""
    problems = []
    for key in ("documents", "bytes"):
        total = sum(entry[key] for entry in shards)
        if manifest.get(key) != total:
            problems.append(f"{path}: {key} {manifest.get(key)!r}, its shard entries add up to {total}")
    return problems


def unlisted(folder: Path, prefix: str, listed: set[str]) -> list[str]:
    """Shards under a final name that the manifest does not know: tools that glob the folder read
    them (`prefix` is "" for the kept shards, "dropped/" for the dropped ones)."""
    return [f"{path}: not listed in manifest.json" for path in sorted((folder / prefix).glob("shard-*.arrow"))
            if prefix + path.name not in listed]


def verify_corpus(folder: Path) -> Verified:
    path = folder / "manifest.json"
    refuse_special_files(folder, READ_DEPTH)  # a FIFO or a device in a corpus is no shard to check: named, never opened
    if not path.exists():
        raise UserError(f"{path}: missing (not a finished corpus; run `pipeline run {folder.name}`)")
    # A damaged manifest, or one naming files outside the folder, is one line.
    manifest = checked_manifest(path)
    shards, dropped = manifest["shards"], manifest.get("dropped_shards", [])
    problems = [p for entry in shards if (p := kept_shard_problem(folder / entry["file"], entry))]
    problems += total_problems(path, manifest, shards)
    problems += [p for name in dropped if (p := dropped_shard_problem(folder / name))]
    problems += unlisted(folder, "", {entry["file"] for entry in shards})
    problems += unlisted(folder, f"{DROPPED}/", set(dropped))
    # Shards that check out may still disagree with the stats and the removals log until a killed
    # `pipeline remove` is finished: not ok.
    pending = pending_removal_problem(folder)
    problems += [pending] if pending else []
    return Verified(folder, len(shards), len(dropped), problems)


def verify_command(root: Path, source: str | None) -> None:
    folders = [root / source] if source else sorted(p.parent for p in root.glob("*/manifest.json"))
    if not folders:
        raise UserError(f"{root}: no corpus found (no */manifest.json)")
    bad = 0
    for folder in folders:
        result = verify_corpus(folder)
        checked = f"{result.shards} shard(s)" + (f" and {result.dropped} dropped shard(s)" if result.dropped else "")
        bad += report_checked("pipeline", folder.name, f"{checked} checked against manifest.json", result.problems)
    if bad:
        sys.exit(2)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_corpus_and_source(p)


RERUN_HINT = READ_ONLY_HINT


def run(args: argparse.Namespace) -> None:
    verify_command(local_corpus_root(args.corpus, "verify"), args.source)
