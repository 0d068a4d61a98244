"""`pipeline diff SOURCE --a DIR --b DIR`: why two builds of one source differ.

Two finished corpora of one source (two configs, two herd versions) are compared document by
document: ids only in b are *added*, ids only in a are *removed*, ids in both whose text differs
are *changed* (by the sha256 of the text). Beside the counts: each stage's drops per reason on
both sides (from each side's stats.json), and a few examples of each class with the first
characters of the text and what each side's run did with it: kept, or dropped by which stage for
which reason when the run had `--keep-dropped` (its `dropped/` shards carry `drop_stage` and
`drop_reason`).

Memory is bounded for corpora of millions of documents: a side is read once into two 64-bit
numbers per document, the hash of its id (`id_hashes`, as the engine's check for repeated ids
computes it over Arrow's buffers) and the first 8 bytes of its text's sha256, sorted by id hash;
the classes are found by searching one sorted array in the other. Only the examples' documents
are read again as strings. Counts are exact unless two different ids share a 64-bit hash.
Every shard is checked against its manifest.json first (size and sha256), as any reader does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from pipeline.common.cli import READ_ONLY_HINT, path_arg
from pipeline.common.config import Count, check_flags
from pipeline.common.errors import UserError
from pipeline.common.sorted_arrays import find
from pipeline.corpus.folder import REMOVALS, corpus_folder
from pipeline.engine.corpus_manifest import manifest_dropped_shards
from pipeline.engine.shards import count_rows, id_hashes, record_batches, string_offsets, verified_shard_paths

DEFAULT_EXAMPLES = 5
EXCERPT_CHARS = 80  # of a text shown in an example
CLASSES = ("added", "removed", "changed")


@dataclass
class Side:
    """One corpus of the two: its folder, stats.json, and its documents as sorted hash pairs."""

    name: str  # "a" or "b"
    folder: Path
    stats: dict
    shards: list[Path]  # checked against manifest.json once, when opened
    id_hashes: np.ndarray  # uint64, sorted
    text_hashes: np.ndarray  # uint64, in the order of id_hashes
    dropped_shards: list[Path] = field(default_factory=list)  # empty: the run had no --keep-dropped
    keep_dropped: bool = False
    removed: dict[str, str] = field(default_factory=dict)  # id -> when `pipeline remove` took it out


def _removals(folder: Path) -> dict[str, str]:
    """The ids `pipeline remove` took out of this corpus (removals.jsonl), with when."""
    path = folder / REMOVALS
    if not path.exists():
        return {}
    removed: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            record = json.loads(line)
            removed.update(dict.fromkeys(record["removed"], record["at"]))
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{path}: line {number} is not a removal record") from None
    return removed


def open_side(name: str, corpus: Path, source: str) -> Side:
    folder = corpus_folder(corpus, source)
    stats = _read_stats(folder / "stats.json")
    paths = verified_shard_paths(folder)
    ids, texts = _fingerprints(paths, f"{name} ({folder})")
    dropped = [folder / name for name in manifest_dropped_shards(folder / "manifest.json")]
    return Side(name, folder, stats, paths, ids, texts, dropped, bool(dropped) or _planned_keep_dropped(folder),
                _removals(folder))


def _read_stats(path: Path) -> dict:
    try:
        stats = json.loads(path.read_text())
        if not all(isinstance(stage["name"], str) and isinstance(stage["dropped"], dict) for stage in stats["stages"]):
            raise ValueError("a stage without a name or drop counts")
    except FileNotFoundError:
        raise UserError(f"{path}: missing (not a finished corpus)") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"{path}: damaged stats ({type(e).__name__}: {e})") from None
    return stats


def _planned_keep_dropped(folder: Path) -> bool:
    """Whether the run was planned with --keep-dropped (it may have dropped nothing)."""
    try:
        return bool(json.loads((folder / "_work" / "plan.json").read_text()).get("keep_dropped"))
    except (OSError, ValueError, AttributeError):
        return False


def _batches(paths: list[Path]) -> Iterator[pa.RecordBatch]:
    for path in paths:
        yield from record_batches(path)


def text_hashes(texts: pa.Array) -> np.ndarray:
    """The first 8 bytes of each text's sha256 (as a little-endian uint64), hashed from Arrow's
    buffer without building a Python string per document."""
    offsets = string_offsets(texts).tolist()
    data = texts.buffers()[2]
    body = memoryview(data) if data is not None else memoryview(b"")
    digests = b"".join(hashlib.sha256(body[start:end]).digest()[:8] for start, end in zip(offsets, offsets[1:]))
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def _fingerprints(paths: list[Path], label: str) -> tuple[np.ndarray, np.ndarray]:
    total = sum(map(count_rows, paths))
    ids = np.empty(total, dtype=np.uint64)
    texts = np.empty(total, dtype=np.uint64)
    filled = 0
    # disable=None: a bar on a terminal only, never in a log or a pipe
    with tqdm(total=total, unit=" docs", unit_scale=True, desc=f"hashing {label}", disable=None,
              mininterval=1.0) as bar:
        for batch in _batches(paths):
            rows = batch.num_rows
            ids[filled:filled + rows] = id_hashes(batch.column("id"))
            texts[filled:filled + rows] = text_hashes(batch.column("text"))
            filled += rows
            bar.update(rows)
    order = np.argsort(ids, kind="stable")
    return ids[order], texts[order]


@dataclass
class Diff:
    source: str
    a: Side
    b: Side
    counts: dict[str, int]  # added, removed, changed, unchanged
    picked: dict[str, np.ndarray]  # class -> id hashes of its examples

    def stages(self) -> dict[str, dict[str, dict[str, int]]]:
        """Per stage, per drop reason: the count on each side (0 where a side has none)."""
        merged: dict[str, dict[str, dict[str, int]]] = {}
        for side in (self.a, self.b):
            for stage in side.stats["stages"]:
                reasons = merged.setdefault(stage["name"], {})
                for reason, count in stage["dropped"].items():
                    reasons.setdefault(reason, {"a": 0, "b": 0})[side.name] = count
        return {name: dict(sorted(reasons.items())) for name, reasons in merged.items()}


def diff_corpora(source: str, a: Path, b: Path, examples: int = DEFAULT_EXAMPLES) -> Diff:
    side_a, side_b = open_side("a", a, source), open_side("b", b, source)
    in_b, where = find(side_a.id_hashes, side_b.id_hashes)
    # Texts compared where b holds the id only: `where` means nothing elsewhere, and points past
    # the end of b's empty arrays when b has no documents (all taken out by `pipeline remove`).
    changed = in_b.copy()
    changed[in_b] = side_b.text_hashes[where[in_b]] != side_a.text_hashes[in_b]
    in_a, _ = find(side_b.id_hashes, side_a.id_hashes)
    counts = {"added": int((~in_a).sum()), "removed": int((~in_b).sum()), "changed": int(changed.sum()),
              "unchanged": int((in_b & ~changed).sum())}
    # The first few in hash order: a spread over the corpus that is the same on every run.
    picked = {"added": side_b.id_hashes[~in_a][:examples], "removed": side_a.id_hashes[~in_b][:examples],
              "changed": side_a.id_hashes[changed][:examples]}
    return Diff(source, side_a, side_b, counts, picked)


def _documents(paths: list[Path], wanted: np.ndarray, columns: tuple[str, ...]) -> dict[int, dict]:
    """id hash -> {column: value} for the documents of `paths` whose id hash is in `wanted` (sorted)."""
    found: dict[int, dict] = {}
    if not len(wanted):
        return found
    for batch in _batches(paths):
        hashes = id_hashes(batch.column("id"))
        rows = np.flatnonzero(find(hashes, wanted)[0])
        for row in rows.tolist():
            found[int(hashes[row])] = {name: batch.column(name)[row].as_py() for name in columns}
    return found


def examples(diff: Diff) -> dict[str, list[dict]]:
    """For each class, its examples: id, the first characters of the text (for a changed one, of
    both texts from a little before where they first differ), and each side's fate of it."""
    wanted = np.sort(np.concatenate(list(diff.picked.values())))
    kept = {side.name: _documents(side.shards, wanted, ("id", "text")) for side in (diff.a, diff.b)}
    dropped = {side.name: _documents(side.dropped_shards, wanted, ("id", "text", "drop_stage", "drop_reason"))
               for side in (diff.a, diff.b)}

    def fate(side: Side, key: int, doc_id: str) -> str:
        if key in kept[side.name]:
            return "kept"
        if doc_id in side.removed:
            return f"removed by `pipeline remove` at {side.removed[doc_id]}"
        if key in dropped[side.name]:
            doc = dropped[side.name][key]
            return f"dropped by {doc['drop_stage']} ({doc['drop_reason']})"
        return "not read" if side.keep_dropped else "not kept (the run had no --keep-dropped)"

    shown: dict[str, list[dict]] = {}
    for name, keys in diff.picked.items():
        shown[name] = []
        for key in keys.tolist():
            doc = kept["b" if name == "added" else "a"][key]
            entry = {"id": doc["id"], "a": fate(diff.a, key, doc["id"]), "b": fate(diff.b, key, doc["id"])}
            if name == "changed":
                text_a, text_b = doc["text"], kept["b"][key]["text"]
                at = len(os.path.commonprefix([text_a, text_b]))
                start = max(0, at - EXCERPT_CHARS // 4)
                entry.update(differs_at=at, excerpt_from=start, a_text=text_a[start:start + EXCERPT_CHARS],
                             b_text=text_b[start:start + EXCERPT_CHARS])
            else:
                entry["text"] = doc["text"][:EXCERPT_CHARS]
            shown[name].append(entry)
    return shown


def diff_json(diff: Diff, shown: dict[str, list[dict]]) -> dict:
    return {"source": diff.source, "a": str(diff.a.folder), "b": str(diff.b.folder),
            "documents": {"a": len(diff.a.id_hashes), "b": len(diff.b.id_hashes)},
            **diff.counts, "stages": diff.stages(), "examples": shown}


def format_diff(report: dict) -> str:
    docs = report["documents"]
    lines = [f"{report['source']}: a has {docs['a']:,} documents ({report['a']}), b has {docs['b']:,} ({report['b']})",
             f"  added {report['added']:,}, removed {report['removed']:,}, changed {report['changed']:,}, "
             f"unchanged {report['unchanged']:,}"]
    rows = [("stage", "dropped as", "a", "b", "b - a")]
    for stage, reasons in report["stages"].items():
        for reason, n in reasons.items():
            rows.append((stage, reason, f"{n['a']:,}", f"{n['b']:,}", f"{n['b'] - n['a']:+,}"))
    if len(rows) > 1:
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines += [f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}  "
                  f"{r[4]:>{widths[4]}}" for r in rows]
    for name in CLASSES:
        for entry in report["examples"][name]:
            lines.append(f"  {name} {entry['id']}: a {entry['a']}; b {entry['b']}")
            if name == "changed":
                lines.append(f"    first difference at character {entry['differs_at']:,}; "
                             f"from {entry['excerpt_from']:,}:")
                lines.append(f"    a {entry['a_text']!r}")
                lines.append(f"    b {entry['b_text']!r}")
            else:
                lines.append(f"    {entry['text']!r}")
    return "\n".join(lines)


