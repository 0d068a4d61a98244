"""A deterministic, seeded sample of the corpus at a mixture's proportions, capped in bytes.

SentencePiece loads its whole input into memory, so the tokenizer trains on a sample:
`cap_bytes` of text split between sources by the mixture's proportions (byte shares). A source
with less text than its share gives all it has; its shortfall is shared among the others in
proportion, so the sample still reaches the cap when the corpus holds enough text. The report
records, per source, what was wanted, what was taken and why (`short`, `missing`).

Which documents are drawn depends only on the seed and the document ids: each document gets a
key xxh64(f"{seed}:{id}"); a source's sample is the documents with the smallest keys whose
texts add up to its byte target. That is a uniform random sample, identical across reruns,
shard layouts and machines. Two passes: the first reads only ids and text lengths (the text
column's offsets), the second reads the texts of the chosen documents.

Before either pass every shard of the mixture's sources is checked against its manifest.json
(size, then sha256: `verified_shard_paths`), as `pipeline verify` and `tokenizer encode` check
them: a damaged shard ends the command in one line naming it, before a byte of sample is
written. What it costs: one sequential read of every shard of those sources, hashed on up to
8 threads; the passes read only ids, offsets and the chosen texts, so on a corpus larger than
the page cache this read is most of the sample's time (SHA-256 runs at about 2 GB/s a core).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import xxhash

from pipeline.common.errors import UserError
from pipeline.engine.shards import corpus_size, shard_paths, string_offsets, verified_shard_paths
from pipeline.corpus.mixture import Mixture

KEY_SPACE = float(2**64)
# Candidates are drawn a little above the target so the smallest keys reach it exactly.
OVERSAMPLE = 1.25


@dataclass
class SourceSample:
    source: str
    proportion: float
    available_documents: int = 0
    available_bytes: int = 0
    target_bytes: int = 0
    documents: int = 0
    bytes: int = 0
    share: float = 0.0  # of the sample's bytes
    short: bool = False  # had less text than its share of the cap: all of it was taken
    missing: bool = False  # no corpus shards at all
    note: str = ""


@dataclass
class SampleReport:
    mixture: str
    seed: int
    cap_bytes: int
    documents: int = 0
    bytes: int = 0
    sources: dict[str, SourceSample] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def source_documents(folder: Path) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(shard index, record batch) of a source's corpus shards, memory-mapped."""
    for shard_index, path in enumerate(shard_paths(folder)):
        with pa.memory_map(str(path)) as source:
            for batch in pa.ipc.open_stream(source):
                yield shard_index, batch


def text_lengths(batch: pa.RecordBatch) -> np.ndarray:
    return np.diff(string_offsets(batch.column("text")))


def document_key(seed: int, doc_id: str) -> int:
    return xxhash.xxh64_intdigest(f"{seed}:{doc_id}".encode())


def byte_targets(available: dict[str, int], proportions: dict[str, float], cap_bytes: int) -> dict[str, int]:
    """Split `cap_bytes` by proportion; a source short of its share gives all it has and the
    rest is re-split among the others (water-filling)."""
    targets: dict[str, int] = {}
    active = [s for s in proportions if available.get(s, 0) > 0 and proportions[s] > 0]
    remaining = float(cap_bytes)
    while active:
        weight = sum(proportions[s] for s in active)
        wants = {s: remaining * proportions[s] / weight for s in active}
        short = [s for s in active if available[s] <= wants[s]]
        if not short:
            targets.update({s: int(round(w)) for s, w in wants.items()})
            break
        for s in short:
            targets[s] = available[s]
            remaining -= available[s]
            active.remove(s)
    return targets


