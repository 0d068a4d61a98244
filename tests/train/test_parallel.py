"""Data parallelism under torchrun with 2 CPU processes (gloo): DDP and FSDP2 give the losses
of one process drawing the same global batch; a 2-process checkpoint resumes in 1 process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, subprocess_env
from tests.train.token_shards import write_llama1_tokens
from train.config import TrainConfig
from train.loop import train

STEPS = 6
# 4 micro-batches of 4 x 32 tokens a step: 4 accumulation steps in 1 process, 2 on each of 2 ranks.
BATCH_TOKENS = 4 * 4 * 32


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parallel") / "tokens"
    write_llama1_tokens(root)
    return root


def _config(tokens: Path, run: Path, **changes) -> TrainConfig:
    return TrainConfig(model="debug", data=str(tokens), run=str(run), steps=STEPS, batch_tokens=BATCH_TOKENS,
                       progress=False, device="cpu", **changes)


def _torchrun(strategy: str, tokens: Path, run: Path, *extra: str, processes: int = 2) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
           "-m", "train.parallel", "--strategy", strategy, "--model", "debug", "--data", str(tokens),
           "--run-dir", str(run), "--steps", str(STEPS), "--batch-tokens", str(BATCH_TOKENS), "--device", "cpu",
           "--no-progress", *extra]
    env = dict(subprocess_env(), OMP_NUM_THREADS="1")
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def one_process(tokens: Path, tmp_path_factory: pytest.TempPathFactory) -> list[float]:
    return train(_config(tokens, tmp_path_factory.mktemp("one") / "run")).losses


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_match_one_with_the_same_global_batch(strategy: str, tokens: Path, one_process: list[float],
                                                            tmp_path: Path) -> None:
    run = tmp_path / strategy
    result = _torchrun(strategy, tokens, run, "--checkpoint-every", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"train: 2 processes ({strategy}); steps 0-{STEPS} done" in result.stdout
    losses = _losses(run)
    assert len(losses) == STEPS
    assert max(abs(a - b) for a, b in zip(losses, one_process)) < 1e-5, (losses, one_process)
    assert losses[-1] < losses[0] - 1.0  # it trains
    # Rank 0 reports the tokens drawn by both ranks: the whole global batch.
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert sum(last["tokens_drawn"].values()) == STEPS * BATCH_TOKENS

    # The 2-process checkpoint of step 3 resumes in 1 process and continues the same run.
    shutil.rmtree(run / "checkpoints" / "step-00000006")
    resumed = train(_config(tokens, run), resume=True)
    assert resumed.start_step == 3
    assert max(abs(a - b) for a, b in zip(resumed.losses, one_process[3:])) < 1e-5


@pytest.mark.slow
def test_world_size_that_does_not_divide_the_batch_is_one_line_and_exit_2(tokens: Path, tmp_path: Path) -> None:
    # What every rank of `torchrun --nproc-per-node 3` checks before joining the others.
    env = dict(subprocess_env(), RANK="0", WORLD_SIZE="3", LOCAL_RANK="0")
    cmd = [sys.executable, "-m", "train.parallel", "--strategy", "ddp", "--model", "debug", "--data", str(tokens),
           "--run-dir", str(tmp_path / "run"), "--batch-tokens", str(BATCH_TOKENS), "--device", "cpu"]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "train: error: batch of 512 tokens is not a multiple of context length x micro-batch x ranks "
        "(32 x 4 x 3 = 384)"]
    assert not (tmp_path / "run").exists()
