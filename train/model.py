"""The LLaMA-1 transformer: plain nn.Modules and a ModelArgs dataclass.

Module names follow Meta's reference layout so checkpoints map one to one:
`tok_embeddings`, `layers.N.attention.{wq,wk,wv,wo}`, `layers.N.feed_forward.{w1,w2,w3}`,
`layers.N.attention_norm`, `layers.N.ffn_norm`, `norm`, `output`.

Rotary layout: interleaved pairs, as in Meta's reference (`view_as_complex` over the last dim
reshaped to (..., head_dim/2, 2)): dimensions (2i, 2i+1) of each head rotate together by
angle pos * theta^(-2i/head_dim). Hugging Face's LlamaForCausalLM uses the half-split layout
(dimensions i and i + head_dim/2 rotate together), so exporting to HF permutes the rows of
wq and wk per head exactly as HF's convert_llama_weights_to_hf does. The cos/sin tables are
real buffers; the rotation itself is one complex product (see apply_rotary).

Nothing here knows about parallelism, compilation or activation checkpointing: those are
applied from outside (train/apply.py). There is no KV cache; generation owns that path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributed.tensor import DTensor

from train.loss import linear_cross_entropy
from train.model_args import ModelArgs


Init = Callable[[torch.Tensor], object]
InitPlan = list[tuple[torch.Tensor, Init]]


def normal(std: float) -> Init:
    """Truncated normal at +-3 std, the initialiser of every matrix but the embeddings."""
    return lambda w: nn.init.trunc_normal_(w, mean=0.0, std=std, a=-3 * std, b=3 * std)


def rope_tables(head_dim: int, max_seq_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of shape (max_seq_len, head_dim/2), in fp32."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs of x (batch, seq, heads, head_dim) by per-position angles.

    Eagerly, each pair is a complex number multiplied by cos + i sin, as in Meta's reference: one
    complex product forward and one backward, against seven real kernels for the same rotation
    written with even/odd slices (4x faster on a CPU). Inductor generates no code for complex
    operators, so under torch.compile the real form is used and fused into one kernel.
    The tables stay real buffers: a module cast to bf16 would drop the imaginary part of a
    complex one.
    """
    if torch.compiler.is_compiling():
        return rotate_pairs_real(x, cos, sin)
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))  # (batch, seq, heads, head_dim/2)
    rotation = torch.complex(cos, sin)[None, :, None, :]  # (1, seq, 1, head_dim/2), small
    return torch.view_as_real(pairs * rotation).flatten(-2).type_as(x)


