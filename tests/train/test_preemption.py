"""SIGTERM (Slurm, Kubernetes, `docker stop`, `timeout`) saves a checkpoint at the next step
boundary and exits 0, Ctrl-C (SIGINT) too and exits 130; `--resume` then continues to the losses
of a run never interrupted.

The signal goes to a real `train` process at a step chosen by a seeded draw: the test reads
metrics.jsonl until that step appears, then sends it. Under torchrun it goes to one rank only,
so the two ranks can only stop at the same step by agreeing on it."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, subprocess_env
from tests.train.token_shards import write_llama1_tokens
from train.preemption import StopRequest

STEPS = 60
LINE = re.compile(r"^train: SIGTERM at step (\d+): saved (\S+); resume with --resume$", re.MULTILINE)


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("preemption") / "tokens"
    write_llama1_tokens(root)
    return root


def _command(tokens: Path, run: Path, *extra: str, processes: int = 1) -> list[str]:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                "-m"] if processes > 1 else [sys.executable, "-m"]
    batch = ["--batch-tokens", str(4 * 32 * processes)] if processes > 1 else []
    return [*launcher, "train", "--model", "debug", "--tokens", str(tokens), "--run-dir", str(run), "--steps",
            str(STEPS), "--device", "cpu", "--no-progress", *batch, *extra]


def _env() -> dict[str, str]:
    # One thread: the same summation order in every run, so losses compare bit for bit.
    return dict(subprocess_env(), OMP_NUM_THREADS="1")


def _run(tokens: Path, run: Path, *extra: str, processes: int = 1) -> subprocess.CompletedProcess:
    result = subprocess.run(_command(tokens, run, *extra, processes=processes), cwd=REPO, env=_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {row["step"]: row["loss"] for row in rows}


def _logged_steps(run: Path) -> int:
    metrics = run / "metrics.jsonl"
    return len(metrics.read_text().splitlines()) if metrics.exists() else 0


def _rank_pid(parent: int, rank: int) -> int:
    """The process torchrun started for `rank`, found by the RANK in its environment."""
    for _ in range(2000):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                environ = (entry / "environ").read_bytes().split(b"\0")
            except (OSError, IndexError, ValueError):
                continue
            if ppid == parent and f"RANK={rank}".encode() in environ:
                return int(entry.name)
        time.sleep(0.01)
    raise AssertionError(f"no rank {rank} under process {parent}")


def _interrupt_at(tokens: Path, run: Path, step: int, processes: int = 1) -> tuple[subprocess.CompletedProcess, int]:
    """Start training, send SIGTERM once metrics.jsonl shows `step` (to rank 1 under torchrun), and a
    second one as soon as the checkpoint being written appears; the finished process and the
    step it reported stopping at."""
    process = subprocess.Popen(_command(tokens, run, processes=processes), cwd=REPO, env=_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    target = _rank_pid(process.pid, 1) if processes > 1 else process.pid
    deadline = time.monotonic() + 240
    while _logged_steps(run) <= step and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert process.poll() is None, "the run ended before the signal"
    os.kill(target, signal.SIGTERM)
    checkpoints = run / "checkpoints"
    while process.poll() is None and time.monotonic() < deadline:
        if checkpoints.exists() and any(checkpoints.iterdir()):  # the temporary folder, or the saved one
            os.kill(target, signal.SIGTERM)
            break
        time.sleep(0.0005)
    out, err = process.communicate(timeout=240)
    finished = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    assert finished.returncode == 0, err[-3000:]
    found = LINE.search(out)
    assert found, out
    stopped = int(found.group(1))
    assert found.group(2) == str(checkpoints / f"step-{stopped:08d}")
    return finished, stopped


def _check_resumes_to_the_straight_run(tokens: Path, tmp_path: Path, seed: int, processes: int = 1) -> None:
    straight = tmp_path / "straight"
    _run(tokens, straight, processes=processes)
    signalled_after = random.Random(seed).randint(3, 15)
    run = tmp_path / "interrupted"
    _, stopped = _interrupt_at(tokens, run, signalled_after, processes=processes)
    assert signalled_after < stopped < STEPS
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [f"step-{stopped:08d}"]
    assert sorted(_losses(run)) == list(range(stopped))

    resumed = _run(tokens, run, "--resume", processes=processes)
    ranks = f"{processes} processes (fsdp); " if processes > 1 else ""
    assert f"train: {ranks}steps {stopped}-{STEPS} done" in resumed.stdout
    expected = _losses(straight)
    assert sorted(expected) == list(range(STEPS))
    assert _losses(run) == expected  # bit for bit, every step


@pytest.mark.slow
def test_sigterm_saves_at_the_step_boundary_and_resume_equals_a_straight_run(tokens: Path, tmp_path: Path) -> None:
    _check_resumes_to_the_straight_run(tokens, tmp_path, seed=25)


@pytest.mark.slow
def test_sigterm_to_one_torchrun_rank_stops_both_at_one_step(tokens: Path, tmp_path: Path) -> None:
    _check_resumes_to_the_straight_run(tokens, tmp_path, seed=26, processes=2)


def test_sigterm_is_counted_not_fatal_until_restored() -> None:
    stop = StopRequest()
    before = signal.getsignal(signal.SIGTERM)
    stop.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # a second one, as during a save: counted, nothing else
        time.sleep(0.01)  # Python runs the handler between bytecodes of the main thread
        assert stop.signals == 2 and stop.requested
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_second_sigint_quits_at_once_and_sigint_is_restored() -> None:
    stop = StopRequest()
    before = signal.getsignal(signal.SIGINT)
    stop.install()
    try:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: counted, the run stops at the next step boundary
        time.sleep(0.01)
        assert (stop.signals, stop.first) == (1, "SIGINT")
        with pytest.raises(KeyboardInterrupt):  # Ctrl-C again: someone who will not wait for the save
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
        assert stop.signals == 1
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGINT) == before


def _in_process_config(tokens: Path, run: Path, steps: int):  # type: ignore[no-untyped-def]
    from train.config import TrainConfig, resolve

    return resolve(TrainConfig(model="debug", data=str(tokens), run=str(run), steps=steps, progress=False))


@pytest.mark.slow
def test_sigint_stops_at_the_step_boundary_with_a_checkpoint_that_resumes_exactly(tokens: Path,
                                                                                 tmp_path: Path) -> None:
    """A real SIGINT to this process inside step 4's forward pass: the step ends, step-5 is saved."""
    import torch

    from train import checkpoint
    from train.loop import train
    from train.model import Transformer

    straight = train(_in_process_config(tokens, tmp_path / "straight", 8))
    before = signal.getsignal(signal.SIGINT)
    armed = {"now": False}

    def arm_after_step_3(step: int, loss: float, model: object) -> None:
        armed["now"] = step == 3

    def interrupt(module: torch.nn.Module, inputs: object) -> None:
        if armed["now"] and isinstance(module, Transformer):
            armed["now"] = False
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # Python runs the handler here, inside the forward pass

    config = _in_process_config(tokens, tmp_path / "run", 8)
    handle = torch.nn.modules.module.register_module_forward_pre_hook(interrupt)
    try:
        stopped = train(config, after_step=arm_after_step_3)
    finally:
        handle.remove()
    assert (stopped.stopped_by, stopped.completed) == ("SIGINT", 5)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path / "run")] == ["step-00000005"]
    assert signal.getsignal(signal.SIGINT) == before  # train() put back the handler it found
    resumed = train(config, resume=True)
    assert resumed.start_step == 5 and resumed.losses == straight.losses[5:]  # bitwise


