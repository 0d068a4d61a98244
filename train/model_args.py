"""The transformer's shape (ModelArgs), apart from the model so that `train` checks a config file
and its flags before it loads torch: a typo in train.toml is one line in a fraction of a second,
not after the seconds torch takes to import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import with_config

from pipeline.common.config import STRICT, Above0, Positive


# The field types are the schema a `[model]` table is checked against (train/config.py).
@with_config(STRICT)
@dataclass(frozen=True)
class ModelArgs:
    dim: Positive = 4096
    n_layers: Positive = 32
    n_heads: Positive = 32
    n_kv_heads: Positive | None = None  # None: as many as n_heads (LLaMA-1 has no grouped-query attention)
    vocab_size: Positive = 32000
    multiple_of: Positive = 256  # SwiGLU hidden size is rounded up to a multiple of this
    ffn_dim_multiplier: Above0 | None = None
    norm_eps: Above0 = 1e-5
    rope_theta: Above0 = 10000.0
    max_seq_len: Positive = 2048

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def ffn_hidden_dim(self) -> int:
        """2/3 * 4d, optionally scaled, rounded up to `multiple_of` (7B: 11008)."""
        hidden = int(2 * (4 * self.dim) / 3)
        if self.ffn_dim_multiplier is not None:
            hidden = int(self.ffn_dim_multiplier * hidden)
        return self.multiple_of * ((hidden + self.multiple_of - 1) // self.multiple_of)


# How much of each block's forward the backward pass recomputes (train/apply.py), a setting of
# the run rather than of the shape; here with ModelArgs so that checking it needs no torch either.
CheckpointingMode = Literal["none", "selective", "full"]
CHECKPOINTING_MODES: tuple[str, ...] = get_args(CheckpointingMode)


def checkpointing_mode(value: str | bool) -> str:
    """A mode from a setting that was a bool before `selective` existed: true was today's `full`."""
    if isinstance(value, bool):
        return "full" if value else "none"
    return value
