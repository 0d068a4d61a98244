"""`pipeline remove`: a real `pipeline run` of the c4 sample in three shards (--keep-dropped), a
tokenizer trained on it and `tokenizer encode`; the result is judged by reading the Arrow shards
with pyarrow, hashing files with hashlib, and against a fresh encode of the reduced corpus."""

from __future__ import annotations

import datetime
import getpass
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import datasets
import pyarrow as pa
import pytest

from pipeline.commands.remove import JOURNAL, plan_removal, read_ids
from pipeline.common.errors import UserError
from pipeline.common.files import write_json_atomic
from pipeline.common.lock import folder_lock
from tests.conftest import script, subprocess_env

pytestmark = pytest.mark.slow  # CLI runs: about 2 s each

RUN = ("run", "c4", "--input", "raw/c4", "--corpus", "corpus", "--tasks", "3", "--workers", "1", "--keep-dropped",
       "--no-progress")
ENCODE = ("encode", "--corpus", "corpus", "--model", "tok/c4only.model", "--workers", "1", "--no-progress")


def cli(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([script(name), *args], cwd=cwd, check=False, capture_output=True, text=True,
                          env=subprocess_env(), timeout=300)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """raw/c4 from `pipeline sample`, corpus/c4 in three shards (one per task), a 300-piece tokenizer."""
    root = tmp_path_factory.mktemp("remove")
    assert cli("pipeline", "sample", "--raw", "raw", "--sources", "c4", cwd=root).returncode == 0
    assert cli("pipeline", *RUN, cwd=root).returncode == 0
    (root / "c4only.toml").write_text('name = "c4only"\n[proportions]\nc4 = 1.0\n')
    trained = cli("tokenizer", "train", "--corpus", "corpus", "--mixture", "c4only.toml", "--vocab-size", "300",
                  "--out", "tok", "--threads", "1", "--no-progress", cwd=root)
    assert trained.returncode == 0, trained.stderr
    return root


@pytest.fixture
def work(built: Path, tmp_path: Path) -> Path:
    """A copy of the built folders for one test to change."""
    shutil.copytree(built, tmp_path / "w")
    return tmp_path / "w"


def read_ids_of(path: Path) -> list[str]:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).read_all().column("id").to_pylist()


def rows(path: Path) -> list[tuple]:
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_stream(source).read_all()
    return list(zip(*(table.column(name).to_pylist() for name in table.column_names)))


