"""Training batches drawn from token shards by mixture proportions, exact epochs.

The shard format is the tokenizer's contract (`data/tokens/<source>/`: `train-NNNNN.bin` flat
token ids, `train-NNNNN.idx` int64 document offsets, `train-NNNNN.ids` document ids,
`meta.json`). A source's shards are read as one concatenated stream of documents, each `[bos,
..., eos]`, in meta.json's order; a training sequence is a window of seq_len + 1 consecutive
tokens (inputs and shifted targets) crossing document boundaries the way LLaMA's packed
sequences do.

Which windows: train/sampler.py. A step's global batch is sequences [step * B, (step + 1) * B)
(B = batch_tokens // seq_len); global micro-batch g (train/parallel.py `micro_index`: data rank
d takes g = d * accumulation + m) is the g-th run of micro_batch sequences of it. So a step's
sequences are one set for any world size, a run resumed at step k draws what an uninterrupted
one draws from k on, and the tokens drawn so far follow from the step alone.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.common.errors import InputError, UserError
from pipeline.common.warn import warn
from pipeline.corpus.mixture import Mixture
from tokenizer.token_shards import (
    ENCODE_FIRST,
    META,
    Shard,
    check_same_tokenizer,
    encode_unfinished,
    is_encoded,
    open_shards,
    read_document_ids,
    read_meta,
)
from train.sampler import Draw, ExactEpochSampler, window_count

SKIP_HINT = f"{ENCODE_FIRST}, or train on the other sources with --skip-missing-sources"
IDS_HELD = 64  # shards whose document ids a source keeps read (SourceTokens.documents)


@dataclass
class SourceTokens:
    """One source's shards of one split, read as a single stream (a window's slice of a shard at
    a time: tokenizer/token_shards.py `Shard`)."""

    name: str
    folder: Path
    meta: dict[str, Any]
    shards: list[Shard]  # the non-empty ones, in meta.json's order
    starts: np.ndarray  # starts[i]: offset of shard i in the stream; starts[-1]: total tokens
    split: str = "train"

    def __post_init__(self) -> None:
        # Shard number -> its document ids (a mapped Arrow file), read when first asked; the last
        # IDS_HELD read are kept, so a run naming documents over 18,000 shards holds few mappings.
        self._ids: OrderedDict[int, Any] = OrderedDict()
        self._ids_checked: set[int] = set()  # shards whose ids file was hashed once already

    @property
    def tokens(self) -> int:
        return int(self.starts[-1])

    @property
    def has_document_ids(self) -> bool:
        return all(shard.ids_path is not None for shard in self.shards)

    def read(self, start: int, length: int) -> np.ndarray:
        """Tokens [start, start + length) of the stream, across shard boundaries if needed."""
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        offset = start - int(self.starts[first])
        shard = self.shards[first].tokens
        if offset + length <= len(shard):
            return np.asarray(shard[offset:offset + length])
        parts, need, i = [], length, first
        while need > 0:
            piece = np.asarray(self.shards[i].tokens[offset:offset + need])
            parts.append(piece)
            need -= len(piece)
            i, offset = i + 1, 0
        return np.concatenate(parts)

    def documents(self, start: int, length: int) -> list[str] | None:
        """Corpus ids of the documents tokens [start, start + length) of the stream belong to, in
        order; None when the shards have no `.ids` sidecar (encoded before it existed)."""
        if not self.has_document_ids:
            return None
        found: list[str] = []
        end = start + length
        number = int(np.searchsorted(self.starts, start, side="right")) - 1
        while number < len(self.shards) and int(self.starts[number]) < end:
            shard, base = self.shards[number], int(self.starts[number])
            low, high = max(start - base, 0), min(end - base, len(shard.tokens))
            # Document d holds tokens [offsets[d], offsets[d + 1]): the ones holding low and high - 1.
            first = shard.offsets.searchsorted(low, side="right") - 1
            last = shard.offsets.searchsorted(high - 1, side="right") - 1
            found.extend(self._document_ids(number)[first:last + 1].to_pylist())
            number += 1
        return found

    def _document_ids(self, number: int) -> Any:
        if number in self._ids:
            self._ids.move_to_end(number)
        else:
            self._ids[number] = read_document_ids(self.shards[number], check_sha256=number not in self._ids_checked)
            self._ids_checked.add(number)
            if len(self._ids) > IDS_HELD:
                self._ids.popitem(last=False)
        return self._ids[number]


def open_source(folder: Path, name: str, split: str = "train") -> SourceTokens:
    """`folder`'s shards of `split` (tokenizer/token_shards.py checks them)."""
    meta = read_meta(folder, name, SKIP_HINT)
    shards = [shard for shard in open_shards(folder, meta, split) if len(shard.tokens)]
    starts = np.concatenate([[0], np.cumsum([len(s.tokens) for s in shards], dtype=np.int64)]).astype(np.int64)
    return SourceTokens(name=name, folder=folder, meta=meta, shards=shards, starts=starts, split=split)


