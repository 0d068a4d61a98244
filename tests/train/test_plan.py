"""`train plan`: per-rank memory from a meta-device model, against the paper's parameter count
and against measured peaks of real CPU runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.corpus.mixture import LLAMA1
from tests.conftest import REPO, subprocess_env
from tests.train.token_shards import write_llama1_tokens
from train.plan import GIB, device_memory_gib, plan


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
