"""The supervising executor through the real CLIs: a worker SIGKILLed mid-run (what the
out-of-memory killer does) is reported and its task run again, with the same output as a run
never interrupted; a document that stalls past its budget or kills its worker twice is dropped
with its reason and position, and every other document is kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.engine.shards import read_corpus
from tests.conftest import REPO, script, subprocess_env
from tests.hostile.fragile import assert_poison_dropped, write_poisoned_inputs
from tests.hostile.helpers import assert_balanced
from tests.tokenizer.conftest import trained  # noqa: F401  (the session's small tokenizer)
from tests.tokenizer.corpus import write_source
from tokenizer.train import TrainResult

# Every test here runs a CLI (or a worker pool) end to end.
pytestmark = pytest.mark.slow

TIMEOUT = 300


def children(pid: int) -> list[int]:
    """Live processes whose parent is `pid` (read from /proc: no extra dependency)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def kill_one_worker_when(command: list[str], cwd: Path, ready: Callable[[], bool]) -> subprocess.CompletedProcess:
    """Run `command`; once `ready()` holds, SIGKILL one of its worker processes (never the
    command itself) and let it finish."""
    process = subprocess.Popen(command, cwd=cwd, env=subprocess_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT
    killed = None
    while killed is None and process.poll() is None and time.monotonic() < deadline:
        workers = children(process.pid)
        if ready() and workers:
            os.kill(workers[0], signal.SIGKILL)
            killed = workers[0]
        time.sleep(0.005)
    out, err = process.communicate(timeout=TIMEOUT)
    assert killed is not None, f"finished before a worker could be killed: {err}"
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def jsonl_inputs(folder: Path, files: int = 24, per_file: int = 3000) -> None:
    folder.mkdir(parents=True)
    for f in range(files):
        rows = [json.dumps({"id": f"d{f}-{n}", "text": f"document {n} of file {f} " * (1 + n % 7)})
                for n in range(per_file)]
        (folder / f"part-{f:02d}.jsonl").write_text("\n".join(rows) + "\n")


def outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "_work" not in p.parts and p.name != "timings.json"}


def test_pipeline_run_worker_sigkilled_is_reported_and_output_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    jsonl_inputs(tmp_path / "raw")
    run = [script("pipeline"), "run", "jsonl", "--input", "raw", "--workers", "2", "--tasks", "12", "--no-progress"]
    straight = subprocess.run([*run, "--corpus", "straight"], cwd=tmp_path, env=subprocess_env(),
                              capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert straight.returncode == 0 and "killed" not in straight.stderr, straight.stderr

    work = tmp_path / "corpus" / "jsonl" / "_work"
    done = kill_one_worker_when([*run, "--corpus", "corpus"], tmp_path,
                                lambda: any(work.glob("pass0/task-*.done.json")))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "warning: a worker was killed by SIGKILL" in done.stderr, done.stderr
    assert outputs(tmp_path / "straight") == outputs(tmp_path / "corpus")
    stats = json.loads((tmp_path / "corpus" / "jsonl" / "stats.json").read_text())
    assert_balanced(stats)
    assert stats["documents_kept"] == 24 * 3000 and stats["documents_failed"] == []
    lost = json.loads((tmp_path / "corpus" / "jsonl" / "timings.json").read_text())["workers_lost"]
    assert lost == [{"reason": "worker_crash", "how": "was killed by SIGKILL"}]


def test_tokenizer_encode_worker_sigkilled_is_reported_and_tokens_equal_an_uninterrupted_run(
        trained: TrainResult, tmp_path: Path) -> None:  # noqa: F811
    write_source(tmp_path / "data" / "corpus", "c4", 4000, shard_docs=250)  # 16 corpus shards
    encode = [script("tokenizer"), "encode", "--model", str(trained.model), "--workers", "2", "--no-progress"]
    clean = subprocess.run([*encode, "--tokens", "clean"], cwd=tmp_path, env=subprocess_env(),
                           capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert clean.returncode == 0, clean.stderr

    work = tmp_path / "data" / "tokens" / "c4" / "_work"
    done = kill_one_worker_when(encode, tmp_path, lambda: any(work.glob("done-*.json")))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "warning: a worker was killed by SIGKILL" in done.stderr, done.stderr
    assert outputs(tmp_path / "clean") == outputs(tmp_path / "data" / "tokens")
    meta = json.loads((tmp_path / "data" / "tokens" / "c4" / "meta.json").read_text())
    splits = meta["splits"]
    assert splits["train"]["documents"] + splits["heldout"]["documents"] == 4000


def fragile_run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tests.hostile.fragile", "run", "fragile", "--input", str(tmp_path / "raw"),
         "--corpus", str(tmp_path / "out"), "--no-progress", *extra],
        cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=TIMEOUT, check=False)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_documents_that_stall_or_kill_their_worker_are_dropped_with_reason_and_position(
        tmp_path: Path, workers: str) -> None:
    write_poisoned_inputs(tmp_path / "raw")
    done = fragile_run(tmp_path, "--workers", workers, "--document-timeout", "1.5")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "made no progress for 1.5 s" in done.stderr and "was killed by SIGKILL" in done.stderr
    assert "raised ParserError: unexpected markup in stage fragile (at hostile/fragile.py:" in done.stderr
    assert_poison_dropped(tmp_path / "out" / "fragile")