class MixtureLoader:
    """Draws (inputs, targets) micro-batches of a run's global sequences (see the module docstring)."""

    def __init__(self, sources: list[SourceTokens], proportions: list[float], *, seq_len: int,
                 micro_batch: int, batch_tokens: int, seed: int) -> None:
        if batch_tokens % (seq_len * micro_batch):
            raise ValueError(f"batch of {batch_tokens} tokens is not a multiple of {seq_len} x {micro_batch}")
        self.sources = sources
        self.seq_len = seq_len
        self.micro_batch = micro_batch
        self.step_sequences = batch_tokens // seq_len
        self.seed = seed
        vocab = {int(s.meta.get("vocab_size", 0)) for s in sources}
        self.vocab_size = vocab.pop() if len(vocab) == 1 else 0
        for source in sources:
            if source.tokens < seq_len + 1:
                raise InputError(str(source.folder), f"holds {source.tokens} tokens, fewer than one sequence "
                                 f"of {seq_len + 1} (context + 1)")
        self.sampler = ExactEpochSampler([s.name for s in sources], [window_count(s.tokens, seq_len) for s in sources],
                                         proportions, seq_len=seq_len, seed=seed)

    def draws(self, step: int, micro: int = 0) -> list[Draw]:
        """The sequences of global micro-batch `micro` of `step`."""
        return self.sampler.draws(step * self.step_sequences + micro * self.micro_batch, self.micro_batch)

    def batch(self, step: int, micro: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets, each (micro_batch, seq_len) int64, of global micro-batch `micro` of `step`."""
        draws = self.draws(step, micro)
        rows = np.empty((self.micro_batch, self.seq_len + 1), dtype=np.int64)
        for row, draw in enumerate(draws):
            rows[row] = self.sources[draw.source].read(draw.start, self.seq_len + 1)
        if self.vocab_size and int(rows.max()) >= self.vocab_size:  # one max per batch: cheap
            raise InputError(str(self.sources[draws[int(rows.max(axis=1).argmax())].source].folder),
                             f"token id {int(rows.max())} is past the vocabulary of {self.vocab_size} (shards "
                             "encoded with another tokenizer, or damaged)")
        window = torch.from_numpy(rows)
        return window[:, :-1], window[:, 1:]

    def documents_of(self, draw: Draw) -> list[str] | None:
        """Corpus ids of the documents a drawn window covers (None: shards without `.ids`)."""
        return self.sources[draw.source].documents(draw.start, self.seq_len + 1)

    @property
    def has_document_ids(self) -> bool:
        return all(source.has_document_ids for source in self.sources)

    def tokens_drawn(self, steps: int) -> dict[str, int]:
        """Input tokens drawn from each source by the first `steps` steps, over all ranks."""
        drawn = self.sampler.sequences_drawn(steps * self.step_sequences)
        return {name: count * self.seq_len for name, count in drawn.items()}

    def epochs(self, steps: int) -> dict[str, float]:
        """Exact epochs of each source after `steps` steps (sequences drawn over windows held)."""
        return self.sampler.epochs(steps * self.step_sequences)

    def state_dict(self, steps: int) -> dict[str, Any]:
        """What a checkpoint records: the position is the step itself; the counts are for people."""
        return {"tokens_drawn": self.tokens_drawn(steps), "seed": self.seed, "sampler": "exact-epochs"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Check a checkpoint's loader state against this loader's sources (nothing else to restore)."""
        names = {s.name for s in self.sources}
        if set(state["tokens_drawn"]) != names:
            raise UserError(f"checkpoint was drawn from sources {sorted(state['tokens_drawn'])}, "
                            f"now {sorted(names)}")
        if state.get("sampler") != "exact-epochs":
            warn("warning: the checkpoint's batches were drawn at random positions (an older herd); from here on "
                 "the run walks exact epochs, and the epochs it reports count earlier steps as if they had too")


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
        if skip_missing and encode_unfinished(folder):
            # Not a missing source: one whose encode was cut short. Leaving it out would train on
            # another mixture than the one meant, without a word.
            raise InputError(str(folder / META), "missing: the `tokenizer encode` started here has not finished "
                             "(rerun it); --skip-missing-sources leaves out only sources never encoded")
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