def test_ids_file_skips_blank_lines_and_comments_only(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("# takedown 2026-12\n\nurl#fragment:3\n  c4:1  \r\nc4:1\n #not a comment? it is\n")
    assert read_ids(ids) == ["url#fragment:3", "c4:1"]


def test_removal_rewrites_only_the_shards_that_hold_the_ids(work: Path) -> None:
    assert cli("pipeline", *RUN, "--restart", cwd=work).returncode == 0  # its plan names this copy's inputs
    corpus = work / "corpus" / "c4"
    shards = sorted(corpus.glob("shard-*.arrow"))
    assert len(shards) == 3
    before = {str(p.relative_to(corpus)): rows(p) for p in [*shards, corpus / "dropped" / "shard-00000.arrow"]}
    untouched = {p.name: p.read_bytes() for p in (shards[0], shards[2])}
    middle, dropped = read_ids_of(shards[1]), read_ids_of(corpus / "dropped" / "shard-00000.arrow")
    doomed = [middle[0], middle[-1], dropped[2]]
    (work / "ids.txt").write_text(f"# takedown\n{doomed[0]}\n\n{doomed[1]}\nno-such:id\n{doomed[2]}\n")

    result = cli("pipeline", "remove", "c4", "--corpus", "corpus", "--ids", "ids.txt", cwd=work)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["1 listed id(s) not found in the corpus:", "  no-such:id"]

    for name, earlier in before.items():
        assert rows(corpus / name) == [r for r in earlier if r[0] not in doomed]
    for name, data in untouched.items():
        assert (corpus / name).read_bytes() == data
    manifest = json.loads((corpus / "manifest.json").read_text())
    for entry in manifest["shards"]:
        data = (corpus / entry["file"]).read_bytes()
        assert (entry["sha256"], entry["bytes"]) == (hashlib.sha256(data).hexdigest(), len(data))
        assert entry["documents"] == len(read_ids_of(corpus / entry["file"]))
    kept = sum(len(read_ids_of(p)) for p in shards)
    assert manifest["documents"] == kept == sum(len(before[p.name]) for p in shards) - 2
    stats = json.loads((corpus / "stats.json").read_text())
    assert (stats["removed"], stats["documents_kept"]) == (2, kept)

    (line,) = (corpus / "removals.jsonl").read_text().splitlines()
    log = json.loads(line)
    assert log["by"] == f"{getpass.getuser()}@{socket.gethostname()}"
    assert datetime.datetime.fromisoformat(log["at"]).utcoffset() == datetime.timedelta(0)
    assert (log["removed"], log["not_found"]) == (doomed, ["no-such:id"])
    assert log["shards"] == {shards[1].name: 2, "dropped/shard-00000.arrow": 1}

    assert cli("pipeline", "verify", "c4", "--corpus", "corpus", cwd=work).returncode == 0
    assert cli("pipeline", "stats", "c4", "--corpus", "corpus", cwd=work).stdout.splitlines()[0] == \
        f"c4: kept {kept} of {stats['documents_read']} documents (the run kept {kept + 2}; 2 removed since, see " \
        "removals.jsonl)"
    # A rerun of the run finds it complete: nothing is run again, nothing removed comes back.
    rerun = cli("pipeline", *RUN, cwd=work)
    assert rerun.returncode == 0 and "(already complete)" in rerun.stdout, rerun.stderr
    assert not set(doomed) & {i for p in shards for i in read_ids_of(p)}


def token_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("which", ["a train document", "the held-out document", "every document of a shard"])
def test_token_shards_equal_a_fresh_encode_of_the_reduced_corpus(work: Path, which: str) -> None:
    assert cli("tokenizer", *ENCODE, "--tokens", "tokens", cwd=work).returncode == 0
    plan = json.loads((work / "tokens" / "c4" / "_work" / "plan.json").read_text())
    (held_out,) = plan["heldout_rule"]["ids"]  # 72 documents: too few for the 0.5% threshold to pick one
    middle = read_ids_of(work / "corpus" / "c4" / "shard-00001.arrow")
    doomed = {"a train document": [next(i for i in middle if i != held_out)], "the held-out document": [held_out],
              "every document of a shard": read_ids_of(work / "corpus" / "c4" / "shard-00002.arrow")}[which]
    assert which != "every document of a shard" or held_out not in doomed
    (work / "ids.txt").write_text("".join(f"{i}\n" for i in doomed))
    stamps = {p.name: p.stat().st_mtime_ns for p in (work / "tokens" / "c4").iterdir() if p.is_file()}

    result = cli("pipeline", "remove", "c4", "--corpus", "corpus", "--ids", "ids.txt", "--tokens", "tokens/c4",
                 "--workers", "1", "--no-progress", cwd=work)
    assert result.returncode == 0, result.stderr
    assert cli("tokenizer", *ENCODE, "--tokens", "fresh", cwd=work).returncode == 0
    assert token_files(work / "tokens" / "c4") == token_files(work / "fresh" / "c4")
    assert token_files(work / "tokens" / "c4" / "_work")["plan.json"] == \
        token_files(work / "fresh" / "c4" / "_work")["plan.json"]
    if which == "a train document":  # only the files of the shard that held it (tokens, index, ids), and meta.json
        now = {p.name: p.stat().st_mtime_ns for p in (work / "tokens" / "c4").iterdir() if p.is_file()}
        assert {name for name, stamp in stamps.items() if now[name] != stamp} == \
            {"train-00001.bin", "train-00001.idx", "train-00001.ids", "meta.json"}
        assert "token shards of 1 corpus shard(s) encoded again" in result.stdout
    elif which == "the held-out document":  # another document is held out now: every shard's split changes
        assert "token shards of 3 corpus shard(s) encoded again" in result.stdout
    else:  # the shard stays, empty, under its name; its token pair is gone, as a fresh encode has none
        assert len(datasets.Dataset.from_file(str(work / "corpus" / "c4" / "shard-00002.arrow"))) == 0
        assert not list((work / "tokens" / "c4").glob("*-00002.*"))
        assert cli("pipeline", "verify", "c4", "--corpus", "corpus", cwd=work).returncode == 0
    # A later plain encode resumes the folder as it is: nothing to do.
    again = cli("tokenizer", *ENCODE, "--tokens", "tokens", cwd=work)
    assert again.returncode == 0 and again.stdout.startswith("encoded 0 corpus shard(s)"), again.stdout + again.stderr


def test_a_resumed_train_on_changed_token_shards_is_refused_unless_a_new_run(work: Path) -> None:
    assert cli("tokenizer", *ENCODE, "--tokens", "tokens", cwd=work).returncode == 0
    train = ("--mixture", "c4only.toml", "--model", "debug", "--tokens", "tokens", "--no-progress")
    assert cli("train", *train, "--steps", "2", "--run", "run", cwd=work).returncode == 0
    meta_before = json.loads((work / "tokens" / "c4" / "meta.json").read_text())["splits"]["train"]
    (work / "ids.txt").write_text(read_ids_of(work / "corpus" / "c4" / "shard-00002.arrow")[0] + "\n")
    assert cli("pipeline", "remove", "c4", "--corpus", "corpus", "--ids", "ids.txt", "--tokens", "tokens",
               "--workers", "1", "--no-progress", cwd=work).returncode == 0
    meta_after = json.loads((work / "tokens" / "c4" / "meta.json").read_text())["splits"]["train"]
    assert meta_after["documents"] == meta_before["documents"] - 1

    resumed = cli("train", *train, "--steps", "4", "--run", "run", "--resume", cwd=work)
    assert resumed.returncode == 2 and resumed.stderr.count("\n") == 1
    assert (f"c4 had {meta_before['documents']:,} documents and {meta_before['tokens']:,} tokens, now "
            f"{meta_after['documents']:,} and {meta_after['tokens']:,}") in resumed.stderr
    assert "start a new run (--run NEW)" in resumed.stderr
    assert cli("train", *train, "--steps", "2", "--run", "run2", cwd=work).returncode == 0


def test_a_run_folder_being_written_is_refused_by_its_lock(work: Path) -> None:
    (work / "ids.txt").write_text(read_ids_of(work / "corpus" / "c4" / "shard-00000.arrow")[0] + "\n")
    manifest = (work / "corpus" / "c4" / "manifest.json").read_bytes()
    with folder_lock(work / "corpus" / "c4"):  # as `pipeline run` holds it
        result = cli("pipeline", "remove", "c4", "--corpus", "corpus", "--ids", "ids.txt", cwd=work)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"pipeline: error: corpus/c4: another run is writing here (pid ")
    assert (work / "corpus" / "c4" / "manifest.json").read_bytes() == manifest


