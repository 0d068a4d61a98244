"""The numbers of a report, read from one source's finished corpus folder.

Everything is read in one streaming pass over the kept shards and, when the run had
`--keep-dropped`, the dropped ones (their `drop_stage`/`drop_reason` columns), so memory is
bounded whatever the corpus size: lengths go straight into fixed histogram bins, text columns
are never materialised beyond the few examples kept, categorical columns stop being counted
past `MAX_CATEGORIES` distinct values, and float columns keep a decimated sample (every k-th
value, k doubling whenever `MAX_SAMPLED` values are held) for their histograms.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.common.errors import UserError
from pipeline.engine.shards import BASE_NAMES, record_batches, string_offsets, verified_shard_paths

# log10 of a document's UTF-8 bytes, quarter decades from 1 byte to 100 MB.
LENGTH_BIN_EDGES = np.arange(0.0, 8.01, 0.25)
MAX_CATEGORIES = 30  # a column with more distinct values (titles, urls) is no category
MAX_SAMPLED = 1 << 20  # float values held per column for its histogram
EXAMPLE_CHARS = 300
DROP_COLUMNS = ("drop_stage", "drop_reason")
REMOVE_STEP = "pipeline remove"  # the funnel's step after the run's stages, where documents were removed since


@dataclass(frozen=True)
class StageCounts:
    name: str
    documents_in: int
    documents_out: int
    dropped: dict[str, int]  # reason -> documents, as stats.json records them


@dataclass(frozen=True)
class DroppedExample:
    doc_id: str
    stage: str
    reason: str
    text: str  # the first EXAMPLE_CHARS characters, unescaped (the page escapes)


@dataclass
class FloatSample:
    """Every `stride`-th value of a column, at most MAX_SAMPLED of them."""

    stride: int = 1
    seen: int = 0
    values: list[np.ndarray] = field(default_factory=list)
    held: int = 0

    def add(self, column: np.ndarray) -> None:
        column = column[np.isfinite(column)]
        first = (-self.seen) % self.stride  # keep the global positions that are multiples of stride
        self.seen += len(column)
        kept = column[first::self.stride]
        self.values.append(kept.astype(np.float64))
        self.held += len(kept)
        while self.held > MAX_SAMPLED:
            joined = np.concatenate(self.values)
            self.values, self.stride = [joined[::2]], self.stride * 2
            self.held = len(self.values[0])

    def array(self) -> np.ndarray:
        return np.concatenate(self.values) if self.values else np.empty(0)


@dataclass
class Side:
    """What one side (kept or dropped documents) holds."""

    documents: int = 0
    text_bytes: int = 0
    length_counts: np.ndarray = field(default_factory=lambda: np.zeros(len(LENGTH_BIN_EDGES) - 1, np.int64))
    categories: dict[str, Counter[str]] = field(default_factory=dict)
    floats: dict[str, FloatSample] = field(default_factory=dict)


@dataclass
class SourceFacts:
    source: str
    folder: Path
    documents_read: int
    documents_kept: int
    documents_failed: int
    files_total: int
    files_failed: list[dict]
    stages: list[StageCounts]
    kept: Side
    dropped: Side | None  # None: the run had no --keep-dropped
    dropped_bytes: dict[tuple[str, str], int]  # (stage, reason) -> text bytes, from the dropped shards
    examples: dict[tuple[str, str], list[DroppedExample]]
    too_many_categories: set[str] = field(default_factory=set)
    removed: int = 0  # documents `pipeline remove` took out of the kept shards since the run (stats.json)

    def funnel(self) -> list[StageCounts]:
        """The run's stages, then, where `pipeline remove` took documents out since, one more step
        from what the run kept to what the corpus holds now: the funnel ends at `documents_kept`,
        as the page's summary does, not at the run's count."""
        if not self.removed:
            return self.stages
        return self.stages + [StageCounts(REMOVE_STEP, self.documents_kept + self.removed, self.documents_kept,
                                          {"removed": self.removed})]

    def categories(self) -> dict[str, Counter[str]]:
        """The kept side's categorical columns whose values repeat: a column with a value per
        document or two (an arXiv id, a title on a small corpus) is a label, not a category."""
        documents = self.kept.documents + (self.dropped.documents if self.dropped else 0)
        return {name: counts for name, counts in self.kept.categories.items()
                if name not in self.too_many_categories and 0 < len(counts) <= max(1, documents // 2)}


def read_stats(folder: Path) -> dict:
    path = folder / "stats.json"
    try:
        stats = json.loads(path.read_text())
        if not isinstance(stats, dict) or not isinstance(stats.get("stages"), list):
            raise ValueError("no list of stages")
        return stats
    except FileNotFoundError:
        raise UserError(f"{path}: no stats; has `pipeline run {folder.name}` finished?") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{path}: damaged stats ({type(e).__name__}: {e})") from None


def stage_counts(stats: dict) -> list[StageCounts]:
    try:
        return [StageCounts(str(s["name"]), int(s["in"]), int(s["out"]),
                            {str(r): int(n) for r, n in s["dropped"].items()}) for s in stats["stages"]]
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UserError(f"stats.json of {stats.get('source', '?')}: damaged stage entry ({type(e).__name__}: {e})") \
            from None


def read_source_facts(folder: Path, examples_per_reason: int = 3) -> SourceFacts:
    """Stats and shard contents of one source's corpus folder (checked against its manifest)."""
    stats = read_stats(folder)
    files = stats.get("files") or {}
    facts = SourceFacts(
        source=str(stats.get("source", folder.name)), folder=folder,
        documents_read=int(stats.get("documents_read", 0)), documents_kept=int(stats.get("documents_kept", 0)),
        documents_failed=len(stats.get("documents_failed") or []), files_total=int(files.get("total", 0)),
        files_failed=list(files.get("failed") or []), stages=stage_counts(stats), kept=Side(), dropped=None,
        dropped_bytes=Counter(), examples={}, removed=int(stats.get("removed") or 0))
    for path in verified_shard_paths(folder):  # every size and sha256 against manifest.json first
        for batch in record_batches(path):
            _read_batch(facts, facts.kept, batch, examples_per_reason)
    dropped = sorted((folder / "dropped").glob("shard-*.arrow")) if (folder / "dropped").is_dir() else []
    if dropped:
        facts.dropped = Side()
        for path in dropped:
            for batch in record_batches(path):
                _read_batch(facts, facts.dropped, batch, examples_per_reason)
    return facts


