"""Training batches drawn from memory-mapped token shards by mixture proportions.

The shard format is the tokenizer's contract (`data/tokens/<source>/`: `train-NNNNN.bin` flat
token ids, `train-NNNNN.idx` int64 document offsets, `meta.json`). A source's shards are read as
one concatenated stream of documents, each `[bos, ..., eos]`; a training sequence is any window
of seq_len + 1 consecutive tokens (inputs and shifted targets), crossing document boundaries the
way LLaMA's packed sequences do.

Each sequence picks its source with probability equal to the mixture proportion and its start
uniformly over the source, from a random generator seeded by (seed, step, rank, micro-batch).
The batch a step sees therefore depends on nothing but those numbers: resuming at step N needs
no loader position beyond the step itself, and every rank draws different sequences. The loader
counts tokens drawn per source so a run reports how many epochs of each source it has seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.common.errors import InputError, UserError
from pipeline.corpus.mixture import Mixture
from tokenizer.token_shards import ENCODE_FIRST, check_same_tokenizer, is_encoded, open_shards, read_meta

SKIP_HINT = f"{ENCODE_FIRST}, or train on the other sources with --skip-missing-sources"


@dataclass
class SourceTokens:
    """One source's shards of one split, memory-mapped and read as a single stream."""

    name: str
    folder: Path
    meta: dict[str, Any]
    shards: list[np.memmap]
    starts: np.ndarray  # starts[i]: offset of shard i in the stream; starts[-1]: total tokens
    split: str = "train"

    @property
    def tokens(self) -> int:
        return int(self.starts[-1])

    def read(self, start: int, length: int) -> np.ndarray:
        """Tokens [start, start + length) of the stream, across shard boundaries if needed."""
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        offset = start - int(self.starts[first])
        shard = self.shards[first]
        if offset + length <= len(shard):
            return np.asarray(shard[offset:offset + length])
        parts, need, i = [], length, first
        while need > 0:
            piece = self.shards[i][offset:offset + need]
            parts.append(np.asarray(piece))
            need -= len(piece)
            i, offset = i + 1, 0
        return np.concatenate(parts)


def open_source(folder: Path, name: str, split: str = "train") -> SourceTokens:
    """Memory-map `folder`'s shards of `split` (tokenizer/token_shards.py checks them)."""
    meta = read_meta(folder, name, SKIP_HINT)
    shards = [shard.tokens for shard in open_shards(folder, meta, split) if len(shard.tokens)]
    starts = np.concatenate([[0], np.cumsum([len(s) for s in shards], dtype=np.int64)]).astype(np.int64)
    return SourceTokens(name=name, folder=folder, meta=meta, shards=shards, starts=starts, split=split)


class MixtureLoader:
    """Draws (inputs, targets) micro-batches from sources at the mixture's proportions."""

    def __init__(self, sources: list[SourceTokens], proportions: list[float], *, seq_len: int,
                 micro_batch: int, seed: int, rank: int = 0) -> None:
        self.sources = sources
        total = sum(proportions)
        self.proportions = np.array([p / total for p in proportions], dtype=np.float64)
        self.seq_len = seq_len
        self.micro_batch = micro_batch
        self.seed = seed
        self.rank = rank
        self.tokens_drawn = {s.name: 0 for s in sources}
        vocab = {int(s.meta.get("vocab_size", 0)) for s in sources}
        self.vocab_size = vocab.pop() if len(vocab) == 1 else 0
        for source in sources:
            if source.tokens < seq_len + 1:
                raise InputError(str(source.folder), f"holds {source.tokens} tokens, fewer than one sequence "
                                 f"of {seq_len + 1} (context + 1)")

    def batch(self, step: int, micro: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets, each (micro_batch, seq_len) int64, for this step's micro-batch."""
        rng = np.random.default_rng([self.seed, step, self.rank, micro])
        picks = rng.choice(len(self.sources), size=self.micro_batch, p=self.proportions)
        rows = np.empty((self.micro_batch, self.seq_len + 1), dtype=np.int64)
        for row, which in enumerate(picks):
            source = self.sources[which]
            start = int(rng.integers(0, source.tokens - self.seq_len))
            rows[row] = source.read(start, self.seq_len + 1)
            self.tokens_drawn[source.name] += self.seq_len
        if self.vocab_size and int(rows.max()) >= self.vocab_size:  # one max per batch: cheap
            raise InputError(str(self.sources[picks[int(rows.max(axis=1).argmax())]].folder),
                             f"token id {int(rows.max())} is past the vocabulary of {self.vocab_size} (shards "
                             "encoded with another tokenizer, or damaged)")
        window = torch.from_numpy(rows)
        return window[:, :-1], window[:, 1:]

    def epochs(self) -> dict[str, float]:
        """Tokens drawn from each source divided by the tokens it holds."""
        return {s.name: self.tokens_drawn[s.name] / s.tokens for s in self.sources}

    def state_dict(self) -> dict[str, Any]:
        return {"tokens_drawn": dict(self.tokens_drawn), "seed": self.seed, "rank": self.rank}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state["tokens_drawn"]) != set(self.tokens_drawn):
            raise UserError(f"checkpoint was drawn from sources {sorted(state['tokens_drawn'])}, "
                            f"now {sorted(self.tokens_drawn)}")
        self.tokens_drawn = {k: int(v) for k, v in state["tokens_drawn"].items()}


@dataclass(frozen=True)
class TokenData:
    sources: list[SourceTokens]
    proportions: list[float]
    vocab_size: int
    skipped: list[str]  # mixture sources without shards, when allowed to skip them
    tokenizer_sha256: str = ""  # of the tokenizer every source was encoded with (meta.json)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per source, the documents (meta.json) and tokens of the split drawn from."""
        return {s.name: {"documents": int(s.meta["splits"][s.split]["documents"]), "tokens": s.tokens}
                for s in self.sources}


def open_mixture(root: Path, mixture: Mixture, *, split: str = "train", skip_missing: bool = False) -> TokenData:
    """Open every source of the mixture under `root`, checking they share one tokenizer."""
    if not root.is_dir():
        raise InputError(str(root), "token shard folder does not exist (run `tokenizer encode` first)")
    sources, proportions, skipped = [], [], []
    for name, share in mixture.proportions.items():
        if share <= 0:
            continue
        folder = root / name
        if skip_missing and not is_encoded(folder):
            skipped.append(name)
            continue
        source = open_source(folder, name, split)
        if source.tokens == 0 and skip_missing:
            skipped.append(name)
            continue
        sources.append(source)
        proportions.append(share)
    if not sources:
        raise InputError(str(root), f"no token shards for any source of mixture '{mixture.name}'")
    check_same_tokenizer({source.folder: source.meta for source in sources})
    first = sources[0]
    return TokenData(sources=sources, proportions=proportions, vocab_size=int(first.meta["vocab_size"]),
                     skipped=skipped, tokenizer_sha256=str(first.meta.get("tokenizer_sha256", "")))
