""""Already complete" only when it is, through the real CLIs: a rerun checks a finished run
against what is on disk (shards, manifest.json, stats.json, token .bin/.idx) and against its
inputs (changed since read, or failed and fixed since), redoes what it can in one warning line
and refuses in one error line naming --restart what it cannot; leftover temporaries of a killed
run go; one long document is encoded within a bounded memory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm

from pipeline.engine.shards import read_corpus
from sources.samples.github import LICENSES
from tests.conftest import script, subprocess_env
from tests.hostile.helpers import assert_balanced, json_line, one_error, truncate, write_lines
from tests.hostile.helpers import run_script as cli
from tests.hostile.measure import tree_peak_mb
from tests.hostile.sources_data import CODE, github_row
from tests.tokenizer.conftest import trained  # noqa: F401  (the session's small tokenizer)
from tests.tokenizer.corpus import write_source
from tokenizer.train import TrainResult

pytestmark = pytest.mark.slow  # every test runs a CLI end to end


def run_args(source: str, *extra: str) -> list[str]:
    return ["run", source, "--input", f"raw/{source}", "--corpus", "corpus", "--workers", "1", "--tasks", "3",
            "--no-progress", *extra]


def jsonl_file(path: Path, number: int, documents: int = 10) -> Path:
    return write_lines(path, [json_line(f"Document {d} of file {number} says something. " * 4, id=f"f{number}-{d}")
                              for d in range(documents)])


def jsonl_raw(tmp_path: Path, files: int = 4) -> Path:
    raw = tmp_path / "raw" / "jsonl"
    for number in range(files):
        jsonl_file(raw / f"part-{number}.jsonl.gz", number)
    return raw


def github_raw(tmp_path: Path) -> Path:
    """Three tables; one row repeats another's content, so the exact dedup pass drops it."""
    raw = tmp_path / "raw" / "github"
    for table in range(3):
        rows = [github_row(f"t{table}/f{i}.py", f"{CODE}# table {table} file {i}\n") for i in range(4)]
        write_lines(raw / f"bigquery-contents-{table:03d}.jsonl", rows + [github_row("copy.py", CODE)])
    return raw


def published(folder: Path) -> dict[str, bytes]:
    """The run's published files, name -> bytes."""
    names = sorted(p.name for p in folder.glob("shard-*.arrow")) + ["manifest.json", "stats.json"]
    return {name: (folder / name).read_bytes() for name in names if (folder / name).exists()}


def stderr_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line]


