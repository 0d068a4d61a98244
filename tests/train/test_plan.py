"""`train plan`: per-rank memory from a meta-device model, against the paper's parameter count
and against measured peaks of real CPU runs."""

from __future__ import annotations

import dataclasses
import gc
import json
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from pipeline.corpus.mixture import LLAMA1
from tests.conftest import REPO, subprocess_env
from tests.train.token_shards import write_llama1_tokens
from train.apply import apply_activation_checkpointing
from train.config import preset
from train.model import Transformer
from train.plan import GIB, device_memory_gib, layer_activation_bytes, plan


def run_plan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train", "plan", *args], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_65b_on_64_ranks_has_the_papers_parameter_count() -> None:
    result = run_plan("--model", "65b", "--world-size", "64", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for key in ("params_total", "params_per_rank", "param_bytes_per_rank", "grad_bytes_per_rank",
                "optimizer_bytes_per_rank", "activation_bytes_per_rank", "total_bytes_per_rank"):
        assert isinstance(out[key], int) and out[key] > 0, key
    assert abs(out["params_total"] - 65.286e9) / 65.286e9 < 0.001
    assert abs(out["params_per_rank"] - out["params_total"] / 64) / (out["params_total"] / 64) < 0.01
    assert out["param_bytes_per_rank"] == 4 * out["params_per_rank"]  # fp32 master weights
    assert out["optimizer_bytes_per_rank"] == 8 * out["params_per_rank"]  # AdamW's two moments


@pytest.mark.slow
def test_7b_on_8_gpus_of_80_gb_with_and_without_activation_checkpointing() -> None:
    plain = plan("7b", 8)
    checkpointed = plan("7b", 8, activation_checkpointing=True)
    assert plain.params_total == 6_738_415_616  # LLaMA-7B's count
    assert checkpointed.activation_bytes_per_rank < plain.activation_bytes_per_rank / 5
    # The preset's micro-batch of 4 x 2048: about 61 GiB a rank without checkpointing, 19 with.
    for flags, total in (([], plain.total_bytes_per_rank), (["--activation-checkpointing"],
                                                            checkpointed.total_bytes_per_rank)):
        result = run_plan("--model", "7b", "--world-size", "8", "--device-memory", "80", *flags)
        assert result.returncode == 0, result.stderr
        assert f"fits in 80 GiB per device (+{(80 * GIB - total) / GIB:.2f} GiB to spare)" in result.stdout
    # Twice the micro-batch no longer fits without checkpointing, and still does with it.
    assert not plan("7b", 8, micro_batch=8).fits(80 * GIB)
    assert plan("7b", 8, micro_batch=8, activation_checkpointing=True).fits(80 * GIB)


@pytest.mark.slow
def test_tensor_parallelism_splits_the_weights_and_the_activations() -> None:
    alone, split = plan("13b", 8), plan("13b", 8, tp=2)
    # Norm weights are replicated across the tensor-parallel pair: a hair above the same share.
    assert alone.params_per_rank < split.params_per_rank < alone.params_per_rank * 1.001
    assert split.activation_bytes_per_rank < alone.activation_bytes_per_rank
    with pytest.raises(Exception, match="--tp 3 does not divide the model's 40 attention heads"):
        plan("13b", 6, tp=3)


@pytest.mark.slow
def test_bad_tp_is_one_line_and_exit_2() -> None:
    result = run_plan("--model", "7b", "--world-size", "8", "--tp", "3")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["train: error: world size 8 is not divisible by --tp 3"]


@pytest.mark.slow
@pytest.mark.parametrize("checkpointing", [False, True])
def test_plan_is_close_to_the_measured_peak_of_a_cpu_run(checkpointing: bool, tmp_path: Path) -> None:
    """The tiny preset at context 512, micro-batch 8, vocabulary 8000 for 3 real steps on the CPU."""
    tokens = tmp_path / "tokens"
    write_llama1_tokens(tokens, vocab_size=8000, tokens_per_source=dict.fromkeys(LLAMA1.proportions, 20_000))
    out = tmp_path / "peak.json"
    cmd = [sys.executable, str(REPO / "tests" / "train" / "memory_worker.py"), str(tokens), str(tmp_path / "run"),
           str(out), *(["--activation-checkpointing"] if checkpointing else [])]
    # A fixed mmap threshold, so that freed tensors go back to the system and the resident size
    # follows the live tensors the plan counts: glibc's adaptive threshold instead keeps freed
    # blocks of up to 32 MB in its heap, which after 3 steps holds about a third more than is live
    # (an allocator's slack, set by the order of allocations, not by the model).
    env = dict(subprocess_env(), OMP_NUM_THREADS="1", MALLOC_MMAP_THRESHOLD_=str(1 << 20))
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(out.read_text())["peak_growth_bytes"]
    planned = plan("tiny", 1, seq_len=512, micro_batch=8, vocab_size=8000, precision="fp32",
                   activation_checkpointing=checkpointing).total_bytes_per_rank
    print(f"\nactivation checkpointing {checkpointing}: planned {planned / 2**20:.0f} MiB, "
          f"measured peak RSS growth {measured / 2**20:.0f} MiB ({planned / measured:.2f})")
    assert 0.7 < planned / measured < 1.3


@pytest.mark.parametrize(("given", "gib"), [("80", 80.0), ("80GB", 80.0), ("141GiB", 141.0), ("80 g", 80.0),
                                            ("0.5T", 512.0), ("512MiB", 0.5), ("1e2", 100.0)])
def test_device_memory_takes_gib_or_a_size_with_its_unit(given: str, gib: float) -> None:
    assert device_memory_gib(given) == gib


@pytest.mark.slow
@pytest.mark.parametrize("given", ["nan", "-5", "0", "80 bananas", "inf", ""])
def test_a_device_memory_that_is_no_positive_size_is_one_line_and_exit_2(given: str) -> None:
    result = run_plan("--model", "tiny", "--world-size", "1", "--device-memory", given)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("train plan: error: argument --device-memory: ") and "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--seq-len", "--micro-batch", "--vocab-size"])
