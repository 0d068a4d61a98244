"""The output layer and cross-entropy in one pass over row chunks, never holding the whole logits.

The plain `F.cross_entropy(output(h), targets)` materialises the (tokens x vocab) logits, keeps
them and a log-softmax of them for the backward pass, and then writes two more tensors of that
size there (the incoming gradient and a zero-filled one for the target scatter). At LLaMA's
vocabulary of 32,000 those passes over memory, not the matrix products, are most of the cost of a
small model's step, and on a GPU the logits of a 2048-token micro-batch take gigabytes.

Here the rows are processed a chunk at a time: the chunk's logits, its softmax (one exp pass),
its loss, and at once its gradients (softmax - one-hot, multiplied back through the output
weight), which the backward pass then only scales by the incoming gradient. The technique is
the fused linear cross-entropy of Liger Kernel and torchtune's chunked loss. The loss and
gradients equal the plain formula's up to float rounding (tests/train/test_loss.py checks them
against it).
"""

from __future__ import annotations

import torch

# Logits per chunk: about 32 MB of fp32 on a CPU, where a chunk that stays near the caches
# beats one large pass; 256 MB on a GPU, where larger matrix products keep the device busy.
CPU_CHUNK_ELEMENTS = 1 << 23
GPU_CHUNK_ELEMENTS = 1 << 26


def chunk_rows(vocab_size: int, device: torch.device) -> int:
    elements = GPU_CHUNK_ELEMENTS if device.type == "cuda" else CPU_CHUNK_ELEMENTS
    return max(1, elements // vocab_size)


def compute_dtype(weight: torch.Tensor) -> torch.dtype:
    """The matmul dtype the surrounding autocast would pick, else the weight's own."""
    device_type = weight.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return weight.dtype


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of `hidden @ weight.T` against `targets`.

    hidden (tokens, dim), weight (vocab, dim) as nn.Linear holds it, targets (tokens,) int64.
    Under autocast the products run in its dtype; the softmax and the loss always run in fp32.
    """
    if torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad):
        return _LinearCrossEntropy.apply(hidden, weight, targets, compute_dtype(weight))
    return _chunked(hidden, weight, targets, compute_dtype(weight), with_gradients=False)[0]


def _chunked(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, dtype: torch.dtype,
             with_gradients: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(mean loss, d loss / d hidden, d loss / d weight); the gradients only `with_gradients`."""
    tokens = hidden.shape[0]
    rows = chunk_rows(weight.shape[0], weight.device)
    w = weight.to(dtype)
    total = torch.zeros((), dtype=torch.float32, device=hidden.device)
    grad_hidden = torch.empty_like(hidden) if with_gradients else None
    # fp32 whatever the weight's dtype: bf16 sums over many chunks would lose the small ones.
    grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if with_gradients else None
    # One fp32 logits buffer for every chunk: no allocator churn, no fresh pages to fault in.
    buffer = torch.empty(min(rows, tokens), weight.shape[0], dtype=torch.float32, device=weight.device)
    with torch.autocast(weight.device.type, enabled=False):  # dtypes are chosen explicitly below
        for start in range(0, tokens, rows):
            h = hidden[start:start + rows].to(dtype)
            chunk_targets = targets[start:start + rows, None]
            logits = buffer[:h.shape[0]]  # (rows, vocab)
            if dtype == torch.float32:
                torch.mm(h, w.t(), out=logits)
            else:
                logits.copy_(h @ w.t())
            target_logits = logits.gather(1, chunk_targets)
            top = logits.amax(-1, keepdim=True)
            # In place from here: the logits become exp(logits - max), then the softmax.
            probs = logits.sub_(top).exp_()
            sums = probs.sum(-1, keepdim=True)
            total += (top + sums.log() - target_logits).sum()  # log-sum-exp minus the target's logit
            if not with_gradients:
                continue
            # d loss_i / d logits_i = softmax_i - one_hot(target_i); the 1/tokens of the mean comes last.
            probs.div_(sums).scatter_add_(1, chunk_targets, torch.full_like(target_logits, -1.0))
            grad_logits = probs.to(dtype)
            grad_hidden[start:start + rows] = grad_logits @ w
            if dtype == torch.float32:
                grad_weight.addmm_(grad_logits.t(), h)
            else:
                grad_weight += grad_logits.t() @ h
    if not with_gradients:
        return total / tokens, None, None
    return total / tokens, grad_hidden.div_(tokens), grad_weight.div_(tokens).to(weight.dtype)


class _LinearCrossEntropy(torch.autograd.Function):
    """Gradients are computed in the forward pass (see the module docstring); backward scales them."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                dtype: torch.dtype) -> torch.Tensor:
        loss, grad_hidden, grad_weight = _chunked(hidden, weight, targets, dtype, with_gradients=True)
        ctx.save_for_backward(grad_hidden, grad_weight)
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None, None]:
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_loss, grad_weight * grad_loss, None, None