def test_a_removal_killed_before_recording_is_finished_by_the_next_one(work: Path) -> None:
    corpus = work / "corpus" / "c4"
    first = read_ids_of(corpus / "shard-00000.arrow")[0]
    # What a removal killed after writing its journal leaves: new shards under temporary names.
    write_json_atomic(corpus / "_work" / JOURNAL, plan_removal(corpus, [first], work / "ids.txt"))
    # Nothing renamed yet, and the shards check out, but a removal is pending: verify says so.
    assert cli("pipeline", "verify", "c4", "--corpus", "corpus", cwd=work).returncode == 2
    (corpus / "shard-00002.arrow.removing").write_bytes(b"half")  # killed before its journal: never renamed
    (corpus / "notes.removing").write_text("the user's, of no shard's name")
    for mine in (corpus / "shard-mine.arrow.removing", corpus / "dropped" / "shard-mine.arrow.removing"):
        mine.write_text("the user's, of no numbered shard's name")
    (work / "none.txt").write_text("# nothing this time\n")
    assert cli("pipeline", "remove", "c4", "--corpus", "corpus", "--ids", "none.txt", cwd=work).returncode == 0
    assert first not in read_ids_of(corpus / "shard-00000.arrow")
    assert cli("pipeline", "verify", "c4", "--corpus", "corpus", cwd=work).returncode == 0
    logged = [json.loads(line)["removed"] for line in (corpus / "removals.jsonl").read_text().splitlines()]
    assert logged == [[first]]  # finishing it logs it; an ids file with nothing to remove adds nothing
    assert sorted(str(p.relative_to(corpus)) for p in corpus.rglob("*.removing")) == [
        "dropped/shard-mine.arrow.removing", "notes.removing", "shard-mine.arrow.removing"]
    assert (corpus / "notes.removing").read_text() == "the user's, of no shard's name"