def rotate_pairs_real(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """apply_rotary's rotation in real arithmetic on the even and odd dimensions."""
    pairs = x.float().unflatten(-1, (-1, 2))  # (batch, seq, heads, head_dim/2, 2)
    even, odd = pairs[..., 0], pairs[..., 1]
    cos = cos[None, :, None, :]  # (1, seq, 1, head_dim/2)
    sin = sin[None, :, None, :]
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return rotated.flatten(-2).type_as(x)


class RMSNorm(nn.Module):
    """Root-mean-square norm computed in fp32 whatever the activation dtype."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * self.weight.float()).type_as(x)


class Attention(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.n_heads = args.n_heads
        self.n_kv_heads = args.kv_heads
        self.head_dim = args.head_dim
        self.wq = nn.Linear(args.dim, args.n_heads * args.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, self.n_kv_heads * args.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, self.n_kv_heads * args.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * args.head_dim, args.dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        batch, seq, _ = x.shape
        # -1 heads: under tensor parallelism (applied from outside) a rank holds a slice of them.
        q = self.wq(x).view(batch, seq, -1, self.head_dim)
        k = self.wk(x).view(batch, seq, -1, self.head_dim)
        v = self.wv(x).view(batch, seq, -1, self.head_dim)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        # SDPA wants (batch, heads, seq, head_dim); is_causal never materialises masked scores
        # on the flash / memory-efficient kernels.
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                             enable_gqa=self.n_kv_heads != self.n_heads)
        out = out.transpose(1, 2).reshape(batch, seq, -1)
        return self.wo(out)  # (batch, seq, dim)

    def init_plan(self, std: float, out_std: float) -> InitPlan:
        return [(self.wq.weight, normal(std)), (self.wk.weight, normal(std)), (self.wv.weight, normal(std)),
                (self.wo.weight, normal(out_std))]


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))

    def init_plan(self, std: float, out_std: float) -> InitPlan:
        return [(self.w1.weight, normal(std)), (self.w3.weight, normal(std)), (self.w2.weight, normal(out_std))]


class TransformerBlock(nn.Module):
    def __init__(self, layer_id: int, args: ModelArgs) -> None:
        super().__init__()
        self.layer_id = layer_id
        self.attention = Attention(args)
        self.feed_forward = FeedForward(args.dim, args.ffn_hidden_dim)
        self.attention_norm = RMSNorm(args.dim, args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, args.norm_eps)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), cos, sin)
        return h + self.feed_forward(self.ffn_norm(h))

    def init_plan(self, std: float, out_std: float) -> InitPlan:
        return [(self.attention_norm.weight, nn.init.ones_), (self.ffn_norm.weight, nn.init.ones_),
                *self.attention.init_plan(std, out_std), *self.feed_forward.init_plan(std, out_std)]


class Transformer(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        self.layers = nn.ModuleList(TransformerBlock(i, args) for i in range(args.n_layers))
        self.norm = RMSNorm(args.dim, args.norm_eps)
        self.output = nn.Linear(args.dim, args.vocab_size, bias=False)
        # Derived from args, not learned: kept out of the state dict and rebuilt by init_weights
        # (a model built on the meta device gets real tables there).
        cos, sin = rope_tables(args.head_dim, args.max_seq_len, args.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (batch, seq) int64 -> logits (batch, seq, vocab_size); with `targets` (batch, seq),
        the mean cross-entropy instead, computed without holding the logits (train/loss.py).

        The loss is part of forward, not a method beside it, so that FSDP's hooks, which wrap
        forward, gather the output layer for it."""
        seq = tokens.shape[1]
        if seq > self.args.max_seq_len:
            raise ValueError(f"sequence of {seq} tokens exceeds max_seq_len {self.args.max_seq_len}")
        cos, sin = self.rope_cos[:seq], self.rope_sin[:seq]
        h = self.tok_embeddings(tokens)  # (batch, seq, dim)
        for layer in self.layers:
            h = layer(h, cos, sin)
        h = self.norm(h)
        if targets is None:
            return self.output(h)  # (batch, seq, vocab_size)
        if isinstance(self.output.weight, DTensor):
            # Tensor parallelism splits the output layer by vocabulary and hands back whole logits.
            return F.cross_entropy(self.output(h).flatten(0, 1).float(), targets.flatten())
        return linear_cross_entropy(h.flatten(0, 1), self.output.weight, targets.flatten())

    @torch.no_grad()
    def init_weights(self, buffer_device: torch.device | str | None = None) -> None:
        """Rebuild the rotary tables and initialise every parameter in place (see init_plan)."""
        self.init_rope(buffer_device)
        for param, init in self.init_plan():
            init(param)

    def init_rope(self, device: torch.device | str | None = None) -> None:
        cos, sin = rope_tables(self.args.head_dim, self.args.max_seq_len, self.args.rope_theta)
        device = device or self.rope_cos.device
        self.rope_cos = cos.to(device)
        self.rope_sin = sin.to(device)

    def init_plan(self) -> InitPlan:
        """Every parameter with its initialiser, in the order the random draws are made.

        Matrices: truncated normal, std 0.02; the projections that write into the residual
        stream (wo, w2) are scaled by 1/sqrt(2 * n_layers) so the residual's variance stays
        flat with depth. Norm weights: ones. The output layer: std dim^-0.5, so the initial
        logits have unit scale whatever the width (the first loss is about ln(vocab_size) + 0.5).
        A sharded model (train/parallel.py) draws each parameter whole, in this order, and keeps
        its own part: the same weights as one process.
        """
        std = 0.02
        out_std = std / math.sqrt(2 * self.args.n_layers)
        plan: InitPlan = [(self.tok_embeddings.weight, lambda w: nn.init.normal_(w, mean=0.0, std=std))]
        for layer in self.layers:
            plan += layer.init_plan(std, out_std)
        plan += [(self.norm.weight, nn.init.ones_), (self.output.weight, normal(self.args.dim ** -0.5))]
        return plan

    def num_params(self, exclude_embeddings: bool = False) -> int:
        total = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            total -= self.tok_embeddings.weight.numel()
        return total


def flops_per_token(args: ModelArgs, seq_len: int, num_params: int) -> float:
    """Training FLOPs per token: 6 per non-embedding parameter (forward + backward) plus the
    attention scores and values, 12 * layers * dim * seq (PaLM appendix B, without causal halving)."""
    non_embedding = num_params - args.vocab_size * args.dim
    return 6.0 * non_embedding + 12.0 * args.n_layers * args.dim * seq_len
