"""The chunked output-layer cross-entropy against PyTorch's own formula (logits, F.cross_entropy,
autograd): the same loss and gradients, and never a tokens x vocabulary tensor."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from tests.float_tolerance import assert_float32_close
import train.loss
from train.config import PRESETS
from train.loss import linear_cross_entropy
from train.model import Transformer


def plain(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(F.linear(hidden, weight).float(), targets)


def gradients(loss_fn, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
              scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    hidden = hidden.detach().clone().requires_grad_()
    weight = weight.detach().clone().requires_grad_()
    loss = loss_fn(hidden, weight, targets)
    (loss * scale).backward()
    return loss.detach(), hidden.grad, weight.grad


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 7 rows for a vocabulary of 50: 100 tokens make 14 whole chunks and a ragged one."""
    monkeypatch.setattr(train.loss, "CPU_CHUNK_ELEMENTS", 7 * 50)


def random_case(tokens: int = 100, dim: int = 16, vocab: int = 50) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(tokens, dim, generator=generator) * 3  # large logits: the softmax's max shift matters
    weight = torch.randn(vocab, dim, generator=generator)
    targets = torch.randint(0, vocab, (tokens,), generator=generator)
    return hidden, weight, targets


@pytest.mark.parametrize("scale", [1.0, 0.25])  # 0.25: one of 4 accumulated micro-batches
def test_loss_and_gradients_equal_pytorchs_formula(small_chunks: None, scale: float) -> None:
    case = random_case()
    expected = gradients(plain, *case, scale=scale)
    got = gradients(linear_cross_entropy, *case, scale=scale)
    for name, a, b in zip(("loss", "hidden grad", "weight grad"), got, expected):
        assert_float32_close(a, b, msg=name)


def test_without_gradients_only_the_loss_is_computed(small_chunks: None) -> None:
    hidden, weight, targets = random_case()
    with torch.no_grad():
        loss = linear_cross_entropy(hidden, weight, targets)
    assert loss.grad_fn is None
    assert_float32_close(loss, plain(hidden, weight, targets))


class LargestTensor(TorchDispatchMode):
    """The element count of the largest tensor any operation returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(tensor, torch.Tensor):
                self.largest = max(self.largest, tensor.numel())
        return out


def test_never_holds_more_than_one_chunk_of_logits(small_chunks: None) -> None:
    hidden, weight, targets = random_case()
    weight.requires_grad_()
    with LargestTensor() as seen:
        linear_cross_entropy(hidden, weight, targets).backward()
    # The inputs' gradients, or the chunk buffer of 7 x 50; the whole logits would be 100 x 50.
    assert seen.largest == max(hidden.numel(), weight.numel(), 7 * 50) < 100 * 50
    with LargestTensor() as seen:
        plain(hidden, weight.detach(), targets)
    assert seen.largest == 100 * 50


def test_under_bf16_autocast_the_products_run_in_bf16_and_the_gradients_keep_their_dtypes(
        small_chunks: None) -> None:
    hidden, weight, targets = random_case()

    def autocast(loss_fn):
        def run(h: torch.Tensor, w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return loss_fn(h, w, t)
        return run

    loss, grad_hidden, grad_weight = gradients(autocast(linear_cross_entropy), hidden, weight, targets)
    expected = gradients(autocast(plain), hidden, weight, targets)
    assert (loss.dtype, grad_hidden.dtype, grad_weight.dtype) == (torch.float32,) * 3
    # bf16 products on both sides: agreement to bf16's 3 significant digits, not fp32's.
    torch.testing.assert_close(loss, expected[0], rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(grad_weight, expected[2], rtol=5e-2, atol=2e-3)
    # fp32 products would match the fp32 formula more closely than bf16 ones do.
    assert not torch.allclose(loss, plain(hidden, weight, targets), rtol=0, atol=1e-6)


def test_the_models_loss_equals_cross_entropy_of_its_logits() -> None:
    torch.manual_seed(0)
    model = Transformer(PRESETS["debug"].model)
    model.init_weights()
    batch = torch.randint(0, model.args.vocab_size, (3, 17))
    inputs, targets = batch[:, :-1], batch[:, 1:]
    fused = model(inputs, targets)
    fused.backward()
    fused_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    reference = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())
    reference.backward()
    assert_float32_close(fused, reference, msg="loss")
    for name, param in model.named_parameters():
        assert_float32_close(fused_grads[name], param.grad, msg=name)