@pytest.mark.slow
def test_ctrl_c_to_the_train_command_saves_its_step_and_exits_130(tokens: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    process = subprocess.Popen(_command(tokens, run), cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while _logged_steps(run) <= 5 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert process.poll() is None, "the run ended before the signal"
    os.kill(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=240)
    assert process.returncode == 130, err[-3000:]
    found = re.search(r"^train: SIGINT at step (\d+): saved (\S+); resume with --resume$", out, re.MULTILINE)
    assert found, out
    stopped = int(found.group(1))
    assert 5 < stopped < STEPS and found.group(2) == str(run / "checkpoints" / f"step-{stopped:08d}")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [f"step-{stopped:08d}"]
    assert sorted(_losses(run)) == list(range(stopped))
    assert "Traceback" not in err


@pytest.mark.slow
def test_a_terminal_hanging_up_saves_the_step_and_the_log_on_a_pipe_goes_on(tokens: Path, tmp_path: Path) -> None:
    """SIGHUP after the terminal went away (an ssh session dropped): the step in progress is saved
    and the run exits 0. Its progress bar was on the terminal, where every write now fails (EIO):
    it must not end the run before the save. Its output on a pipe still says where it stopped."""
    import pty

    run = tmp_path / "run"
    terminal, terminal_side = pty.openpty()
    command = [arg for arg in _command(tokens, run) if arg != "--no-progress"]  # the bar writes to the terminal
    process = subprocess.Popen(command, cwd=REPO, env=_env(), stdin=terminal_side, stdout=subprocess.PIPE,
                               stderr=terminal_side, text=True, start_new_session=True)
    os.close(terminal_side)
    os.set_blocking(terminal, False)
    deadline = time.monotonic() + 240
    while _logged_steps(run) <= 5 and process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            os.read(terminal, 1 << 16)  # what a terminal shows, so the bar never waits for it
        time.sleep(0.002)
    assert process.poll() is None, "the run ended before the signal"
    os.close(terminal)  # the hang-up: from now on the run's writes to its terminal fail
    os.kill(process.pid, signal.SIGHUP)
    out, _ = process.communicate(timeout=240)
    assert process.returncode == 0
    found = re.search(r"^train: SIGHUP at step (\d+): saved (\S+); resume with --resume$", out, re.MULTILINE)
    assert found, out
    stopped = int(found.group(1))
    assert 5 < stopped < STEPS and found.group(2) == str(run / "checkpoints" / f"step-{stopped:08d}")
    assert sorted(_losses(run)) == list(range(stopped))
    resumed = _run(tokens, run, "--resume")
    assert f"train: steps {stopped}-{STEPS} done" in resumed.stdout
    assert sorted(_losses(run)) == list(range(STEPS))


def test_the_first_signal_is_acknowledged_at_once_on_stderr(tmp_path: Path) -> None:
    """The line comes from the handler, before any step boundary: here the process is asleep."""
    script = ("import os, signal, time\nfrom train.preemption import StopRequest\nstop = StopRequest()\nstop.install()\n"
              "os.kill(os.getpid(), signal.SIGTERM)\nos.kill(os.getpid(), signal.SIGTERM)\ntime.sleep(0.05)\n"
              "print(stop.signals)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.stdout == "2\n"
    assert done.stderr.strip().splitlines() == [
        "train: SIGTERM received: stopping after the step in progress, which is saved"]
    rank_one = subprocess.run([sys.executable, "-c", script], cwd=REPO, env={**_env(), "RANK": "1"},
                              capture_output=True, text=True, timeout=60)
    assert rank_one.stdout == "2\n" and rank_one.stderr == ""  # one line per job, from rank 0


# `train` whose setup blocks where the test chose: joining the process group (a rank waiting for
# peers that never come), after the config was read and the run folder locked. It says so in a
# file, then sleeps; the signal handling under test is the command's own.
BLOCKED_IN_SETUP = """
import sys, time
from pathlib import Path
import train.parallel

def join(*args, **kwargs):
    Path(sys.argv[1]).write_text("blocked")
    time.sleep(3600)

train.parallel.join = join
from train.cli import main
main(sys.argv[2:])
"""


@pytest.mark.parametrize(("signum", "status", "line"), [
    (signal.SIGTERM, 143, "train: terminated (SIGTERM); training had not started (nothing trained or saved); rerun "
                          "the same command"),
    (signal.SIGINT, 130, "train: interrupted; training had not started (nothing trained or saved); rerun the same "
                         "command"),
])
def test_a_signal_before_the_first_step_ends_the_command_at_once(tmp_path: Path, signum: int, status: int,
                                                                 line: str) -> None:
    """It was counted, to stop the run after a first step that a blocked setup never reached: the
    process outlived the SIGTERM (`train --config FIFO` waited for ever)."""
    marker = tmp_path / "blocked"
    trainer = subprocess.Popen([sys.executable, "-c", BLOCKED_IN_SETUP, str(marker), "--model", "debug", "--tokens",
                                str(tmp_path / "tokens"), "--run-dir", str(tmp_path / "run"), "--steps", "5",
                                "--device", "cpu", "--no-progress"],
                               cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert trainer.poll() is None, trainer.communicate()
            assert time.monotonic() < deadline, "train never reached its setup"
            time.sleep(0.05)
        trainer.send_signal(signum)
        out, err = trainer.communicate(timeout=10)
    finally:
        trainer.kill()
    assert trainer.returncode == status
    assert err.splitlines() == [line] and out == ""
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_started_counts_signals_again() -> None:
    stop = StopRequest()
    stop.install(starting=True)
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
        stop.started()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        assert (stop.signals, stop.first) == (1, "SIGINT")
    finally:
        stop.restore()
