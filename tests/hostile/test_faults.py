"""Faults: real processes killed mid-run and rerun, writes that fail for lack of space, and
corruption found by checksums. Every command here is the installed CLI in its own process,
run in the test's temporary folder so that the data/ and runs/ defaults land there.

Kept elsewhere, not repeated here (the README's Reliability table names them too):
- tests/tokenizer/test_encode.py::test_killed_encode_process_resumes_into_identical_files
  (one worker; the test below kills a two-worker encode with its pool),
- tests/pipeline/engine/test_executor.py::test_killed_run_resumes_to_identical_shards_and_stats
  (the engine with a test source; the test below runs a real source through the CLI),
- tests/train/test_checkpoint.py::test_corrupt_file_is_detected_by_its_checksum and
  tests/train/test_cli.py::test_corrupt_checkpoint_on_resume_is_one_line_and_exit_2.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from pipeline.engine.shards import count_rows
from pipeline.commands.sample import write_samples
from tests.conftest import script, subprocess_env
from tests.hostile.helpers import file_size_limit as file_size_limit_of
from tests.tokenizer.conftest import trained  # noqa: F401  (the session's small tokenizer)
from tests.tokenizer.corpus import write_source
from tests.train.token_shards import write_llama1_tokens
from tokenizer.token_shards import TokenShards
from tokenizer.train import TrainResult
from train import checkpoint

TIMEOUT = 300
PIPELINE_RUN = ["run", "stackexchange", "--input", "raw/stackexchange", "--workers", "2", "--tasks", "8",
                "--no-progress"]
# One thread: the trainer's losses are compared bit for bit, and the machine is shared.
TRAIN_ENV = {"OMP_NUM_THREADS": "1"}


def cli(name: str, args: list[str], cwd: Path, file_size_limit: int | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([script(name), *args], cwd=cwd, env={**subprocess_env(), **(env or {})},
                          capture_output=True, text=True, timeout=TIMEOUT,
                          preexec_fn=file_size_limit_of(file_size_limit) if file_size_limit else None)


def kill_when(name: str, args: list[str], cwd: Path, ready: Callable[[], bool],
              env: dict[str, str] | None = None) -> None:
    """Start the CLI, SIGKILL it and every worker it forked as soon as `ready()` holds."""
    process = subprocess.Popen([script(name), *args], cwd=cwd, env={**subprocess_env(), **(env or {})},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + TIMEOUT
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    finished = process.poll() is not None
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not finished, f"{name} finished before it could be killed"


def only_error_line(result: subprocess.CompletedProcess, prog: str) -> str:
    """Exit 2, no traceback, exactly one error line; returns the path it names."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith(f"{prog}: error: ")]
    assert len(errors) == 1, result.stderr
    match = re.match(rf"{prog}: error: (.+?): ", errors[0])
    assert match, errors[0]
    return match.group(1)


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "_work" not in p.parts}


def flip_one_letter(path: Path) -> None:
    """Change one byte inside a document's text: the shard still parses, only its hash tells."""
    data = bytearray(path.read_bytes())
    at = data.find(b" the ") + 1
    assert at > 0
    data[at] = ord("T")
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------------------------
# SIGKILL mid-run, then a rerun: the same outputs as a run never interrupted


