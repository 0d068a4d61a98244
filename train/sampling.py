"""Sampling with a KV cache, token by token (`train generate`, train/generate.py).

The model file has no cache (STYLE 6: the cache lives on the generation path only), so this
module runs the model's own sub-modules step by step: the prompt once (prefill), then one token
at a time, each step attending to the keys and values cached for every earlier position.
Sampling: temperature (0 = greedy), nucleus top-p, a limit on new tokens, stop at eos.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from pipeline.common.errors import UserError
from train.model import Transformer, apply_rotary


class KVCache:
    """Keys and values per layer, (batch, kv_heads, max_len, head_dim), filled left to right."""

    def __init__(self, model: Transformer, batch: int, max_len: int) -> None:
        args = model.args
        param = model.output.weight
        shape = (batch, args.kv_heads, max_len, args.head_dim)
        self.keys = [torch.zeros(shape, dtype=param.dtype, device=param.device) for _ in range(args.n_layers)]
        self.values = [torch.zeros(shape, dtype=param.dtype, device=param.device) for _ in range(args.n_layers)]
        self.length = 0  # positions filled


@torch.no_grad()
def forward_cached(model: Transformer, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Logits (batch, seq, vocab) of `tokens` (batch, seq) placed after the cached positions."""
    batch, seq = tokens.shape
    start, end = cache.length, cache.length + seq
    if end > model.args.max_seq_len:
        raise UserError(f"{end} tokens exceed the model's context of {model.args.max_seq_len}")
    cos, sin = model.rope_cos[start:end], model.rope_sin[start:end]
    # New queries see every cached position and the new ones up to themselves.
    mask = None
    if seq > 1:
        mask = torch.ones(seq, end, dtype=torch.bool, device=tokens.device).tril(diagonal=start)
    h = model.tok_embeddings(tokens)  # (batch, seq, dim)
    for index, layer in enumerate(model.layers):
        attention = layer.attention
        x = layer.attention_norm(h)
        q = attention.wq(x).view(batch, seq, attention.n_heads, attention.head_dim)
        k = attention.wk(x).view(batch, seq, attention.n_kv_heads, attention.head_dim)
        v = attention.wv(x).view(batch, seq, attention.n_kv_heads, attention.head_dim)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        cache.keys[index][:, :, start:end] = k.transpose(1, 2)
        cache.values[index][:, :, start:end] = v.transpose(1, 2)
        keys, values = cache.keys[index][:, :, :end], cache.values[index][:, :, :end]
        out = F.scaled_dot_product_attention(q.transpose(1, 2), keys, values, attn_mask=mask,
                                             enable_gqa=attention.n_kv_heads != attention.n_heads)
        h = h + attention.wo(out.transpose(1, 2).reshape(batch, seq, -1))
        h = h + layer.feed_forward(layer.ffn_norm(h))
    cache.length = end
    return model.output(model.norm(h))  # (batch, seq, vocab)


def sample_next(logits: torch.Tensor, temperature: float, top_p: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """One token id per row of `logits` (batch, vocab)."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # Keep the smallest prefix whose mass reaches top_p: a token stays if the mass before it is below.
        drop = sorted_probs.cumsum(dim=-1) - sorted_probs >= top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs / probs.sum(dim=-1, keepdim=True), 1, generator=generator).squeeze(-1)


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int = 128
    temperature: float = 0.8
    top_p: float = 0.95
    seed: int = 0


def generate(model: Transformer, prompt: list[int], sampling: Sampling, eos_id: int | None = None) -> Iterator[int]:
    """Yield new token ids one by one as they are sampled (stopping after eos or the limit)."""
    if not prompt:
        raise UserError("the prompt is empty")
    limit = model.args.max_seq_len
    if len(prompt) >= limit:
        raise UserError(f"the prompt has {len(prompt)} tokens; the model's context is {limit}")
    budget = min(sampling.max_new_tokens, limit - len(prompt))
    device = model.output.weight.device
    generator = torch.Generator(device=device).manual_seed(sampling.seed)
    cache = KVCache(model, 1, len(prompt) + budget)
    logits = forward_cached(model, torch.tensor([prompt], device=device), cache)[:, -1]
    for _ in range(budget):
        token = sample_next(logits, sampling.temperature, sampling.top_p, generator)
        value = int(token.item())
        yield value
        if value == eos_id:
            return
        logits = forward_cached(model, token.view(1, 1), cache)[:, -1]