def test_missing_ids_file_or_corpus_is_one_line(work: Path) -> None:
    result = cli("pipeline", "remove", "c4", "--corpus", "corpus", "--ids", "nope.txt", cwd=work)
    assert (result.returncode, result.stderr) == (2, "pipeline: error: nope.txt: ids file does not exist\n")
    (work / "ids.txt").write_text("x\n")
    result = cli("pipeline", "remove", "wikipedia", "--corpus", "corpus", "--ids", "ids.txt", cwd=work)
    assert result.returncode == 2 and result.stderr.startswith("pipeline: error: corpus: no finished wikipedia corpus")


def test_a_wrong_tokens_folder_is_refused_before_the_corpus_changes(work: Path) -> None:
    (work / "ids.txt").write_text(read_ids_of(work / "corpus" / "c4" / "shard-00000.arrow")[0] + "\n")
    manifest = (work / "corpus" / "c4" / "manifest.json").read_bytes()
    result = cli("pipeline", "remove", "c4", "--corpus", "corpus", "--ids", "ids.txt", "--tokens", "tok", cwd=work)
    assert (result.returncode, result.stderr) == (
        2, "pipeline: error: tok: no token shards of c4 here (no meta.json in tok/c4 or tok)\n")
    assert (work / "corpus" / "c4" / "manifest.json").read_bytes() == manifest
    assert not (work / "corpus" / "c4" / "removals.jsonl").exists()


# ---------------------------------------------------------------------------------------
# A removal killed midway, damaged bookkeeping, hostile ids files

# `python -c KILL_AT WHERE N pipeline-args...`: the CLI, SIGKILLed right after the Nth write of a
# JSON file by `pipeline remove` (WHERE json) or the Nth rename of a rewritten shard (WHERE replace).
KILL_AT = """
import os, signal, sys
import pipeline.commands.remove as remove
where, n = sys.argv[1], int(sys.argv[2])
count = [0]
def hit():
    count[0] += 1
    if count[0] == n:
        os.kill(os.getpid(), signal.SIGKILL)
if where == "json":
    real_write = remove.write_json_atomic
    def write(path, value):
        real_write(path, value)
        hit()
    remove.write_json_atomic = write
else:
    real_replace = os.replace
    def replace(a, b, *args, **kwargs):
        real_replace(a, b, *args, **kwargs)
        if str(a).endswith(".removing"):
            hit()
    remove.os.replace = replace
from pipeline.cli import main
main(sys.argv[3:])
"""
# Where a removal of one kept and one dropped document can be killed: after each of its two
# shard renames, and after each JSON file it writes (the journal, manifest.json, stats.json, the
# two task markers that recorded the shards, complete.json).
KILL_POINTS = [("replace", 1), ("replace", 2), *(("json", n) for n in range(1, 7))]


def killed_remove(work: Path, where: str, n: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", KILL_AT, where, str(n), "remove", "c4", "--corpus", "corpus", *args],
                          cwd=work, check=False, capture_output=True, text=True, env=subprocess_env(), timeout=300)


def corpus_state(corpus: Path) -> dict[str, bytes]:
    """Every file of a corpus folder, by name: what a refused command must leave as it was."""
    return {str(p.relative_to(corpus)): p.read_bytes() for p in sorted(corpus.rglob("*")) if p.is_file()
            and p.name != ".lock"}


def assert_removed_once(corpus: Path, doomed: list[str], before: dict[str, list[tuple]]) -> None:
    """The shards hold every document of `before` but `doomed`, and manifest.json, stats.json and
    removals.jsonl say so (documents before == kept + removed)."""
    for name, earlier in before.items():
        assert rows(corpus / name) == [r for r in earlier if r[0] not in doomed], name
    manifest = json.loads((corpus / "manifest.json").read_text())
    for entry in manifest["shards"]:
        data = (corpus / entry["file"]).read_bytes()
        assert (entry["sha256"], entry["bytes"]) == (hashlib.sha256(data).hexdigest(), len(data))
    kept = sum(len(read_ids_of(corpus / e["file"])) for e in manifest["shards"])
    kept_before = sum(len(r) for name, r in before.items() if "/" not in name)
    removed_kept = sum(i in {r[0] for name, rs in before.items() if "/" not in name for r in rs} for i in doomed)
    assert manifest["documents"] == kept == kept_before - removed_kept
    stats = json.loads((corpus / "stats.json").read_text())
    assert (stats["documents_kept"], stats["removed"]) == (kept, removed_kept)
    (line,) = (corpus / "removals.jsonl").read_text().splitlines()
    assert (json.loads(line)["removed"], json.loads(line)["not_found"]) == (doomed, [])
    assert not (corpus / "_work" / JOURNAL).exists()
    assert not list(corpus.rglob("*.removing"))