def run_a_beside_b(tmp_path: Path, texts: list[str]) -> tuple[subprocess.CompletedProcess, dict, set[str]]:
    """A run of a.jsonl holding `texts` beside b.jsonl of 50 fine documents, on one worker: the
    run, its balanced stats.json, and the ids it kept."""
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.jsonl").write_text("".join(json.dumps({"id": f"a:{i}", "text": t}) + "\n"
                                                      for i, t in enumerate(texts)))
    (tmp_path / "raw" / "b.jsonl").write_text("".join(json.dumps({"id": f"b:{i}", "text": "fine"}) + "\n"
                                                      for i in range(50)))
    done = fragile_run(tmp_path, "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    stats = json.loads((tmp_path / "out" / "fragile" / "stats.json").read_text())
    assert_balanced(stats)
    return done, stats, {d.id for d in read_corpus(tmp_path / "out" / "fragile")}


def test_a_reader_that_kills_its_worker_twice_gives_up_the_rest_of_that_file_only(tmp_path: Path) -> None:
    texts = [f"good document {n}" for n in range(500)]
    texts[400] = "the reader dies on READER_CRASH"
    done, stats, kept = run_a_beside_b(tmp_path, texts)
    assert done.stderr.count("was killed by SIGKILL") == 2
    assert [(Path(f["path"]).name, f["problem"]) for f in stats["files"]["failed"]] == [
        ("a.jsonl", "worker_crash while reading record 400 (the rest of the file is skipped)")]
    assert kept == {f"a:{i}" for i in range(400)} | {f"b:{i}" for i in range(50)}


def test_a_file_whose_documents_keep_killing_the_worker_is_given_up_and_the_run_goes_on(tmp_path: Path) -> None:
    done, stats, kept = run_a_beside_b(tmp_path, [f"good document {n}" for n in range(100)]
                                       + ["the stage dies on CRASH"] * 400)
    assert done.stderr.count("was killed by SIGKILL") == 10
    # The chunk of records 0-255 fails once, then each record from 100 alone: 100-107 are dropped
    # one by one, and the tenth failure, on 108, gives up the rest of the file instead.
    assert [(Path(f["path"]).name, f["problem"]) for f in stats["files"]["failed"]] == [
        ("a.jsonl", "worker_crash: its documents failed the worker 10 times, the last at record 108 "
                    "(the rest of the file is skipped)")]
    assert sorted(d["record"] for d in stats["documents_failed"]) == list(range(100, 108))
    assert kept == {f"a:{i}" for i in range(100)} | {f"b:{i}" for i in range(50)}


def test_a_document_that_kills_the_encoder_twice_is_left_out_and_listed(trained: TrainResult,  # noqa: F811
                                                                         tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from tokenizer import encode

    texts = [f"plain text number {n}" for n in range(300)]
    texts[123] = "this text KILLS_THE_ENCODER"
    write_source(tmp_path / "corpus", "c4", 300, shard_docs=100, texts=texts)
    original = encode._encode_rows

    def fragile(processor, rule, ids, chunk, writers):  # a SentencePiece crash on one document
        if any("KILLS_THE_ENCODER" in t for t in chunk):
            os.kill(os.getpid(), signal.SIGKILL)
        return original(processor, rule, ids, chunk, writers)

    monkeypatch.setattr(encode, "_encode_rows", fragile)
    report = encode.encode_corpus(tmp_path / "corpus", trained.model, tmp_path / "tokens", workers=2,
                                  show_progress=False)
    meta = report.sources["c4"]
    assert meta["documents_failed"] == [{"row": 23, "id": "c4-123", "reason": "worker_crash",
                                         "corpus_shard": "shard-00001.arrow"}]
    assert meta["splits"]["train"]["documents"] + meta["splits"]["heldout"]["documents"] == 299