DESCRIPTION = """\
Compare two finished corpora of one source (two configs, two herd versions): documents added
(only in b), removed (only in a) and changed (same id, other text), each stage's drops per
reason on both sides, and a few examples of each class with what each run did with them
(kept, or dropped by which stage and why, when the run had --keep-dropped).
--a and --b each name a corpus root or the source's folder in it.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="the source both corpora are of (c4, wikipedia, ...)")
    p.add_argument("--a", type=path_arg, required=True, metavar="DIR",
                   help="the first corpus (root or the source's folder)")
    p.add_argument("--b", type=path_arg, required=True, metavar="DIR",
                   help="the second corpus (root or the source's folder)")
    p.add_argument("--json", action="store_true", help="print one JSON object (keys: added, removed, changed, "
                   "unchanged, documents, stages, examples) instead of the table")
    p.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES, metavar="N",
                   help="examples shown per class (default %(default)s)")


RERUN_HINT = READ_ONLY_HINT


def run(args: argparse.Namespace) -> None:
    check_flags(args, {"examples": Count})
    diff = diff_corpora(args.source, Path(args.a), Path(args.b), args.examples)
    report = diff_json(diff, examples(diff))
    print(json.dumps(report, indent=1, ensure_ascii=False) if args.json else format_diff(report))