def rebuilt(work: Path) -> tuple[Path, dict[str, list[tuple]], list[str]]:
    """The copy's corpus rebuilt in place (its plan names this copy's inputs, so that `pipeline run`
    can be rerun), its shards' rows, and two ids to remove: one kept, one dropped."""
    assert cli("pipeline", *RUN, "--restart", cwd=work).returncode == 0
    corpus = work / "corpus" / "c4"
    names = ["shard-00000.arrow", "shard-00001.arrow", "shard-00002.arrow", "dropped/shard-00000.arrow"]
    before = {name: rows(corpus / name) for name in names}
    doomed = [before["shard-00001.arrow"][0][0], before["dropped/shard-00000.arrow"][1][0]]
    (work / "ids.txt").write_text("".join(f"{i}\n" for i in doomed))
    return corpus, before, doomed


@pytest.mark.parametrize("where,n", KILL_POINTS)
def test_a_removal_killed_anywhere_is_finished_by_a_run_or_a_remove(work: Path, where: str, n: int) -> None:
    corpus, before, doomed = rebuilt(work)
    assert killed_remove(work, where, n, "--ids", "ids.txt").returncode == -9
    assert (corpus / "_work" / JOURNAL).exists()
    copy = work.parent / "copy"
    shutil.copytree(work, copy, symlinks=True)

    # `pipeline run` finishes it before it judges its shards: nothing is run again, nothing comes back.
    rerun = cli("pipeline", *RUN, cwd=work)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.splitlines()[0] == (
        "c4: finished a `pipeline remove` killed midway: removed 1 document(s) from 1 shard(s) of corpus/c4, and 1 "
        f"from its dropped/ shards; {sum(len(r) for n, r in before.items() if '/' not in n) - 1} documents left "
        "(logged in corpus/c4/removals.jsonl)")
    assert "(already complete)" in rerun.stdout and "running its task again" not in rerun.stderr
    assert_removed_once(corpus, doomed, before)
    assert cli("pipeline", "verify", "c4", "--corpus", "corpus", cwd=work).returncode == 0

    # So does `pipeline remove` rerun with the same ids: it says what the finished removal removed.
    shutil.rmtree(work)
    copy.rename(work)  # where its plan's inputs are
    again = cli("pipeline", "remove", "c4", "--corpus", "corpus", "--ids", "ids.txt", cwd=work)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        f"c4: finished a `pipeline remove` killed midway: removed 1 document(s) from 1 shard(s) of corpus/c4, and 1 "
        f"from its dropped/ shards; {sum(len(r) for n, r in before.items() if '/' not in n) - 1} documents left "
        "(logged in corpus/c4/removals.jsonl)"]
    assert_removed_once(corpus, doomed, before)
    rerun = cli("pipeline", *RUN, cwd=work)
    assert rerun.returncode == 0 and "(already complete)" in rerun.stdout, rerun.stderr


def test_a_journal_is_never_replayed_onto_shards_it_was_not_written_for(work: Path) -> None:
    corpus, before, doomed = rebuilt(work)
    original = (corpus / "shard-00001.arrow").read_bytes()
    assert killed_remove(work, "json", 2, "--ids", "ids.txt").returncode == -9  # after manifest.json
    # What a rebuild by an older herd (that did not finish the removal first) leaves: the shard
    # as the run writes it, the removal's journal still there.
    (corpus / "shard-00001.arrow").write_bytes(original)
    state = corpus_state(corpus)
    (work / "more.txt").write_text(before["shard-00000.arrow"][0][0] + "\n")
    journal = corpus / "_work" / JOURNAL
    expected = (f"pipeline: error: {journal.relative_to(work)}: a `pipeline remove` killed midway, written for other "
                "shards (shard-00001.arrow is neither the shard it rewrote nor what it rewrote it to: rebuilt or "
                "replaced since), cannot be finished; delete it, then run `pipeline remove` again with the ids it "
                "lists under log.removed\n")
    for command in [("remove", "c4", "--corpus", "corpus", "--ids", "more.txt"), RUN]:
        result = cli("pipeline", *command, cwd=work)
        assert (result.returncode, result.stderr) == (2, expected)
        assert corpus_state(corpus) == state


