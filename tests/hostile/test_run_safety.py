"""Flag mistakes and second runs through the real CLIs: nothing outside what a run created is
ever deleted, two runs never share an output folder (pipeline run, tokenizer encode, tokenizer
train, train, under torchrun too), a failed run is not a finished one, and a
resumed run never mixes two settings that change its outputs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.common.lock import folder_lock
from tests.conftest import subprocess_env
from tests.hostile.helpers import assert_balanced, one_error, truncate, write_lines
from tests.hostile.helpers import run_script as cli
from tests.hostile.sources_data import c4_lines, write_c4
from tests.tokenizer.conftest import trained, write_corpus  # noqa: F401  (trained: the session's small tokenizer)
from tests.tokenizer.corpus import write_source
from tests.train.token_shards import write_llama1_tokens
from tokenizer.train import TrainResult

# Every test here runs a CLI (or a worker pool) end to end.
pytestmark = pytest.mark.slow


def c4_raw(tmp_path: Path, documents: int = 20) -> Path:
    raw = tmp_path / "raw" / "c4"
    write_lines(raw / "a.json", c4_lines(documents))
    return raw


@pytest.mark.parametrize("output", ["raw", "raw/c4/out", "raw/c4/..", "./raw/"])
def test_output_overlapping_the_input_is_refused_and_nothing_is_deleted(tmp_path: Path, output: str) -> None:
    raw = c4_raw(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    done = cli("pipeline", "run", "c4", "--input", "raw/c4", "--corpus", output, "--restart", "--workers", "1",
               "--no-progress", cwd=tmp_path)
    assert "overlaps the input raw/c4; pick a --corpus outside the raw inputs" in one_error(done, "pipeline")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (raw / "a.json").exists()


def test_restart_deletes_only_what_the_run_created(tmp_path: Path) -> None:
    c4_raw(tmp_path)
    run = ["run", "c4", "--input", "raw/c4", "--corpus", "corpus", "--workers", "1", "--no-progress"]
    assert cli("pipeline", *run, cwd=tmp_path).returncode == 0
    folder = tmp_path / "corpus" / "c4"
    (folder / "notes.txt").write_text("mine")
    (folder / "keep").mkdir()
    again = cli("pipeline", *run, "--restart", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (folder / "notes.txt").read_text() == "mine" and (folder / "keep").is_dir()
    assert json.loads((folder / "stats.json").read_text())["documents_kept"] == 20


def test_restart_keeps_files_beside_the_runs_shards_that_it_did_not_name(tmp_path: Path) -> None:
    """The run's shards are shard-NNNNN.arrow, in the folder and in dropped/: a user's
    shard-old.arrow or dropped/why.txt is no shard of a run, and --restart leaves it."""
    raw = c4_raw(tmp_path)
    with (raw / "a.json").open("a") as f:  # two documents the quality filter drops
        f.write(json.dumps({"text": "too short", "url": "u1", "timestamp": "t"}) + "\n")
        f.write(json.dumps({"text": "lorem ipsum dolor sit amet.", "url": "u2", "timestamp": "t"}) + "\n")
    run = ["run", "c4", "--input", "raw/c4", "--corpus", "corpus", "--workers", "1", "--no-progress"]
    assert cli("pipeline", *run, "--keep-dropped", cwd=tmp_path).returncode == 0
    folder = tmp_path / "corpus" / "c4"
    assert sorted(p.name for p in (folder / "dropped").iterdir()) == ["shard-00000.arrow"]
    mine = {folder / "shard-old.arrow": b"a user's copy", folder / "dropped" / "why.txt": b"notes",
            folder / "shard-1.arrow": b"not five digits"}
    for path, data in mine.items():
        path.write_bytes(data)
    again = cli("pipeline", *run, "--restart", cwd=tmp_path)  # without --keep-dropped: no dropped shards now
    assert again.returncode == 0, again.stderr
    assert {path: path.read_bytes() for path in mine} == mine
    assert sorted(p.name for p in (folder / "dropped").iterdir()) == ["why.txt"]
    assert json.loads((folder / "stats.json").read_text())["documents_kept"] == 20
    # Once nothing of the user's is left in it, dropped/ goes with the run's shards.
    (folder / "dropped" / "why.txt").unlink()
    assert cli("pipeline", *run, "--keep-dropped", "--restart", cwd=tmp_path).returncode == 0
    assert cli("pipeline", *run, "--restart", cwd=tmp_path).returncode == 0
    assert not (folder / "dropped").exists()


def test_restart_leaves_a_users_file_named_like_a_shard_the_run_did_not_make_and_says_so(tmp_path: Path) -> None:
    """The run made shard-00000.arrow only: a user's shard-00042.arrow (or dropped/shard-00007.arrow)
    beside it has a run's name but no run's record, and --restart deletes the run and not it."""
    c4_raw(tmp_path)
    run = ["run", "c4", "--input", "raw/c4", "--corpus", "corpus", "--workers", "1", "--no-progress"]
    assert cli("pipeline", *run, cwd=tmp_path).returncode == 0
    folder = tmp_path / "corpus" / "c4"
    assert sorted(p.name for p in folder.glob("shard-*")) == ["shard-00000.arrow"]
    mine = folder / "shard-00042.arrow"
    mine.write_bytes((folder / "shard-00000.arrow").read_bytes())  # a user's copy, under a run's name
    assert cli("pipeline", *run, cwd=tmp_path).returncode == 0 and mine.exists()  # complete: nothing to do
    refused = cli("pipeline", *run, "--restart", cwd=tmp_path)
    assert one_error(refused, "pipeline") == (
        f"{mine.relative_to(tmp_path)}: named like a run's output, but no run here recorded making it, so "
        "--restart left it (the rest of the run is deleted); move it away and rerun")
    assert sorted(p.name for p in folder.iterdir()) == ["shard-00042.arrow"]
    mine.rename(tmp_path / "mine.arrow")
    assert cli("pipeline", *run, cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in folder.glob("shard-*")) == ["shard-00000.arrow"]


def test_second_run_on_one_output_names_the_holder_and_exits_2(tmp_path: Path) -> None:
    c4_raw(tmp_path)
    with folder_lock(tmp_path / "corpus" / "c4"):
        done = cli("pipeline", "run", "c4", "--input", "raw/c4", "--corpus", "corpus", "--workers", "1",
                   "--no-progress", cwd=tmp_path)
        error = one_error(done, "pipeline")
    assert error.startswith("corpus/c4: another run is writing here (pid ")
    assert not (tmp_path / "corpus" / "c4" / "_work").exists()
    after = cli("pipeline", "run", "c4", "--input", "raw/c4", "--corpus", "corpus", "--workers", "1",
                "--no-progress", cwd=tmp_path)
    assert after.returncode == 0, after.stderr  # the lock went with its holder


def test_a_run_with_no_usable_input_is_not_finished_and_reruns_once_fixed(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "c4"
    truncate(write_c4(raw / "a.json.gz", 50), keep=0.1)
    run = ["run", "c4", "--input", "raw/c4", "--corpus", "corpus", "--workers", "1", "--no-progress"]
    failed = cli("pipeline", *run, cwd=tmp_path)
    assert failed.returncode == 2 and "(no input of c4 was usable)" in failed.stderr
    write_c4(raw / "a.json.gz", 50)  # the fixed input
    fixed = cli("pipeline", *run, cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    stats = json.loads((tmp_path / "corpus" / "c4" / "stats.json").read_text())
    assert_balanced(stats)
    assert stats["documents_read"] == 50 and stats["files"]["failed"] == []


@pytest.mark.parametrize("changed, message", [
    (["--keep-dropped"], ("--keep-dropped differs from the run started there (the run there has no "
                          "--keep-dropped, this one --keep-dropped)")),
    (["--shard-mb", "1"], ("--shard-mb differs from the run started there (the run there has --shard-mb 256, "
                           "this one --shard-mb 1)")),
    (["--config", "strict.toml"], ("the config differs from the run started there (min_sentences 3 -> 4, "
                                   "min_words_per_line 5 -> 6)")),
])
def test_a_rerun_with_other_output_settings_exits_2_or_restarts(tmp_path: Path, changed: list[str],
                                                                message: str) -> None:
    raw = c4_raw(tmp_path, 30)
    write_lines(raw / "b.json", [b'{"text": "short"}', b"not json"])
    (tmp_path / "strict.toml").write_text("[c4]\nmin_words_per_line = 6\nmin_sentences = 4\n")
    run = ["run", "c4", "--input", "raw/c4", "--corpus", "corpus", "--workers", "1", "--no-progress"]
    assert cli("pipeline", *run, cwd=tmp_path).returncode == 0
    refused = cli("pipeline", *run, *changed, cwd=tmp_path)
    assert message in one_error(refused, "pipeline")
    assert "pass --restart to start over" in refused.stderr
    restarted = cli("pipeline", *run, *changed, "--restart", cwd=tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    if changed == ["--keep-dropped"]:
        stats = json.loads((tmp_path / "corpus" / "c4" / "stats.json").read_text())
        dropped = sum(sum(s["dropped"].values()) for s in stats["stages"][1:])
        from pipeline.engine.shards import read_corpus
        assert len(list(read_corpus(tmp_path / "corpus" / "c4" / "dropped"))) == dropped > 0


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "abc"])
def test_bad_document_timeout_is_one_line_and_exit_2(tmp_path: Path, value: str) -> None:
    c4_raw(tmp_path)
    done = cli("pipeline", "run", "c4", "--input", "raw/c4", "--corpus", "corpus", "--document-timeout", value,
               "--no-progress", cwd=tmp_path)
    assert done.returncode == 2 and "--document-timeout" in done.stderr.strip().splitlines()[-1]


def test_encode_refuses_overlap_locks_and_restarts_only_its_own_files(trained: TrainResult,  # noqa: F811
                                                                      tmp_path: Path) -> None:
    write_source(tmp_path / "data" / "corpus", "c4", 40, shard_docs=20)
    encode = ["encode", "--model", str(trained.model), "--workers", "1", "--no-progress"]
    overlap = cli("tokenizer", *encode, "--tokens", "data/corpus", cwd=tmp_path)
    assert "the token folder overlaps the corpus folder" in one_error(overlap, "tokenizer")
    assert sorted(p.name for p in (tmp_path / "data" / "corpus" / "c4").iterdir()) == [
        "manifest.json", "shard-00000.arrow", "shard-00001.arrow"]

    with folder_lock(tmp_path / "data" / "tokens" / "c4"):
        held = cli("tokenizer", *encode, cwd=tmp_path)
    assert "data/tokens/c4: another encode is writing here (pid " in one_error(held, "tokenizer")

    assert cli("tokenizer", *encode, cwd=tmp_path).returncode == 0
    (tmp_path / "data" / "tokens" / "c4" / "notes.txt").write_text("mine")
    (tmp_path / "data" / "tokens" / "c4" / "train-notes.bin").write_text("mine too")  # no shard name of encode's
    again = cli("tokenizer", *encode, "--restart", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "data" / "tokens" / "c4" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "data" / "tokens" / "c4" / "train-notes.bin").read_text() == "mine too"


def test_encode_skips_a_source_with_no_documents_and_encodes_the_others(trained: TrainResult,  # noqa: F811
                                                                         tmp_path: Path) -> None:
    corpus = tmp_path / "data" / "corpus"
    write_source(corpus, "c4", 40, shard_docs=20)
    write_source(corpus, "books", 0, texts=[])
    done = cli("tokenizer", "encode", "--model", str(trained.model), "--workers", "1", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning: data/corpus/books: no documents in its corpus shards; skipped" in done.stderr
    meta = json.loads((tmp_path / "data" / "tokens" / "c4" / "meta.json").read_text())
    assert meta["splits"]["train"]["documents"] + meta["splits"]["heldout"]["documents"] == 40
    named = cli("tokenizer", "encode", "--model", str(trained.model), "--sources", "books", "--no-progress",
                cwd=tmp_path)
    assert "data/corpus/books: empty source" in one_error(named, "tokenizer")


ONE_THREAD = {"OMP_NUM_THREADS": "1"}
SHORT_TRAIN = ["--model", "debug", "--steps", "2", "--tokens", "tokens", "--no-progress"]


def holder_line(what: str, folder: str, pid: int) -> str:
    """The start of the line a run refused by `pid`'s lock prints (the lock file's own words)."""
    return f"{folder}: another {what} is writing here (pid {pid} on {socket.gethostname()}, started "


def test_second_train_on_one_run_folder_names_the_holder_and_exits_2(tmp_path: Path) -> None:
    write_llama1_tokens(tmp_path / "tokens")
    # The holder is another process, killed with SIGKILL: its lock goes with it, its lock file stays.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from pipeline.common.lock import "
         "folder_lock\nwith folder_lock(Path('run'), 'train'):\n    print('held', flush=True); time.sleep(300)"],
        cwd=tmp_path, env=subprocess_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        held = cli("train", *SHORT_TRAIN, "--run", "run", cwd=tmp_path, env=ONE_THREAD)
        error = one_error(held, "train")
        assert error.startswith(holder_line("train", "run", holder.pid)), error
        assert error.endswith("; wait for it to end or stop it")
        assert [p.name for p in (tmp_path / "run").iterdir()] == [".lock"]  # the refused run wrote nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / "run" / ".lock").exists()  # left by the killed holder, locked by no one
    after = cli("train", *SHORT_TRAIN, "--run", "run", cwd=tmp_path, env=ONE_THREAD)
    assert after.returncode == 0, after.stderr
    assert "steps 0-2 done" in after.stdout
    # A finished run folder holds what the run made, and no lock file.
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoints", "config.json", "metrics.jsonl"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_rank_0_ends_every_rank_of_a_torchrun_job_with_exit_2(tmp_path: Path) -> None:
    write_llama1_tokens(tmp_path / "tokens")
    # The two ranks torchrun would start, started by hand: torchrun's agent ends the other ranks
    # once one fails, which would hide a rank left waiting for rank 0.
    world = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), **ONE_THREAD}
    cmd = [sys.executable, "-m", "train", *SHORT_TRAIN, "--run-dir", "run", "--batch-tokens", "256",
           "--device", "cpu"]
    with folder_lock(tmp_path / "run", "train"):
        ranks = [subprocess.Popen(cmd, cwd=tmp_path, env={**subprocess_env(), **world, "RANK": str(r),
                                                          "LOCAL_RANK": str(r)},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
        try:
            ended = [rank.communicate(timeout=120) for rank in ranks]
        finally:
            for rank in ranks:
                rank.kill()
        assert [p.name for p in (tmp_path / "run").iterdir()] == [".lock"]
    assert [rank.returncode for rank in ranks] == [2, 2], ended
    (_, rank_0_err), (_, rank_1_err) = ended
    lines = rank_0_err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train: error: " + holder_line("train", "run", os.getpid()))
    assert "Traceback" not in rank_1_err and "error" not in rank_1_err  # rank 0 says it, once


def test_second_tokenizer_train_on_one_output_names_the_holder_and_exits_2(tmp_path: Path) -> None:
    write_corpus(tmp_path / "data" / "corpus", {"c4": 60, "wikipedia": 30, "github": 20}, shard_docs=None)
    (tmp_path / "mine.toml").write_text('name = "mine"\n[proportions]\nc4 = 0.5\nwikipedia = 0.3\ngithub = 0.2\n')
    train = ["train", "--mixture", "mine.toml", "--vocab-size", "500", "--threads", "1"]
    output = tmp_path / "data" / "tokenizer"
    with folder_lock(output, "tokenizer train"):
        held = cli("tokenizer", *train, cwd=tmp_path)
        assert [p.name for p in output.iterdir()] == [".lock"]  # no sample, no temporary model
    assert one_error(held, "tokenizer").startswith(holder_line("tokenizer train", "data/tokenizer", os.getpid()))
    after = cli("tokenizer", *train, cwd=tmp_path)
    assert after.returncode == 0, after.stderr
    assert sorted(p.name for p in output.iterdir()) == ["mine.json", "mine.model", "mine.vocab"]
