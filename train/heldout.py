"""Held-out loss and perplexity per source and for the mixture (`train eval`, train/evaluate.py).

What it measures, and nothing else (no downstream benchmarks): the model's next-token
cross-entropy on token shards it was not trained on. Each source's held-out split
(`heldout-NNNNN.bin` in its token folder) is read as one stream and cut into consecutive,
non-overlapping windows of context + 1 tokens; every token after a window's first is predicted
once. A source's perplexity is exp(mean negative log-likelihood
over its predicted tokens). The mixture's is exp of the sources' mean NLL weighted by the
mixture's proportions (renormalised over the sources that have held-out tokens), i.e. the
perplexity of text drawn the way the model was trained. Printed as a table and saved as JSON
(default `<run>/eval.json`).

Training computes the same numbers during a run (`train --eval-every N`, train/loop.py) with
`open_heldout` and `heldout_losses` below, on the first `--eval-sequences` windows of each source:
`train eval --max-tokens K x context` on the checkpoint of that step gives them again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from pipeline.common.errors import UserError
from tokenizer.token_shards import META, is_encoded
from train.data import SourceTokens, open_source
from train.model import Transformer


@dataclass
class SourceScore:
    source: str
    tokens: int  # tokens predicted
    nll: float  # mean negative log-likelihood, nats per token
    perplexity: float


@torch.no_grad()
def score_source(model: Transformer, tokens: SourceTokens, seq_len: int, max_tokens: int, batch: int = 8) -> SourceScore:
    """Mean NLL of the model over the first `max_tokens` predicted tokens of a source's stream.

    `model` may be wrapped for training (DDP, FSDP, activation checkpointing): only its forward
    is called, the same number of times on every rank (FSDP's gathers are collectives)."""
    device = next(model.parameters()).device
    window = seq_len + 1
    usable = min(tokens.tokens, max_tokens + 1)
    starts = list(range(0, max(usable - 1, 0), seq_len))
    total_nll, total_tokens = 0.0, 0
    for first in range(0, len(starts), batch):
        rows = []
        for start in starts[first:first + batch]:
            length = min(window, usable - start)
            rows.append(torch.from_numpy(tokens.read(start, length).astype("int64")))
        # The stream's last window may be shorter: score each length group as its own batch.
        for length in sorted({len(r) for r in rows}):
            group = torch.stack([r for r in rows if len(r) == length]).to(device)
            if length < 2:
                continue
            logits = model(group[:, :-1])
            nll = F.cross_entropy(logits.flatten(0, 1).float(), group[:, 1:].flatten(), reduction="sum")
            total_nll += float(nll)
            total_tokens += group[:, 1:].numel()
    if total_tokens == 0:
        raise UserError(f"{tokens.folder}: no held-out tokens to score")
    mean = total_nll / total_tokens
    return SourceScore(tokens.name, total_tokens, mean, math.exp(mean))


@dataclass
class HeldOut:
    """The held-out splits of a mixture's sources, with the mixture's proportions."""

    sources: list[SourceTokens]
    proportions: dict[str, float]  # of every mixture source, with or without a held-out split
    missing: list[str] = field(default_factory=list)  # mixture sources without held-out tokens


def open_heldout(data_root: Path, proportions: dict[str, float],
                 check_tokens: Callable[[dict, Path], None] | None = None) -> HeldOut:
    """Every mixture source's held-out split under `data_root`; at least one must have tokens."""
    heldout = HeldOut(sources=[], proportions=proportions)
    for name, share in proportions.items():
        if share <= 0:
            continue
        folder = data_root / name
        if not is_encoded(folder):
            heldout.missing.append(name)
            continue
        held = open_source(folder, name, split="heldout")
        if check_tokens is not None:
            check_tokens(held.meta, folder / META)
        if held.tokens < 2:
            heldout.missing.append(name)
            continue
        heldout.sources.append(held)
    if not heldout.sources:
        raise UserError(f"{data_root}: no source of the mixture has a held-out split "
                        "(`tokenizer encode` writes heldout-NNNNN.bin)")
    return heldout


def score(model: Transformer, heldout: HeldOut, seq_len: int, max_tokens: int) -> dict:
    """Scores of every source with a held-out split, and of the mixture: the proportion-weighted
    mean of the sources' NLL, renormalised over the sources scored."""
    scores = [score_source(model, held, seq_len, max_tokens) for held in heldout.sources]
    proportions = heldout.proportions
    weight = sum(proportions[s.source] for s in scores)
    mixture_nll = sum(proportions[s.source] * s.nll for s in scores) / weight
    return {
        "sources": [asdict(s) for s in scores],
        "mixture": {"nll": mixture_nll, "perplexity": math.exp(mixture_nll),
                    "weights": {s.source: proportions[s.source] / weight for s in scores}},
        "without_heldout": list(heldout.missing),
        "seq_len": seq_len,
        "max_tokens_per_source": max_tokens,
    }


def heldout_losses(model: Transformer, heldout: HeldOut, seq_len: int, sequences: int) -> dict[str, float]:
    """`score` on the first `sequences` windows of each source, as metrics.jsonl keys:
    `eval/<source>` and `eval/mixture`, each a mean NLL in nats per token (the training loss's unit)."""
    result = score(model, heldout, seq_len, sequences * seq_len)
    losses = {f"eval/{s['source']}": s["nll"] for s in result["sources"]}
    losses["eval/mixture"] = result["mixture"]["nll"]
    return losses


def evaluate(model: Transformer, data_root: Path, proportions: dict[str, float], seq_len: int,
             max_tokens: int, check_tokens: Callable[[dict, Path], None] | None = None) -> dict:
    """Scores of every mixture source with a held-out split, and of the mixture."""
    return score(model, open_heldout(data_root, proportions, check_tokens), seq_len, max_tokens)
