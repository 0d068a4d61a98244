"""Token shards written by the tests themselves, following /notes' token shard format:
`<source>/train-NNNNN.bin` (flat little-endian ids, each document [bos, ..., eos]),
`train-NNNNN.idx` (int64 document offsets plus the total), `train-NNNNN.ids` (the documents'
ids, an Arrow file; document k of a source is `<source>-<k>`) and `meta.json`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.corpus.mixture import LLAMA1

BOS, EOS = 1, 2


def write_source(folder: Path, documents: list[list[int]], *, vocab_size: int = 256, docs_per_shard: int = 0,
                 source: str = "", tokenizer_sha256: str = "0" * 64, with_ids: bool = True) -> int:
    """Write `documents` (token ids without bos/eos) as train shards; return the tokens written.
    `with_ids`: write the `.ids` sidecar (shards of an older encode have none)."""
    folder.mkdir(parents=True, exist_ok=True)
    dtype = "uint16" if vocab_size <= 65536 else "uint32"
    per_shard = docs_per_shard or max(1, len(documents))
    shards, total, total_docs = [], 0, 0
    for number, first in enumerate(range(0, len(documents), per_shard)):
        docs = [[BOS, *doc, EOS] for doc in documents[first:first + per_shard]]
        flat = np.array([t for doc in docs for t in doc], dtype="<u2" if dtype == "uint16" else "<u4")
        offsets = np.cumsum([0] + [len(d) for d in docs]).astype("<i8")
        bin_name, idx_name = f"train-{number:05d}.bin", f"train-{number:05d}.idx"
        flat.tofile(folder / bin_name)
        offsets.tofile(folder / idx_name)
        # The spec names the .bin under "tokens" and counts under "tokens" too; JSON keeps the count.
        shards.append({"index": idx_name, "documents": len(docs), "tokens": int(len(flat))})
        if with_ids:
            ids_name = f"train-{number:05d}.ids"
            names = [f"{source or folder.name}-{first + k}" for k in range(len(docs))]
            with pa.ipc.new_file(str(folder / ids_name), pa.schema([("id", pa.string())])) as writer:
                writer.write_table(pa.table({"id": names}))
            shards[-1].update(ids=ids_name, ids_sha256=hashlib.sha256((folder / ids_name).read_bytes()).hexdigest())
        total += len(flat)
        total_docs += len(docs)
    meta = {"source": source or folder.name, "tokenizer": "test.model", "tokenizer_sha256": tokenizer_sha256,
            "vocab_size": vocab_size, "dtype": dtype, "bos_id": BOS, "eos_id": EOS,
            "splits": {"train": {"documents": total_docs, "tokens": total, "shards": shards},
                       "heldout": {"documents": 0, "tokens": 0, "shards": []}}}
    (folder / "meta.json").write_text(json.dumps(meta))
    return total


def counting_documents(rng: np.random.Generator, count: int, length: int, vocab_size: int) -> list[list[int]]:
    """Learnable documents: runs of consecutive ids from a random start (next token = this + 1)."""
    docs = []
    for _ in range(count):
        start = int(rng.integers(3, vocab_size))
        docs.append([3 + (start - 3 + i) % (vocab_size - 3) for i in range(length)])
    return docs


def write_llama1_tokens(root: Path, *, vocab_size: int = 256, seed: int = 0,
                        tokens_per_source: dict[str, int] | None = None) -> dict[str, int]:
    """One source folder per llama1 source under `root`; returns tokens written per source."""
    rng = np.random.default_rng(seed)
    written = {}
    for name in LLAMA1.proportions:
        want = (tokens_per_source or {}).get(name, 4000)
        docs = counting_documents(rng, max(1, want // 50), 48, vocab_size)
        written[name] = write_source(root / name, docs, vocab_size=vocab_size, docs_per_shard=20)
    return written