def test_stats_says_a_removal_is_pending(work: Path) -> None:
    corpus, before, doomed = rebuilt(work)
    assert killed_remove(work, "json", 2, "--ids", "ids.txt").returncode == -9
    result = cli("pipeline", "stats", "c4", "--corpus", "corpus", cwd=work)
    assert result.returncode == 0
    assert result.stderr == (
        f"warning: corpus/c4/_work/{JOURNAL}: a `pipeline remove` was killed midway (2 document(s) of 2 shard(s)) and "
        "is not recorded everywhere yet; rerun `pipeline remove` (any ids file) or `pipeline run` to finish it\n")
    # Its shards check out, yet stats and the log disagree with them until it is finished: not ok.
    verified = cli("pipeline", "verify", "c4", "--corpus", "corpus", cwd=work)
    assert verified.returncode == 2
    assert (f"corpus/c4/_work/{JOURNAL}: a `pipeline remove` was killed midway (2 document(s) of 2 shard(s))"
            in verified.stdout + verified.stderr)


@pytest.mark.parametrize("damage", ["stats.json garbage", "stats.json {}", "journal rewrites 5", "task marker",
                                    "dropped shard outside"])
def test_damaged_bookkeeping_is_one_line_before_anything_is_rewritten(work: Path, damage: str) -> None:
    corpus = work / "corpus" / "c4"
    (work / "ids.txt").write_text(read_ids_of(corpus / "shard-00000.arrow")[0] + "\n")
    manifest = json.loads((corpus / "manifest.json").read_text())
    path, expected = {
        "stats.json garbage": (corpus / "stats.json", "corpus/c4/stats.json: damaged (not JSON: cut or overwritten)"),
        "stats.json {}": (corpus / "stats.json", "corpus/c4/stats.json: damaged (no documents_kept count)"),
        "journal rewrites 5": (corpus / "_work" / JOURNAL,
                               f"corpus/c4/_work/{JOURNAL}: damaged removal journal (rewrites is not a list of "
                               "shard rewrites)"),
        "task marker": (corpus / "_work" / "pass0" / "task-00001.done.json",
                        "corpus/c4/_work/pass0/task-00001.done.json: damaged (not JSON: cut or overwritten)"),
        "dropped shard outside": (corpus / "manifest.json",
                                  "corpus/c4/manifest.json: damaged corpus manifest (dropped shard '../../x.arrow' "
                                  "is not dropped/<file name>)"),
    }[damage]
    path.write_text({"stats.json garbage": "garbage\n", "stats.json {}": "{}\n",
                     "journal rewrites 5": '{"rewrites": 5}', "task marker": '{"parts": [',
                     "dropped shard outside": json.dumps(dict(manifest, dropped_shards=["../../x.arrow"]))}[damage])
    state = corpus_state(corpus)
    result = cli("pipeline", "remove", "c4", "--corpus", "corpus", "--ids", "ids.txt", cwd=work)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"pipeline: error: {expected}"), result.stderr
    assert corpus_state(corpus) == state  # no shard, manifest, stats or marker rewritten; no .removing left