def draw_sample(mixture: Mixture, corpus_root: Path, out_path: Path, cap_bytes: int, seed: int = 0) -> SampleReport:
    """Write the sample's documents, one after another separated by newlines, to `out_path`.

    Raises UserError when no source of the mixture has corpus shards, or a source's shards
    hold no text (an empty source).
    """
    report = SampleReport(mixture.name, seed, cap_bytes)
    for source in mixture.proportions:
        if (corpus_root / source).is_dir():
            verified_shard_paths(corpus_root / source)
    available: dict[str, int] = {}
    for source, proportion in mixture.proportions.items():
        entry = report.sources[source] = SourceSample(source, proportion)
        folder = corpus_root / source
        size = corpus_size(folder)
        if size is None:
            if (folder / "manifest.json").exists():
                raise UserError(f"{folder}: empty source (its manifest lists no shards)")
            entry.missing, entry.note = True, f"no corpus shards under {folder}; its share went to the others"
            continue
        if size.documents == 0 or size.text_bytes == 0:
            raise UserError(f"{folder}: empty source (no text in its shards)")
        entry.available_documents, entry.available_bytes = size.documents, size.text_bytes
        available[source] = size.text_bytes
    if not available:
        raise UserError(f"{corpus_root}: no corpus found for any source of mixture '{mixture.name}' "
                        f"({', '.join(mixture.sources())}); run `pipeline run all` first")

    targets = byte_targets(available, mixture.proportions, cap_bytes)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "wb") as out:
        for source, target in targets.items():
            entry = report.sources[source]
            entry.target_bytes = target
            chosen = _choose(corpus_root / source, seed, target, entry.available_bytes)
            for text in _texts(corpus_root / source, chosen):
                data = text.encode("utf-8")
                out.write(data)
                out.write(b"\n")
                entry.documents += 1
                entry.bytes += len(data)
            if target >= entry.available_bytes:
                entry.short = target < mixture_share(mixture, source, cap_bytes)
                entry.note = ("had less text than its share of the cap: all of it was taken" if entry.short
                              else "all of its text was taken")
    report.documents = sum(e.documents for e in report.sources.values())
    report.bytes = sum(e.bytes for e in report.sources.values())
    for entry in report.sources.values():
        entry.share = entry.bytes / report.bytes if report.bytes else 0.0
    return report


def mixture_share(mixture: Mixture, source: str, cap_bytes: int) -> float:
    return mixture.proportions[source] * cap_bytes


def _choose(folder: Path, seed: int, target: int, available: int) -> dict[int, np.ndarray]:
    """Rows to take per shard: the smallest keys whose lengths add up to `target` bytes (to the
    nearest document boundary)."""
    if target >= available:
        return {i: None for i, _ in enumerate(shard_paths(folder))}  # type: ignore[misc]
    threshold = min(1.0, OVERSAMPLE * target / available + 1e-3) * KEY_SPACE
    keys: list[int] = []
    places: list[tuple[int, int, int]] = []  # (shard, row, bytes)
    row_base: dict[int, int] = {}
    for shard, batch in source_documents(folder):
        base = row_base.get(shard, 0)
        row_base[shard] = base + batch.num_rows
        lengths = text_lengths(batch)
        for row, doc_id in enumerate(batch.column("id").to_pylist()):
            key = document_key(seed, doc_id)
            if key < threshold:
                keys.append(key)
                places.append((shard, base + row, int(lengths[row])))
    chosen: dict[int, list[int]] = {}
    total = 0
    for index in np.argsort(np.array(keys, dtype=np.uint64), kind="stable"):
        shard, row, length = places[index]
        if total + length / 2 > target:  # stop at the document boundary nearest the target
            break
        chosen.setdefault(shard, []).append(row)
        total += length
    return {shard: np.array(sorted(rows), dtype=np.int64) for shard, rows in chosen.items()}


def _texts(folder: Path, chosen: dict[int, np.ndarray | None]) -> Iterator[str]:
    """Texts of the chosen rows (None: every row), in shard and row order."""
    paths = shard_paths(folder)
    for shard in sorted(chosen):
        rows = chosen[shard]
        base = 0
        with pa.memory_map(str(paths[shard])) as source:
            for batch in pa.ipc.open_stream(source):
                if rows is None:
                    yield from batch.column("text").to_pylist()
                else:
                    lo, hi = np.searchsorted(rows, [base, base + batch.num_rows])
                    if hi > lo:
                        yield from batch.column("text").take(pa.array(rows[lo:hi] - base)).to_pylist()
                base += batch.num_rows
