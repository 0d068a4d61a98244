"""Activation checkpointing modes (train/apply.py): the same loss and gradients whatever is kept,
selective really recomputes only element-wise operators, and the setting's old bool spelling."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from pipeline.common.cli import parse
from pipeline.common.errors import UserError
from tests.float_tolerance import assert_float32_close
from train import cli
from train.apply import apply_activation_checkpointing
from train.config import TrainConfig, load_overrides, preset, resolve
from train.model import Transformer

MODES = ("none", "selective", "full")
ARGS = dataclasses.replace(preset("tiny").model, vocab_size=256)


def tiny_model(mode: str) -> Transformer:
    torch.manual_seed(0)
    model = Transformer(ARGS)
    model.init_weights()
    apply_activation_checkpointing(model, mode)
    return model


class OperatorLog(TorchDispatchMode):
    """Names of the operators run, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        self.names.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def test_every_mode_gives_the_same_loss_and_gradients() -> None:
    tokens = torch.randint(0, ARGS.vocab_size, (2, 65), generator=torch.Generator().manual_seed(1))
    results = {}
    for mode in MODES:
        model = tiny_model(mode)
        loss = model(tokens[:, :-1], tokens[:, 1:])
        loss.backward()
        # The wrapper's prefix is in parameter names (state-dict names drop it).
        results[mode] = loss.detach(), {name.replace("._checkpoint_wrapped_module", ""): p.grad
                                        for name, p in model.named_parameters()}
    loss, grads = results["none"]
    assert list(grads) == list(results["full"][1]) == list(results["selective"][1])  # the same names
    for mode in ("selective", "full"):
        assert torch.equal(results[mode][0], loss), mode  # the forward pass is the same arithmetic
        for name, grad in grads.items():
            # Recomputed operators repeat the same kernels on the same inputs; the tolerance is
            # float32 rounding in case a kernel sums in another order on another CPU.
            assert_float32_close(results[mode][1][name], grad, msg=f"{mode} {name}")


def test_selective_recomputes_only_elementwise_operators_in_the_backward_pass() -> None:
    """Products and attention run once per block in the forward pass; in the backward pass only
    their gradients' products run (none recomputed), unlike `full`, which reruns the forward."""
    tokens = torch.randint(0, ARGS.vocab_size, (2, 33), generator=torch.Generator().manual_seed(2))
    counts = {}
    for mode in MODES:
        model = tiny_model(mode)
        loss = model(tokens[:, :-1], tokens[:, 1:])
        log = OperatorLog()
        with log:
            loss.backward()
        counts[mode] = {name: log.names.count(name) for name in ("mm", "_scaled_dot_product_flash_attention_for_cpu",
                                                                  "silu", "rsqrt")}
    blocks = ARGS.n_layers
    assert counts["full"]["_scaled_dot_product_flash_attention_for_cpu"] == blocks  # attention rerun
    assert counts["selective"]["_scaled_dot_product_flash_attention_for_cpu"] == 0  # kept
    assert counts["none"]["_scaled_dot_product_flash_attention_for_cpu"] == 0
    assert counts["selective"]["mm"] == counts["none"]["mm"]  # no product recomputed
    # Full reruns each block's forward up to the last tensor its backward needs: every projection
    # but w2, whose output nothing saves (the rerun stops early there).
    assert counts["full"]["mm"] == counts["none"]["mm"] + 6 * blocks
    assert counts["selective"]["silu"] == counts["full"]["silu"] == blocks and counts["none"]["silu"] == 0
    assert counts["selective"]["rsqrt"] == counts["full"]["rsqrt"] == 2 * blocks and counts["none"]["rsqrt"] == 0


def test_the_old_bool_setting_reads_as_full_or_none(tmp_path: Path) -> None:
    for written, mode in (("true", "full"), ("false", "none"), ('"selective"', "selective")):
        toml = tmp_path / "run.toml"
        toml.write_text(f"activation_checkpointing = {written}\n")
        assert load_overrides(str(toml), {}).activation_checkpointing == mode
    assert resolve(TrainConfig(activation_checkpointing=True)).train.activation_checkpointing == "full"
    toml.write_text('activation_checkpointing = "some"\n')
    with pytest.raises(UserError, match="setting 'activation_checkpointing' must be 'none', 'selective' or "
                                        "'full', got 'some'"):
        load_overrides(str(toml), {})
    # The flag alone was the switch: it is full; a mode may follow it.
    for argv, mode in (([], None), (["--activation-checkpointing"], "full"),
                       (["--activation-checkpointing", "selective"], "selective")):
        assert parse(cli, "train", argv).activation_checkpointing == mode