@pytest.mark.slow
def test_pipeline_run_killed_mid_run_resumes_to_identical_corpus(tmp_path: Path) -> None:
    write_samples(tmp_path / "raw", ["stackexchange"])
    straight = cli("pipeline", [*PIPELINE_RUN, "--corpus", "straight"], tmp_path)
    assert straight.returncode == 0, straight.stderr

    work = tmp_path / "data" / "corpus" / "stackexchange" / "_work"
    kill_when("pipeline", PIPELINE_RUN, tmp_path, lambda: any(work.glob("pass0/task-*.done.json")))
    assert not (work.parent / "manifest.json").exists()
    assert 1 <= len(list(work.glob("pass0/task-*.done.json"))) < 8

    resumed = cli("pipeline", PIPELINE_RUN, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    a, b = tmp_path / "straight" / "stackexchange", tmp_path / "data" / "corpus" / "stackexchange"
    shards = sorted(p.name for p in a.glob("shard-*.arrow"))
    assert len(shards) >= 2 and shards == sorted(p.name for p in b.glob("shard-*.arrow"))
    for name in shards + ["manifest.json", "stats.json"]:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert json.loads((b / "stats.json").read_text())["documents_kept"] > 0


@pytest.mark.slow
def test_tokenizer_encode_killed_with_two_workers_resumes_to_identical_tokens(trained: TrainResult,  # noqa: F811
                                                                              tmp_path: Path) -> None:
    write_source(tmp_path / "data" / "corpus", "c4", 2000, shard_docs=125)  # 16 corpus shards
    encode = ["encode", "--model", str(trained.model), "--workers", "2", "--no-progress"]
    clean = cli("tokenizer", [*encode, "--tokens", "clean"], tmp_path)
    assert clean.returncode == 0, clean.stderr

    work = tmp_path / "data" / "tokens" / "c4" / "_work"
    kill_when("tokenizer", encode, tmp_path, lambda: any(work.glob("done-*.json")))
    interrupted = len(list(work.glob("done-*.json")))
    assert 1 <= interrupted < 16 and not (work.parent / "meta.json").exists()

    resumed = cli("tokenizer", encode, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"encoded {16 - interrupted} corpus shard(s)" in resumed.stdout
    assert files(tmp_path / "clean") == files(tmp_path / "data" / "tokens")
    assert not list((tmp_path / "data" / "tokens").rglob("*.tmp"))


@pytest.mark.slow
def test_train_killed_mid_run_resumes_to_identical_losses_and_weights(tmp_path: Path) -> None:
    write_llama1_tokens(tmp_path / "data" / "tokens")
    args = ["--model", "debug", "--steps", "60", "--checkpoint-every", "5", "--no-progress"]
    straight = cli("train", [*args, "--run", "runs/straight"], tmp_path, env=TRAIN_ENV)
    assert straight.returncode == 0, straight.stderr

    killed = tmp_path / "runs" / "killed"
    kill_when("train", [*args, "--run", "runs/killed"], tmp_path, lambda: bool(checkpoint.list_checkpoints(killed)),
              env=TRAIN_ENV)
    last = checkpoint.latest(killed)
    assert last is not None and last.name != checkpoint.step_name(60)

    resumed = cli("train", [*args, "--run", "runs/killed", "--resume"], tmp_path, env=TRAIN_ENV)
    assert resumed.returncode == 0, resumed.stderr
    rows = {name: [json.loads(line) for line in (tmp_path / "runs" / name / "metrics.jsonl").read_text().splitlines()]
            for name in ("straight", "killed")}
    assert [r["step"] for r in rows["killed"]] == list(range(60))
    assert [r["loss"] for r in rows["killed"]] == [r["loss"] for r in rows["straight"]]  # bit for bit
    a = checkpoint.load_model_state(tmp_path / "runs" / "straight" / "checkpoints" / checkpoint.step_name(60))
    b = checkpoint.load_model_state(killed / "checkpoints" / checkpoint.step_name(60))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------
# A write that fails for lack of space: one line naming the file, exit 2, nothing half-written
# under a final name, and a rerun with room to spare finishes the job.


@pytest.mark.slow
def test_pipeline_run_out_of_space_names_the_file_and_leaves_no_partial_shard(tmp_path: Path) -> None:
    write_samples(tmp_path / "raw", ["stackexchange"])
    full = cli("pipeline", PIPELINE_RUN, tmp_path, file_size_limit=16 << 10)
    path = only_error_line(full, "pipeline")
    corpus = tmp_path / "data" / "corpus" / "stackexchange"
    # The first file past the limit is a part, or the SQLite file of the answer join's pass
    # (pipeline/transforms/join_answers.py), which SQLite reports without an errno.
    if path.endswith(".arrow"):
        assert "cannot write: File too large (EFBIG); free space and rerun the same command to resume" in full.stderr
        assert re.fullmatch(r"data/corpus/stackexchange/_work/pass0/task-\d{5}/part-\d{5}\.arrow", path), path
    else:
        assert "cannot write: No space left on device (ENOSPC); free space and rerun the same command to resume" \
            in full.stderr, full.stderr
        assert re.fullmatch(r"data/corpus/stackexchange/_work/pass0/task-\d{5}/partial", path), path
    assert not (tmp_path / path).exists()
    assert not list(corpus.glob("shard-*.arrow")) and not (corpus / "manifest.json").exists()
    for leftover in corpus.rglob("*"):  # what a finished step left is whole: parts parse, JSON loads
        task = next((p for p in leftover.parents if p.name.startswith("task-")), None)
        if task is not None and not task.with_name(task.name + ".done.json").exists():
            continue  # scratch of a task that did not finish: the rerun starts it afresh
        if leftover.suffix == ".arrow":
            count_rows(leftover)
        elif leftover.suffix == ".json":
            json.loads(leftover.read_text())

    resumed = cli("pipeline", PIPELINE_RUN, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    verified = cli("pipeline", ["verify", "stackexchange"], tmp_path)
    assert verified.returncode == 0 and "stackexchange: " in verified.stdout and ", ok" in verified.stdout


@pytest.mark.slow
def test_tokenizer_encode_out_of_space_names_the_file_and_leaves_no_partial_tokens(trained: TrainResult,  # noqa: F811
                                                                                   tmp_path: Path) -> None:
    write_source(tmp_path / "data" / "corpus", "c4", 200, shard_docs=50)
    encode = ["encode", "--model", str(trained.model), "--workers", "2", "--no-progress"]
    full = cli("tokenizer", encode, tmp_path, file_size_limit=8 << 10)
    path = only_error_line(full, "tokenizer")
    assert "cannot write: File too large (EFBIG); free space and rerun the same command to resume" in full.stderr
    assert re.fullmatch(r"data/tokens/c4/train-\d{5}\.bin", path), path
    tokens = tmp_path / "data" / "tokens" / "c4"
    assert not (tokens / "meta.json").exists()
    # Under final names only complete shards (.bin, .idx and the .ids of their document ids); the
    # other worker's task, stopped midway, may leave *.bin.tmp files, which the rerun deletes.
    assert {p.suffix for p in tokens.iterdir() if p.is_file()} <= {".bin", ".idx", ".ids", ".tmp"}
    for index in tokens.glob("*.idx"):
        offsets = np.fromfile(index, dtype="<i8")
        assert index.with_suffix(".bin").stat().st_size == 2 * offsets[-1]

    resumed = cli("tokenizer", encode, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    shards = TokenShards(tokens, tokenizer=trained.model)
    assert shards.split("train").documents + shards.split("heldout").documents == 200
    assert not list(tokens.glob("*.tmp"))


@pytest.mark.slow
def test_train_checkpoint_out_of_space_names_the_file_and_leaves_no_partial_checkpoint(tmp_path: Path) -> None:
    write_llama1_tokens(tmp_path / "data" / "tokens")
    args = ["--model", "debug", "--steps", "3", "--run", "runs/small", "--no-progress"]
    full = cli("train", args, tmp_path, file_size_limit=200 << 10, env=TRAIN_ENV)  # the rank's shard is 1.7 MB
    path = only_error_line(full, "train")
    assert path == "runs/small/checkpoints/step-00000003/__0_0.distcp"
    assert "cannot write: File too large (EFBIG)" in full.stderr
    assert list((tmp_path / "runs" / "small" / "checkpoints").iterdir()) == []  # no step, no temporary folder

    again = cli("train", args, tmp_path, env=TRAIN_ENV)  # nothing was saved: the same command starts over
    assert again.returncode == 0, again.stderr
    assert checkpoint.read_state(tmp_path / "runs" / "small" / "checkpoints" / "step-00000003")["step"] == 3


# ---------------------------------------------------------------------------------------
# Corruption found by checksum (checkpoints: see the module docstring)


def test_tokenizer_encode_refuses_a_corpus_shard_whose_sha256_differs(trained: TrainResult,  # noqa: F811
                                                                      tmp_path: Path) -> None:
    corpus = tmp_path / "data" / "corpus"
    write_source(corpus, "c4", 100, shard_docs=50)
    shard = corpus / "c4" / "shard-00001.arrow"
    flip_one_letter(shard)
    assert count_rows(shard) == 50  # still a valid Arrow stream: only the checksum tells
    result = cli("tokenizer", ["encode", "--model", str(trained.model), "--workers", "1", "--no-progress"], tmp_path)
    assert only_error_line(result, "tokenizer") == "data/corpus/c4/shard-00001.arrow"
    assert "sha256 does not match its manifest.json (corrupt corpus shard" in result.stderr
    tokens = tmp_path / "data" / "tokens" / "c4"
    assert not (tokens / "meta.json").exists()
    assert not list(tokens.glob("*-00001.*")) and not list(tokens.glob("*.tmp"))


@pytest.mark.slow
def test_pipeline_verify_reports_each_bad_shard_and_exits_2(tmp_path: Path) -> None:
    corpus = tmp_path / "data" / "corpus"
    write_source(corpus, "c4", 120, shard_docs=30)  # 4 shards
    write_source(corpus, "wikipedia", 40, shard_docs=20)
    good = cli("pipeline", ["verify"], tmp_path)
    assert good.returncode == 0 and good.stderr == "", good.stderr
    assert good.stdout.splitlines() == ["c4: 4 shard(s) checked against manifest.json, ok",
                                        "wikipedia: 2 shard(s) checked against manifest.json, ok"]

    c4 = corpus / "c4"
    flip_one_letter(c4 / "shard-00001.arrow")
    data = (c4 / "shard-00002.arrow").read_bytes()
    (c4 / "shard-00002.arrow").write_bytes(data[:1000])
    (c4 / "shard-00003.arrow").unlink()
    (c4 / "shard-00007.arrow").write_bytes(data)  # a stray shard the manifest does not know
    bad = cli("pipeline", ["verify"], tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.splitlines() == [
        "pipeline: error: data/corpus/c4/shard-00001.arrow: sha256 does not match manifest.json (corrupt shard)",
        f"pipeline: error: data/corpus/c4/shard-00002.arrow: 1000 bytes, manifest.json says {len(data)} "
        "(truncated or replaced)",
        "pipeline: error: data/corpus/c4/shard-00003.arrow: listed in manifest.json but missing",
        "pipeline: error: data/corpus/c4/shard-00007.arrow: not listed in manifest.json",
    ]
    assert bad.stdout.splitlines() == ["c4: 4 shard(s) checked against manifest.json, 4 bad",
                                       "wikipedia: 2 shard(s) checked against manifest.json, ok"]
    only_wikipedia = cli("pipeline", ["verify", "wikipedia"], tmp_path)
    assert only_wikipedia.returncode == 0