def test_an_ids_file_that_is_no_regular_file_is_one_line_and_a_pipe_still_works(work: Path) -> None:
    # A named FIFO with no writer would block the open for ever (hence the short timeout), a device
    # never ends: both refused unopened, nothing written.
    os.mkfifo(work / "fifo")
    corpus = work / "corpus" / "c4"
    state = corpus_state(corpus)
    for ids, line in [("fifo", "fifo: a FIFO, not an ids file"), ("/dev/zero", "/dev/zero: a device, not an ids file"),
                      ("corpus", "corpus: a folder, not an ids file")]:
        result = subprocess.run([script("pipeline"), "remove", "c4", "--corpus", "corpus", "--ids", ids], cwd=work,
                                check=False, capture_output=True, text=True, env=subprocess_env(), timeout=30)
        assert (result.returncode, result.stderr) == (2, f"pipeline: error: {line}\n")
    assert corpus_state(corpus) == state
    doomed = read_ids_of(work / "corpus" / "c4" / "shard-00000.arrow")[0]
    (work / "ids.txt").write_text(f"{doomed}\nother\n")
    piped = subprocess.run(["bash", "-c", f"{script('pipeline')} remove c4 --corpus corpus --ids <(grep -v other "
                            "ids.txt)"], cwd=work, check=False, capture_output=True, text=True, env=subprocess_env(),
                           timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert doomed not in read_ids_of(work / "corpus" / "c4" / "shard-00000.arrow")


@pytest.mark.parametrize("ids", ["/dev/stdin", "empty.txt", "comments.txt"])
def test_an_ids_file_of_no_id_removes_and_writes_nothing(work: Path, ids: str) -> None:
    # /dev/stdin is an empty pipe here, as `--ids <(grep ...)` gives when grep matched nothing.
    (work / "empty.txt").write_text("")
    (work / "comments.txt").write_text("# takedown 2026-12: nothing this time\n\n")
    corpus = work / "corpus" / "c4"
    state = corpus_state(corpus)
    result = subprocess.run([script("pipeline"), "remove", "c4", "--corpus", "corpus", "--ids", ids], cwd=work,
                            input="", check=False, capture_output=True, text=True, env=subprocess_env(), timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, f"c4: {ids} lists no id; nothing to remove (nothing written)\n", "")
    assert corpus_state(corpus) == state and not (corpus / "removals.jsonl").exists()


def test_ids_file_bounds(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"a\n" + b"x" * 65536 + b"\n" + b"y" * 65537 + b"\n")
    with pytest.raises(UserError, match=r"^.*ids.txt: line 3 is longer than 65,536 bytes \(no id is\); one id a line$"):
        read_ids(ids)
    ids.write_bytes(b"\xef\xbb\xbfa\nb\r\nc\xff\n")
    with pytest.raises(UserError, match=r"ids.txt: not UTF-8 text \(invalid start byte at byte 9\)$"):
        read_ids(ids)
    ids.write_text("a\nb\na\nc\n")
    assert read_ids(ids, max_ids=3) == ["a", "b", "c"]
    with pytest.raises(UserError, match=r"ids.txt: more than 2 ids; split the list and remove each part in turn$"):
        read_ids(ids, max_ids=2)
    ids.write_bytes(b"\xef\xbb\xbfa\n")
    assert read_ids(ids) == ["a"]


def test_stats_written_again_from_the_records_after_a_removal_count_the_removed(work: Path) -> None:
    """stats.json damaged after a removal: the run writes it again from its task markers, which
    `pipeline remove` updated, so it says what remove said (it said 72 kept of 71 rows, none removed)."""
    corpus, before, doomed = rebuilt(work)
    assert cli("pipeline", "remove", "c4", "--corpus", "corpus", "--ids", "ids.txt", cwd=work).returncode == 0
    written = (corpus / "stats.json").read_bytes()
    stats = json.loads(written)
    kept = sum(len(rows(corpus / f"shard-0000{n}.arrow")) for n in range(3))
    assert (stats["documents_kept"], stats["removed"]) == (kept, 1)  # the dropped shard's id counts in no kept total
    (corpus / "stats.json").write_text("garbage\n")
    rerun = cli("pipeline", *RUN, cwd=work)
    assert rerun.returncode == 0, rerun.stderr
    assert (corpus / "stats.json").read_bytes() == written
    assert cli("pipeline", "verify", "c4", "--corpus", "corpus", cwd=work).returncode == 0


def test_a_removal_without_tokens_warns_that_the_token_shards_beside_it_are_stale(work: Path) -> None:
    assert cli("tokenizer", *ENCODE, "--tokens", "tokens", cwd=work).returncode == 0
    corpus = work / "corpus" / "c4"
    (work / "ids.txt").write_text(read_ids_of(corpus / "shard-00000.arrow")[0] + "\n")
    removed = cli("pipeline", "remove", "c4", "--corpus", "corpus", "--ids", "ids.txt", cwd=work)
    assert removed.returncode == 0, removed.stderr
    assert removed.stderr == (
        "warning: tokens/c4: its token shards were encoded before this removal and still hold the removed documents; "
        "rerun with --tokens tokens, or `tokenizer encode`, before training on them\n")
    (work / "more.txt").write_text(read_ids_of(corpus / "shard-00001.arrow")[0] + "\n")
    with_tokens = cli("pipeline", "remove", "c4", "--corpus", "corpus", "--ids", "more.txt", "--tokens", "tokens",
                      "--model", "tok/c4only.model", "--workers", "1", "--no-progress", cwd=work)
    assert with_tokens.returncode == 0, with_tokens.stderr
    assert "warning" not in with_tokens.stderr