def test_a_negative_shape_is_one_line_and_exit_2(flag: str) -> None:
    result = run_plan("--model", "tiny", "--world-size", "1", flag, "-1")
    assert result.returncode == 2
    expected = f"train: error: {flag} must not be negative, got -1"
    assert result.stderr.strip().splitlines() == [expected]


# -- activation checkpointing modes: the plan's per-layer formulas against a real forward -------

class LiveStorages(TorchDispatchMode):
    """Records the storage of every tensor an operator returns, with the block that was running.

    After the forward pass, the storages still alive are what the model keeps for its backward
    pass, however it keeps them: autograd's saved tensors (none), the inputs a checkpointed block
    reruns from (full), or the operator outputs selective checkpointing caches (selective); a
    saved-tensors hook would see only the first, the checkpoint's own hook hides the rest."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.block: int | None = None
        self.made: list[tuple[weakref.ref, int, int | None]] = []
        for index, layer in enumerate(model.layers):
            layer.register_forward_pre_hook(lambda module, args, index=index: setattr(self, "block", index))
            layer.register_forward_hook(lambda module, args, out: setattr(self, "block", None))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        for tensor in torch.utils._pytree.tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                self.made.append((weakref.ref(storage), storage.nbytes(), self.block))
        return out

    def alive_per_block(self, exclude: set[int]) -> dict[int, int]:
        """Bytes of the distinct storages still alive, by the block that made them."""
        gc.collect()
        seen, per_block = set(exclude), {}
        for ref, nbytes, block in self.made:
            storage = ref()
            if storage is None or block is None or storage.data_ptr() in seen:
                continue
            seen.add(storage.data_ptr())
            per_block[block] = per_block.get(block, 0) + nbytes
        return per_block


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mode", ["none", "selective", "full"])
def test_activation_bytes_per_layer_of_each_mode_match_a_real_forward(mode: str, dtype: torch.dtype) -> None:
    """The tiny preset at micro-batch 2 x 64 tokens on the CPU (whose flash-attention kernel saves
    what the CUDA ones do); bf16 as FSDP's mixed precision runs it, weights in bf16, rotary
    tables in fp32."""
    micro_batch, seq_len = 2, 64
    args = dataclasses.replace(preset("tiny").model, vocab_size=256)
    torch.manual_seed(0)
    model = Transformer(args)
    model.init_weights()
    model.to(dtype)
    model.init_rope()
    apply_activation_checkpointing(model, mode)
    tokens = torch.randint(0, args.vocab_size, (micro_batch, seq_len + 1))
    live = LiveStorages(model)
    with live:
        loss = model(tokens[:, :-1], tokens[:, 1:])
    measured = live.alive_per_block(exclude={p.untyped_storage().data_ptr() for p in model.parameters()})
    planned = layer_activation_bytes(args, micro_batch, seq_len, dtype.itemsize, mode)
    print(f"\n{mode} {dtype}: planned {planned:,} bytes a layer, measured {measured}")
    # A block is charged for the storages it made: its output is the next block's input. The last
    # block's output is the head's input (the final norm keeps an fp32 copy of it, or it itself),
    # which the plan counts with the head: the blocks before it are compared.
    for block in range(args.n_layers - 1):
        assert abs(measured[block] - planned) <= 0.15 * planned, (block, measured[block], planned)
    loss.backward()  # the kept tensors were the ones the backward pass needed


def test_plan_orders_the_modes_and_full_keeps_one_input_per_layer() -> None:
    plans = {mode: plan("7b", 8, activation_checkpointing=mode) for mode in ("none", "selective", "full")}
    sizes = [plans[m].activation_bytes_per_rank for m in ("none", "selective", "full")]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3
    # 4 sequences of 2048 tokens x 4096 dimensions in bf16: 64 MiB a layer.
    assert plans["full"].layer_activation_bytes["full"] == 4 * 2048 * 4096 * 2
    assert plan("7b", 8, activation_checkpointing=True) == plans["full"]  # the old switch