def finished_run(tmp_path: Path, source: str) -> tuple[Path, dict[str, bytes]]:
    (jsonl_raw if source == "jsonl" else github_raw)(tmp_path)
    first = cli("pipeline", *run_args(source), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "corpus" / source
    files = published(folder)
    assert len([n for n in files if n.startswith("shard-")]) == 3
    return folder, files


# ---------------------------------------------------------------------------------------
# Damaged output of a finished run


def _cut(path: Path) -> str:
    size = path.stat().st_size
    truncate(path, 0.5)
    return f"{size // 2:,} bytes, not the {size:,} written"


def _overwritten(path: Path) -> str:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the sha256 tells
    path.write_bytes(bytes(data))
    return "not as written (its sha256 differs)"


def _deleted(path: Path) -> str:
    path.unlink()
    return "missing"


DAMAGE = {"deleted": _deleted, "cut": _cut, "overwritten": _overwritten}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_shard_runs_its_task_again_to_the_same_bytes(tmp_path: Path, damage: str) -> None:
    folder, before = finished_run(tmp_path, "jsonl")
    problem = DAMAGE[damage](folder / "shard-00001.arrow")
    done = cli("pipeline", *run_args("jsonl"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert stderr_lines(done) == [f"warning: corpus/jsonl: shard-00001.arrow is {problem}; running its task again"]
    assert "already complete" not in done.stdout
    assert published(folder) == before
    again = cli("pipeline", *run_args("jsonl"), cwd=tmp_path)
    assert again.returncode == 0 and "(already complete)" in again.stdout and again.stderr == ""


def test_a_deleted_shard_of_a_run_with_a_dedup_pass_is_refused_naming_restart(tmp_path: Path) -> None:
    folder, before = finished_run(tmp_path, "github")
    (folder / "shard-00001.arrow").unlink()
    done = cli("pipeline", *run_args("github"), cwd=tmp_path)
    assert one_error(done, "pipeline") == ("corpus/github: shard-00001.arrow is missing, and a run with a dedup pass "
                                           "cannot redo one task's shards; pass --restart to run it again")
    assert "shard-00001.arrow" not in published(folder)  # refused: nothing else touched, nothing claimed
    restarted = cli("pipeline", *run_args("github", "--restart"), cwd=tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    assert published(folder) == before


@pytest.mark.parametrize("source", ["jsonl", "github"])
@pytest.mark.parametrize("name, damage, problem", [
    ("manifest.json", "deleted", "missing"),
    ("stats.json", "deleted", "missing"),
    ("stats.json", "cut", "damaged (not JSON: cut or overwritten)"),
    # Still JSON, other numbers: a rerun said "kept 99 of 90 documents (already complete)".
    ("manifest.json", "edited", "not as the run wrote it (edited since)"),
    ("stats.json", "edited", "not as the run wrote it (edited since)"),
])
def test_a_missing_cut_or_edited_manifest_or_stats_is_written_again_from_the_task_records(
        tmp_path: Path, source: str, name: str, damage: str, problem: str) -> None:
    folder, before = finished_run(tmp_path, source)
    if damage == "deleted":
        (folder / name).unlink()
    elif damage == "cut":
        truncate(folder / name, 0.5)
    else:
        data = json.loads((folder / name).read_text())
        key = "documents" if name == "manifest.json" else "documents_kept"
        data[key] += 1
        (folder / name).write_text(json.dumps(data))
    done = cli("pipeline", *run_args(source), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert stderr_lines(done) == [f"warning: corpus/{source}: {name} is {problem}; writing it again from the task "
                                  "records"]
    assert published(folder) == before


@pytest.mark.parametrize("source", ["jsonl", "github"])
@pytest.mark.parametrize("damage", ["cut", "no task record"])
def test_a_damaged_task_marker_of_a_finished_run_is_one_line_naming_restart(
        tmp_path: Path, source: str, damage: str) -> None:
    """A marker says which shards its task wrote: a cut one had an intact shard blamed ("26,896
    bytes, not the 24,456 written") and its task run again, or the run called complete."""
    folder, before = finished_run(tmp_path, source)
    marker = folder / "_work" / "pass0" / "task-00001.done.json"
    if damage == "cut":
        truncate(marker, 0.5)
    else:
        marker.write_text('{"task": 1}')
    done = cli("pipeline", *run_args(source), cwd=tmp_path)
    line = one_error(done, "pipeline")
    assert line.startswith(f"corpus/{source}/_work/pass0/task-00001.done.json: damaged (") and line.endswith(
        "; the finished run's shards cannot be checked without it; pass --restart to run it again"), line
    assert published(folder) == before and marker.exists()  # nothing touched
    restarted = cli("pipeline", *run_args(source, "--restart"), cwd=tmp_path)
    assert restarted.returncode == 0 and published(folder) == before


def test_a_folder_finished_before_markers_were_kept_is_complete_until_damaged(tmp_path: Path) -> None:
    folder, before = finished_run(tmp_path, "jsonl")
    shutil.rmtree(folder / "_work" / "pass0")  # what finalising deleted before
    again = cli("pipeline", *run_args("jsonl"), cwd=tmp_path)
    assert again.returncode == 0 and "(already complete)" in again.stdout, again.stderr
    (folder / "shard-00002.arrow").unlink()
    done = cli("pipeline", *run_args("jsonl"), cwd=tmp_path)
    assert one_error(done, "pipeline") == (
        "corpus/jsonl: shard-00002.arrow is missing (the run's task records predate this check, so it cannot be "
        "redone in part); pass --restart to run it again")


def test_an_unfinished_folder_whose_markers_have_no_fingerprints_resumes(tmp_path: Path) -> None:
    folder, before = finished_run(tmp_path, "jsonl")
    for marker in (folder / "_work" / "pass0").glob("task-*.done.json"):  # as written before fingerprints
        data = json.loads(marker.read_text())
        del data["inputs"]
        marker.write_text(json.dumps(data))
    for name in ("manifest.json", "stats.json", "timings.json", "_work/complete.json"):
        (folder / name).unlink()  # killed while finalising
    jsonl_file(tmp_path / "raw" / "jsonl" / "part-0.jsonl.gz", 0)  # rewritten alike: no fingerprint to differ from
    done = cli("pipeline", *run_args("jsonl"), cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert published(folder) == before


# ---------------------------------------------------------------------------------------
# Inputs changed or fixed since they were read


def test_an_input_changed_since_it_was_read_is_read_again(tmp_path: Path) -> None:
    folder, _ = finished_run(tmp_path, "jsonl")
    changed = tmp_path / "raw" / "jsonl" / "part-1.jsonl.gz"
    size = changed.stat().st_size
    jsonl_file(changed, 1, documents=15)
    done = cli("pipeline", *run_args("jsonl"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert stderr_lines(done) == [f"warning: {changed}: changed since it was read ({size:,} bytes then, "
                                  f"{changed.stat().st_size:,} now); reading it again"]
    fresh = cli("pipeline", *run_args("jsonl")[:5], "fresh", *run_args("jsonl")[6:], cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    assert published(folder) == published(tmp_path / "fresh" / "jsonl")  # as if run on the new input from the start
    assert json.loads((folder / "stats.json").read_text())["documents_kept"] == 45


def test_an_input_changed_after_the_dedup_merged_is_refused_naming_restart(tmp_path: Path) -> None:
    folder, before = finished_run(tmp_path, "github")
    changed = tmp_path / "raw" / "github" / "bigquery-contents-001.jsonl"
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: same size, new mtime
    done = cli("pipeline", *run_args("github"), cwd=tmp_path)
    assert one_error(done, "pipeline") == (f"{changed}: changed since it was read, but corpus/github has merged the "
                                           "dedup of all its inputs already; pass --restart to read every input again")
    assert published(folder) == before
    assert cli("pipeline", *run_args("github", "--restart"), cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("change", ["edited in place", "file added in a subfolder", "file removed"])
def test_a_repository_folder_changed_inside_after_the_dedup_merged_is_refused(tmp_path: Path, change: str) -> None:
    """A GitHub input is a repository folder: an edit inside moves neither the folder's size nor
    its mtime, and was taken for the same input."""
    raw = tmp_path / "raw" / "github"
    licence = LICENSES["MIT"].format(year=2023, owner="Example Authors")
    for repo in ("alpha", "beta"):
        (raw / repo / "src" / "deep").mkdir(parents=True)
        (raw / repo / "LICENSE").write_text(licence)
        (raw / repo / "src" / "deep" / "main.py").write_text(f"def {repo}():\n    return 1\n")
    first = cli("pipeline", *run_args("github"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "corpus" / "github"
    before = published(folder)
    assert cli("pipeline", *run_args("github"), cwd=tmp_path).stderr == ""  # untouched: complete
    main = raw / "alpha" / "src" / "deep" / "main.py"
    if change == "edited in place":
        main.write_text(main.read_text().replace("return 1", "return 2"))  # same size
    elif change == "file added in a subfolder":
        (raw / "alpha" / "src" / "deep" / "extra.py").write_text("def extra():\n    return 3\n")
    else:
        main.unlink()
    done = cli("pipeline", *run_args("github"), cwd=tmp_path)
    assert one_error(done, "pipeline").startswith(f"{raw / 'alpha'}: changed since it was read")
    assert published(folder) == before
    assert cli("pipeline", *run_args("github", "--restart"), cwd=tmp_path).returncode == 0


def test_a_cut_input_fixed_and_rerun_is_read_and_counted_once(tmp_path: Path) -> None:
    raw = jsonl_raw(tmp_path)
    good = (raw / "part-2.jsonl.gz").read_bytes()
    truncate(raw / "part-2.jsonl.gz", 0.5)
    first = cli("pipeline", *run_args("jsonl"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "corpus" / "jsonl"
    stats = json.loads((folder / "stats.json").read_text())
    assert [Path(f["path"]).name for f in stats["files"]["failed"]] == ["part-2.jsonl.gz"]
    assert stats["documents_read"] < 40

    untouched = cli("pipeline", *run_args("jsonl"), cwd=tmp_path)  # would fail the same way: not read again
    assert "(already complete)" in untouched.stdout
    # Nothing but the closing reminder of what the corpus still lacks: the given-up input, named.
    assert stderr_lines(untouched) == [
        "warning: 1 input was given up or cut short; what it did not yield is not in the corpus "
        "(stats.json: files.failed):",
        *[line for line in stderr_lines(untouched) if line.startswith("  unreadable input: ")]]
    assert "part-2.jsonl.gz" in stderr_lines(untouched)[-1]

    (raw / "part-2.jsonl.gz").write_bytes(good)
    fixed = cli("pipeline", *run_args("jsonl"), cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    [line] = stderr_lines(fixed)
    assert line.startswith(f"warning: {raw / 'part-2.jsonl.gz'}: changed since it was read (")
    stats = json.loads((folder / "stats.json").read_text())
    assert_balanced(stats)
    assert stats["files"]["failed"] == [] and stats["documents_read"] == stats["documents_kept"] == 40
    ids = [d.id for d in read_corpus(folder)]
    assert sorted(ids) == sorted(f"f{f}-{d}" for f in range(4) for d in range(10))  # each once
    fresh = cli("pipeline", *run_args("jsonl")[:5], "fresh", *run_args("jsonl")[6:], cwd=tmp_path)
    assert published(folder) == published(tmp_path / "fresh" / "jsonl"), fresh.stderr


def test_a_corrupt_input_fixed_keeping_its_size_and_mtime_is_read_again(tmp_path: Path) -> None:
    raw = jsonl_raw(tmp_path)
    broken = raw / "part-1.jsonl.gz"
    good = broken.read_bytes()
    _overwritten(broken)  # a flipped byte: the gzip check fails, same size
    stat = broken.stat()
    first = cli("pipeline", *run_args("jsonl"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "corpus" / "jsonl"
    assert [Path(f["path"]).name for f in json.loads((folder / "stats.json").read_text())["files"]["failed"]] == [
        "part-1.jsonl.gz"]
    broken.write_bytes(good)
    os.utime(broken, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as `cp -p` of a good copy: only the ctime moves
    fixed = cli("pipeline", *run_args("jsonl"), cwd=tmp_path)
    assert stderr_lines(fixed) == [f"warning: {broken}: failed when it was read and was touched since (replaced or "
                                   "its permissions changed); reading it again"]
    stats = json.loads((folder / "stats.json").read_text())
    assert stats["files"]["failed"] == [] and stats["documents_read"] == stats["documents_kept"] == 40


def test_a_failed_input_whose_ctime_alone_moved_keeps_a_dedup_run_complete(tmp_path: Path) -> None:
    """A workspace restored with `cp -a`, or a recursive chmod of the inputs, moves every ctime: a
    cut input of a run whose dedup had merged was then refused, naming --restart, though its bytes
    (hashed when it failed) are still those that failed."""
    raw = github_raw(tmp_path)
    cut = write_lines(raw / "bigquery-contents-009.jsonl.gz",
                      [github_row(f"t9/f{i}.py", f"{CODE}# cut table file {i}\n") for i in range(40)])
    truncate(cut, 0.5)
    first = cli("pipeline", *run_args("github"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "corpus" / "github"
    assert [Path(f["path"]).name for f in json.loads((folder / "stats.json").read_text())["files"]["failed"]] == [
        cut.name]
    before = published(folder)
    os.chmod(cut, cut.stat().st_mode)  # the same mode: only the ctime moves
    again = cli("pipeline", *run_args("github"), cwd=tmp_path)
    assert again.returncode == 0 and "(already complete)" in again.stdout, again.stderr
    assert "touched since" not in again.stderr
    assert published(folder) == before
    # Its bytes replaced, keeping size and mtime (a good copy with `cp -p`): that is a change.
    stat = cut.stat()
    cut.write_bytes(bytes(b ^ 0xFF for b in cut.read_bytes()))
    os.utime(cut, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    refused = cli("pipeline", *run_args("github"), cwd=tmp_path)
    assert one_error(refused, "pipeline").startswith(f"{cut}: failed when it was read and was touched since")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its permissions")
def test_an_unreadable_input_whose_permissions_are_fixed_is_read_again(tmp_path: Path) -> None:
    raw = jsonl_raw(tmp_path)
    locked = raw / "part-3.jsonl.gz"
    locked.chmod(0)
    try:
        first = cli("pipeline", *run_args("jsonl"), cwd=tmp_path)
    finally:
        locked.chmod(0o644)  # size and mtime unchanged: only the ctime says it was touched
    assert first.returncode == 0, first.stderr
    fixed = cli("pipeline", *run_args("jsonl"), cwd=tmp_path)
    assert stderr_lines(fixed) == [f"warning: {locked}: failed when it was read and was touched since (replaced or "
                                   "its permissions changed); reading it again"]
    stats = json.loads((tmp_path / "corpus" / "jsonl" / "stats.json").read_text())
    assert stats["files"]["failed"] == [] and stats["documents_kept"] == 40


# ---------------------------------------------------------------------------------------
# Leftover temporaries of a killed run

KILLED_AT_STATS = """
import os, signal, sys
replace = os.replace
def killed_before_stats(src, dst, *args, **kwargs):
    if str(dst).endswith("/stats.json"):
        os.kill(os.getpid(), signal.SIGKILL)  # as a SIGKILL between writing the temporary and renaming it
    return replace(src, dst, *args, **kwargs)
os.replace = killed_before_stats
from pipeline.cli import main
main(sys.argv[1:])
"""


def test_a_temporary_left_by_a_kill_during_finalise_is_removed_by_the_rerun(tmp_path: Path) -> None:
    jsonl_raw(tmp_path)
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_STATS, *run_args("jsonl")], cwd=tmp_path,
                            env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    folder = tmp_path / "corpus" / "jsonl"
    assert [p.name for p in folder.glob("stats.json.*.tmp")] == [f"stats.json.{killed_pid(folder)}.tmp"]
    mine = ["stats.json.tmp", "notes.json.12.tmp", "stats.json.old"]  # a user's files: never the run's to delete
    for name in mine:
        (folder / name).write_text("mine")
    done = cli("pipeline", *run_args("jsonl"), cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert list(folder.glob("stats.json.*[0-9].tmp")) == []
    assert all((folder / name).read_text() == "mine" for name in mine)
    fresh = cli("pipeline", *run_args("jsonl")[:5], "fresh", *run_args("jsonl")[6:], cwd=tmp_path)
    assert published(folder) == published(tmp_path / "fresh" / "jsonl"), fresh.stderr


def killed_pid(folder: Path) -> str:
    [leftover] = folder.glob("stats.json.*.tmp")
    return leftover.name.split(".")[2]


# ---------------------------------------------------------------------------------------
# tokenizer encode


def encode_args(model: Path) -> list[str]:
    return ["encode", "--model", str(model), "--workers", "1", "--no-progress"]


def token_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*-*.*")) if p.suffix in (".bin", ".idx", ".ids")} | {
        "meta.json": (folder / "meta.json").read_bytes()}


@pytest.mark.parametrize("name, damage", [("train-00001.bin", "deleted"), ("train-00001.idx", "deleted"),
                                          ("train-00001.ids", "deleted"), ("train-00000.bin", "cut")])
def test_encode_redoes_a_shard_whose_token_file_is_missing_or_cut(trained: TrainResult,  # noqa: F811
                                                                  tmp_path: Path, name: str, damage: str) -> None:
    write_source(tmp_path / "data" / "corpus", "c4", 40, shard_docs=20)
    assert cli("tokenizer", *encode_args(trained.model), cwd=tmp_path).returncode == 0
    folder = tmp_path / "data" / "tokens" / "c4"
    before = token_files(folder)
    problem = DAMAGE[damage](folder / name)
    done = cli("tokenizer", *encode_args(trained.model), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shard = f"data/corpus/c4/shard-0000{name[-5]}.arrow"
    assert stderr_lines(done) == [f"warning: data/tokens/c4/{name}: {problem}; encoding {shard} again"]
    assert token_files(folder) == before


def test_encode_redoes_a_shard_whose_corpus_shard_changed_since(trained: TrainResult,  # noqa: F811
                                                                 tmp_path: Path) -> None:
    write_source(tmp_path / "data" / "corpus", "c4", 40, shard_docs=20)
    assert cli("tokenizer", *encode_args(trained.model), cwd=tmp_path).returncode == 0
    shard = tmp_path / "data" / "corpus" / "c4" / "shard-00000.arrow"
    stat = shard.stat()
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    done = cli("tokenizer", *encode_args(trained.model), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert stderr_lines(done) == ["warning: data/corpus/c4/shard-00000.arrow: changed since it was read; "
                                  "encoding data/corpus/c4/shard-00000.arrow again"]


def test_one_long_document_without_spaces_is_encoded_within_bounded_memory(trained: TrainResult,  # noqa: F811
                                                                          tmp_path: Path) -> None:
    """24 MB of one character: encoded whole, SentencePiece's encoder took 1.4 GB (measured)."""
    long_text = "x" * 24_000_000
    write_source(tmp_path / "data" / "corpus", "c4", 3, texts=["a short one", long_text, "another short one"])
    process = subprocess.Popen([script("tokenizer"), *encode_args(trained.model)], cwd=tmp_path,
                               env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = tree_peak_mb(process)
    assert process.returncode == 0, process.stderr.read()
    assert peak < 1024, f"the encode's processes peaked at {peak:.0f} MB together"
    meta = json.loads((tmp_path / "data" / "tokens" / "c4" / "meta.json").read_text())
    documents = []
    for split in meta["splits"].values():
        for shard in split["shards"]:
            tokens = np.fromfile(tmp_path / "data" / "tokens" / "c4" / shard["bin"], dtype=meta["dtype"])
            offsets = np.fromfile(tmp_path / "data" / "tokens" / "c4" / shard["index"], dtype="<i8")
            documents += [tokens[start:end] for start, end in zip(offsets, offsets[1:])]
    longest = max(documents, key=len)
    processor = spm.SentencePieceProcessor(model_file=str(trained.model))
    assert longest[0] == processor.bos_id() and longest[-1] == processor.eos_id()
    assert processor.decode(longest[1:-1].tolist()) == long_text  # the cuts added and lost nothing
