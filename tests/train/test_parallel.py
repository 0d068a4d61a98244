"""Parallel training under torchrun with CPU processes (gloo), through the one `train` command:
FSDP2 and DDP give the losses of one process drawing the same global batch; a 2-process FSDP
checkpoint (one DCP file per rank) resumes in 1, 2 and 4 processes; FSDP x tensor parallel on a
2 x 2 mesh matches one process; bad mesh arithmetic is one line and exit 2; a rank never reaches
the interpreter's teardown with its process groups' threads running."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, subprocess_env
from tests.train.token_shards import write_llama1_tokens
from train.config import ResolvedConfig, TrainConfig, resolve
from train.loop import train

STEPS = 6
# 4 micro-batches of 4 x 32 tokens a step: 4 accumulation steps in 1 process, 2 on each of 2
# data-parallel ranks, 1 on each of 4.
BATCH_TOKENS = 4 * 4 * 32


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parallel") / "tokens"
    write_llama1_tokens(root)
    return root


def _config(tokens: Path, run: Path, **changes) -> ResolvedConfig:
    return resolve(TrainConfig(model="debug", data=str(tokens), run=str(run), steps=STEPS, batch_tokens=BATCH_TOKENS,
                               progress=False, device="cpu", **changes))


def _torchrun(tokens: Path, run: Path, *extra: str, processes: int = 2) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
           "-m", "train", "--model", "debug", "--tokens", str(tokens), "--run-dir", str(run), "--steps", str(STEPS),
           "--batch-tokens", str(BATCH_TOKENS), "--device", "cpu", "--no-progress", *extra]
    env = dict(subprocess_env(), OMP_NUM_THREADS="1")
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _trained_losses(tokens: Path, run: Path, *extra: str, processes: int = 2, mesh: str = "fsdp",
                    first_step: int = 0) -> list[float]:
    """Train under torchrun, which must succeed and report its processes, mesh and steps; the losses it logged."""
    result = _torchrun(tokens, run, *extra, processes=processes)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"train: {processes} processes ({mesh}); steps {first_step}-{STEPS} done" in result.stdout
    return _losses(run)


def _tokens_drawn_by_all_ranks(run: Path) -> int:
    """Rank 0's count, at the last step, of the tokens every rank drew."""
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    return sum(last["tokens_drawn"].values())


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def _close(a: list[float], b: list[float], tolerance: float) -> bool:
    if len(a) != len(b):
        return False
    gap = max(abs(x - y) for x, y in zip(a, b))
    print(f"\nlargest loss difference over {len(a)} steps: {gap:.2e} (tolerance {tolerance:g})")
    return gap < tolerance


@pytest.fixture(scope="module")
def one_process(tokens: Path, tmp_path_factory: pytest.TempPathFactory) -> list[float]:
    return train(_config(tokens, tmp_path_factory.mktemp("one") / "run")).losses


@pytest.mark.slow
def test_ddp_two_processes_match_one_with_the_same_global_batch(tokens: Path, one_process: list[float],
                                                                tmp_path: Path) -> None:
    losses = _trained_losses(tokens, tmp_path / "ddp", "--strategy", "ddp", mesh="ddp")
    assert _close(losses, one_process, 1e-5), (losses, one_process)


