"""A small trained debug run for the export, generation and evaluation tests: token shards
with a held-out split written by the test itself, then a few steps of the real trainer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.train.token_shards import counting_documents, write_llama1_tokens
from train.config import TrainConfig, resolve
from train.loop import train


def add_heldout(folder: Path, documents: list[list[int]], bos: int = 1, eos: int = 2) -> int:
    """Write `documents` as the source's held-out split (one shard) and list it in meta.json."""
    docs = [[bos, *doc, eos] for doc in documents]
    flat = np.array([t for doc in docs for t in doc], dtype="<u2")
    offsets = np.cumsum([0] + [len(d) for d in docs]).astype("<i8")
    flat.tofile(folder / "heldout-00000.bin")
    offsets.tofile(folder / "heldout-00000.idx")
    meta = json.loads((folder / "meta.json").read_text())
    meta["splits"]["heldout"] = {"documents": len(docs), "tokens": int(len(flat)),
                                 "shards": [{"index": "heldout-00000.idx", "documents": len(docs),
                                             "tokens": int(len(flat))}]}
    (folder / "meta.json").write_text(json.dumps(meta))
    return int(len(flat))


def write_tokens_with_heldout(root: Path, seed: int = 0) -> None:
    write_llama1_tokens(root, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        add_heldout(folder, counting_documents(rng, 12, 48, 256))


def train_debug_run(root: Path, steps: int = 40, **changes) -> Path:
    """Train the debug preset on counting documents; returns the run folder."""
    tokens = root / "tokens"
    if not tokens.exists():
        write_tokens_with_heldout(tokens)
    run = root / "run"
    config = TrainConfig(model="debug", data=str(tokens), run=str(run), steps=steps, progress=False, **changes)
    train(resolve(config))
    return run
