"""How a command ends on SIGTERM (what Slurm, Kubernetes, `docker stop` and `timeout` send): as on
Ctrl-C, the clean-ups run and the command says so in one line, with exit status 143; a real
`pipeline run` stopped in the middle leaves no worker behind and no shard under a final name,
and the same command then finishes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.engine.shards import read_corpus
from tests.conftest import REPO, subprocess_env
from tests.hostile.test_slow_start import slow_start_run, write_jsonl

# Waits argv[1] seconds, inside a native call's guard when argv[2] is "native" (one taken and left
# before it when "after-native").
WAITS = """
import contextlib, sys, time
from pipeline.common.errors import exit_on_errors, sigterm_ends_at_once
with exit_on_errors("prog", "rerun to resume"):
    try:
        if sys.argv[2] == "after-native":
            with sigterm_ends_at_once():
                pass
        with sigterm_ends_at_once() if sys.argv[2] == "native" else contextlib.nullcontext():
            print("ready", flush=True)
            time.sleep(float(sys.argv[1]))
    finally:
        print("cleaned up", flush=True)
"""


def _signalled(seconds: float, ignore_sigterm: bool = False, mode: str = "python") -> subprocess.CompletedProcess:
    """Run WAITS, send it SIGTERM once it is ready, and wait for its end."""
    process = subprocess.Popen([sys.executable, "-c", WAITS, str(seconds), mode], env=subprocess_env(), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=(lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN)) if ignore_sigterm
                               else None)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, "ready\n" + out, err)


def test_sigterm_runs_the_clean_ups_and_ends_with_one_line_and_143() -> None:
    done = _signalled(60)
    assert (done.returncode, done.stdout, done.stderr) == (
        143, "ready\ncleaned up\n", "prog: terminated (SIGTERM); rerun to resume\n")


# A library's blocking call that catches every KeyboardInterrupt and raises its own (Ray's ray.get:
# its signal check takes Terminated, a KeyboardInterrupt, for a Ctrl-C).
SWALLOWS = """
import time
from pipeline.common.errors import exit_on_errors
with exit_on_errors("prog", "rerun to resume"):
    try:
        print("ready", flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        raise KeyboardInterrupt from None
"""


def test_a_sigterm_a_library_turned_into_its_own_interrupt_still_ends_as_sigterm() -> None:
    process = subprocess.Popen([sys.executable, "-c", SWALLOWS], env=subprocess_env(), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (143, "prog: terminated (SIGTERM); rerun to resume\n")


def test_inside_a_long_native_call_sigterm_ends_the_process_at_once_and_only_there() -> None:
    # SentencePiece's training returns only when done: a handler would wait for it.
    inside = _signalled(60, mode="native")
    assert (inside.returncode, inside.stdout, inside.stderr) == (-signal.SIGTERM, "ready\n", "")
    after = _signalled(60, mode="after-native")
    assert (after.returncode, after.stderr) == (143, "prog: terminated (SIGTERM); rerun to resume\n")


def test_a_sigterm_ignored_when_the_command_started_stays_ignored() -> None:
    # `nohup`-like parents and supervisors that mean it: the command runs to its end.
    done = _signalled(1.0, ignore_sigterm=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ready\ncleaned up\n", "")


def _processes_naming(text: str) -> list[int]:
    """The processes whose command line holds `text` (a run's workers are forks of it)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/cmdline").is_file(), reason="processes are found in Linux's /proc")
def test_a_run_stopped_by_sigterm_leaves_no_worker_and_the_same_command_finishes_it(tmp_path: Path) -> None:
    # One input prepares for 3 s before its first document (tests/hostile/slow_readers.py): the
    # signal lands while a worker is inside it.
    expected = write_jsonl(tmp_path / "raw" / "slow.jsonl", 600) | write_jsonl(tmp_path / "raw" / "plain.jsonl", 300)
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.hostile.slow_readers", "run", "slowstart", "--input", str(tmp_path / "raw"),
         "--corpus", str(out), "--no-progress", "--workers", "2"],
        cwd=REPO, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "slowstart" / "_work" / "plan.json").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)  # the tasks have started: the slow input's preparation takes 3 s
    assert process.poll() is None, "the run ended before the signal"
    os.kill(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert err.splitlines()[-1] == "pipeline: terminated (SIGTERM); rerun the same command to resume"
    assert "Traceback" not in err
    time.sleep(0.2)  # a worker ends with its parent (PR_SET_PDEATHSIG), a moment later
    assert _processes_naming(str(out)) == []
    assert not (out / "slowstart" / "manifest.json").exists()

    done = slow_start_run(tmp_path / "raw", out, "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert {doc.id for doc in read_corpus(out / "slowstart")} == expected