def _read_batch(facts: SourceFacts, side: Side, batch: pa.RecordBatch, examples_per_reason: int) -> None:
    lengths = np.diff(string_offsets(batch.column("text")))
    side.documents += batch.num_rows
    side.text_bytes += int(lengths.sum())
    logs = np.log10(np.maximum(lengths, 1))
    side.length_counts += np.histogram(np.minimum(logs, LENGTH_BIN_EDGES[-1]), LENGTH_BIN_EDGES)[0]
    names = batch.schema.names
    if all(name in names for name in DROP_COLUMNS):
        _read_drops(facts, batch, lengths, examples_per_reason)
    for name in names:
        if name in BASE_NAMES or name in DROP_COLUMNS:
            continue
        column, kind = batch.column(name), batch.schema.field(name).type
        if pa.types.is_floating(kind):
            values = column.to_numpy(zero_copy_only=False).astype(np.float64)
            side.floats.setdefault(name, FloatSample()).add(values)
        elif (pa.types.is_string(kind) or pa.types.is_large_string(kind)) and name not in facts.too_many_categories:
            counts = side.categories.setdefault(name, Counter())
            counts.update(v for v in column.to_pylist() if v is not None)
            if len(counts) > MAX_CATEGORIES:  # an identifier, a title or a url: not a category
                facts.too_many_categories.add(name)
    for name in facts.too_many_categories:
        side.categories.pop(name, None)


def _read_drops(facts: SourceFacts, batch: pa.RecordBatch, lengths: np.ndarray, examples_per_reason: int) -> None:
    stages = batch.column("drop_stage").to_pylist()
    reasons = batch.column("drop_reason").to_pylist()
    ids = batch.column("id")
    texts = batch.column("text")
    for i, key in enumerate(zip(stages, reasons)):
        facts.dropped_bytes[key] += int(lengths[i])
        shown = facts.examples.setdefault(key, [])
        if len(shown) < examples_per_reason:
            shown.append(DroppedExample(ids[i].as_py(), key[0], key[1], texts[i].as_py()[:EXAMPLE_CHARS]))