@pytest.mark.slow
def test_fsdp_sharded_checkpoint_resumes_in_one_two_and_four_processes(tokens: Path, one_process: list[float],
                                                                       tmp_path: Path) -> None:
    run = tmp_path / "fsdp"
    losses = _trained_losses(tokens, run, "--checkpoint-every", "3")
    assert _close(losses, one_process, 1e-5), (losses, one_process)
    assert losses[-1] < losses[0] - 1.0  # it trains
    # Rank 0 reports the tokens drawn by both ranks: the whole global batch.
    assert _tokens_drawn_by_all_ranks(run) == STEPS * BATCH_TOKENS

    # The checkpoint: one DCP file per rank, each written by its rank (nothing gathered).
    step3 = run / "checkpoints" / "step-00000003"
    assert sorted(p.name for p in step3.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    assert json.loads((step3 / "manifest.json").read_text())["world_size"] == 2
    shutil.rmtree(run / "checkpoints" / "step-00000006")
    saved = tmp_path / "saved"
    shutil.copytree(run, saved)

    def fresh_copy(name: str) -> Path:
        copy = tmp_path / name
        shutil.copytree(saved, copy)
        return copy

    # 1 process, in this one: the data position, RNG and schedule continue the same run.
    resumed = train(_config(tokens, fresh_copy("in-1")), resume=True)
    assert resumed.start_step == 3
    assert _close(resumed.losses, one_process[3:], 1e-5), (resumed.losses, one_process)
    for processes in (2, 4):
        copy = fresh_copy(f"in-{processes}")
        losses = _trained_losses(tokens, copy, "--resume", processes=processes, first_step=3)
        assert _close(losses[3:], one_process[3:], 1e-5), (processes, losses, one_process)
        assert _tokens_drawn_by_all_ranks(copy) == STEPS * BATCH_TOKENS


@pytest.mark.slow
def test_fsdp_with_selective_activation_checkpointing_matches_one_process(tokens: Path, one_process: list[float],
                                                                         tmp_path: Path) -> None:
    losses = _trained_losses(tokens, tmp_path / "selective", "--activation-checkpointing", "selective")
    assert _close(losses, one_process, 1e-5), (losses, one_process)


@pytest.mark.slow
def test_fsdp_by_tensor_parallel_on_a_2x2_mesh_matches_one_process(tokens: Path, one_process: list[float],
                                                                   tmp_path: Path) -> None:
    losses = _trained_losses(tokens, tmp_path / "tp", "--tp", "2", processes=4, mesh="fsdp, tp 2")
    assert _close(losses, one_process, 1e-4), (losses, one_process)


@pytest.mark.slow
@pytest.mark.parametrize("world_size, extra, message", [
    (3, [], "batch of 512 tokens is not a multiple of context length x micro-batch x ranks (32 x 4 x 3 = 384)"),
    (3, ["--tp", "2"], "world size 3 is not divisible by --tp 2"),
    (3, ["--tp", "3"], "--tp 3 does not divide the model's 4 attention heads"),
    (4, ["--tp", "2", "--strategy", "ddp"], "--tp 2 composes with --strategy fsdp, not ddp"),
])
@pytest.mark.slow
def test_bad_mesh_arithmetic_is_one_line_and_exit_2(world_size: int, extra: list[str], message: str, tokens: Path,
                                                    tmp_path: Path) -> None:
    # What every rank of `torchrun --nproc-per-node 3` checks before joining the others.
    env = dict(subprocess_env(), RANK="0", WORLD_SIZE=str(world_size), LOCAL_RANK="0")
    cmd = [sys.executable, "-m", "train", "--model", "debug", "--tokens", str(tokens),
           "--run-dir", str(tmp_path / "run"), "--batch-tokens", str(BATCH_TOKENS), "--device", "cpu", *extra]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"train: error: {message}"]
    assert not (tmp_path / "run").exists()


# Runs `train` with the rest of its arguments through train.cli's function named by argv[2],
# and records, if the interpreter's teardown begins, how many gloo threads are still running
# (Linux names them in /proc): a file per rank in the folder argv[1].
TEARDOWN_PROBE = """
import atexit, os, sys
from pathlib import Path

def gloo_threads():
    tasks = Path("/proc/self/task")
    return sum((task / "comm").read_text().startswith(("pt_gloo", "gloo_")) for task in tasks.iterdir())

reports, entry, argv = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
atexit.register(lambda: (reports / os.environ["RANK"]).write_text(str(gloo_threads())))
import train.cli
getattr(train.cli, entry)(argv) if entry == "main" else train.cli.main_of_one_process(argv)
"""


def _gloo_threads_at_teardown(tokens: Path, tmp_path: Path, entry: str) -> tuple[int, dict[str, int]]:
    """Train 2 ranks under torchrun, through `entry`: torchrun's exit status, and rank -> gloo
    threads running when its teardown began (no entry for a rank that never began one)."""
    probe, reports = tmp_path / "probe.py", tmp_path / f"teardown-{entry}"
    probe.write_text(TEARDOWN_PROBE)
    reports.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(probe),
           str(reports), entry, "--model", "debug", "--tokens", str(tokens), "--run-dir", str(tmp_path / entry),
           "--steps", "2", "--batch-tokens", str(BATCH_TOKENS), "--device", "cpu", "--no-progress"]
    env = dict(subprocess_env(), OMP_NUM_THREADS="1")  # the repository on PYTHONPATH: the probe imports train
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert "train: 2 processes (fsdp); steps 0-2 done" in result.stdout, result.stderr[-3000:]
    return result.returncode, {report.name: int(report.read_text()) for report in reports.iterdir()}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="thread names are read from Linux's /proc")
def test_a_rank_never_reaches_the_interpreters_teardown_with_gloo_threads_running(tokens: Path,
                                                                                 tmp_path: Path) -> None:
    # The hazard: torch's caches keep the groups after destroy_process_group(), and their threads
    # run into the teardown, where one needing the GIL now and then aborts the rank (SIGABRT)
    # after a finished run; so that run's exit status is not asserted.
    _, hazard = _gloo_threads_at_teardown(tokens, tmp_path, "main_of_one_process")
    assert hazard and min(hazard.values()) > 0, hazard
    # `train` under torchrun: no rank tears its interpreter down with a gloo thread running.
    status, reports = _gloo_threads_at_teardown(tokens, tmp_path, "main")
    assert status == 0
    assert all(threads == 0 for threads in reports.values()), reports
