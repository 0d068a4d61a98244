"""A slow start is not a stall, through the real CLI: a reader that prepares for longer than
--document-timeout before its first document while sending heartbeats keeps every document
(Stack Exchange loading a large Posts.xml, and a test source that prepares for six timeouts),
while a preparation that stops sending them is given up with its reason, and named again at the
very end of the run's output (after every source's report, with `pipeline run all`); the exit
status is 0 as for any input that fails beside usable ones, and 2 when it was the only input."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.engine.shards import read_corpus
import py7zr

from tests.conftest import REPO, script, subprocess_env
from tests.hostile.helpers import assert_balanced, cli, one_error, truncate
from tests.hostile.sources_data import write_c4

pytestmark = pytest.mark.slow  # every test runs the CLI end to end

TIMEOUT_S = 0.5  # --document-timeout: far below each reader's preparation
GIVEN_UP = ("timeout before its first record (its reader made no progress for --document-timeout seconds, "
            "twice; the whole file is skipped)")


def write_jsonl(path: Path, count: int) -> set[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = [f"{path.stem}:{i}" for i in range(count)]
    path.write_text("".join(json.dumps({"id": i, "text": f"document {i}"}) + "\n" for i in ids))
    return set(ids)


def slow_start_run(raw: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """`pipeline run slowstart` with the test source of tests/hostile/slow_readers.py as a plugin."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.hostile.slow_readers", "run", "slowstart", "--input", str(raw),
         "--corpus", str(out), "--no-progress", "--document-timeout", str(TIMEOUT_S), *extra],
        cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def run_stats(out: Path, source: str) -> dict:
    stats = json.loads((out / source / "stats.json").read_text())
    assert_balanced(stats)
    return stats


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_preparation_longer_than_the_timeout_that_sends_heartbeats_keeps_every_document(
        tmp_path: Path, workers: str) -> None:
    expected = write_jsonl(tmp_path / "raw" / "slow.jsonl", 600) | write_jsonl(tmp_path / "raw" / "plain.jsonl", 300)

    done = slow_start_run(tmp_path / "raw", tmp_path / "out", "--workers", workers)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no worker lost, nothing given up
    stats = run_stats(tmp_path / "out", "slowstart")
    assert stats["files"]["failed"] == [] and stats["documents_failed"] == []
    assert {d.id for d in read_corpus(tmp_path / "out" / "slowstart")} == expected
    timings = json.loads((tmp_path / "out" / "slowstart" / "timings.json").read_text())
    assert timings["workers_lost"] == []


def test_a_preparation_that_stops_sending_heartbeats_is_given_up_with_its_reason_and_named_last(
        tmp_path: Path) -> None:
    hang = tmp_path / "raw" / "hang.jsonl"
    write_jsonl(hang, 600)
    expected = write_jsonl(tmp_path / "raw" / "plain.jsonl", 300)

    done = slow_start_run(tmp_path / "raw", tmp_path / "out")

    assert done.returncode == 0, done.stderr  # as for any input that fails beside usable ones
    stats = run_stats(tmp_path / "out", "slowstart")
    assert stats["files"]["failed"] == [{"path": str(hang), "problem": GIVEN_UP}]
    assert {d.id for d in read_corpus(tmp_path / "out" / "slowstart")} == expected
    lines = done.stderr.splitlines()
    # Each kill names the reader's last heartbeat; the preparation beat for PREPARE_S first.
    kills = [line for line in lines if line.startswith(f"warning: a worker made no progress for {TIMEOUT_S:g} s")]
    assert len(kills) == 2, done.stderr
    assert all("(its reader's last heartbeat: prepared " in k and " steps of hang.jsonl) on task 0" in k
               for k in kills), kills
    # The end of the output says it again, whatever came before.
    assert lines[-2:] == [
        "warning: 1 input was given up or cut short; what it did not yield is not in the corpus "
        "(stats.json: files.failed):",
        f"  unreadable input: {hang}: {GIVEN_UP}",
    ]


def test_a_preparation_that_stops_on_the_only_input_is_one_error_and_exit_2(tmp_path: Path) -> None:
    hang = tmp_path / "raw" / "hang.jsonl"
    write_jsonl(hang, 10)

    done = slow_start_run(tmp_path / "raw", tmp_path / "out")

    # Nothing usable at all is an error, as for a source whose every input is unreadable.
    assert one_error_last(done) == f"{hang}: {GIVEN_UP} (no input of slowstart was usable)"
    assert done.stdout == ""


def one_error_last(done: subprocess.CompletedProcess) -> str:
    """Exit 2, warnings, then the one error line last; returns it without its prefix."""
    assert done.returncode == 2, done.stderr
    *warnings, error = done.stderr.strip().splitlines()
    assert all(line.startswith("warning: ") for line in warnings), warnings
    return one_error(subprocess.CompletedProcess(done.args, 2, "", error + "\n"), "pipeline")


# Stack Exchange ------------------------------------------------------------------------------

QUESTIONS = 2000
ORPHANS = 320_000  # answers whose question is gone (deleted): loaded and indexed, then skipped
ORPHAN_BODY = "&lt;p&gt;" + "an answer to a deleted question " * 15 + "&lt;/p&gt;"


def write_large_posts_xml(path: Path) -> set[int]:
    """A Posts.xml of about 200 MB: QUESTIONS questions with an answer each, then ORPHANS answers
    whose question is not in the file. Unpacking it from a .7z takes about a second. The question ids."""
    path.parent.mkdir(parents=True)
    with path.open("w") as f:
        f.write('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
        for q in range(QUESTIONS):
            f.write(f'  <row Id="{2 * q + 1}" PostTypeId="1" Score="{q % 5}" Title="Question {q}" '
                    f'Body="&lt;p&gt;Why does {q} happen?&lt;/p&gt;" />\n'
                    f'  <row Id="{2 * q + 2}" PostTypeId="2" ParentId="{2 * q + 1}" Score="1" '
                    f'Body="&lt;p&gt;Because of {q}.&lt;/p&gt;" />\n')
        for a in range(ORPHANS):
            f.write(f'  <row Id="{2 * QUESTIONS + 1 + a}" PostTypeId="2" ParentId="{10 ** 9 + a}" Score="0" '
                    f'Body="{ORPHAN_BODY}" />\n')
        f.write("</posts>\n")
    return {2 * q + 1 for q in range(QUESTIONS)}


def test_stackexchange_whose_7z_unpacks_for_longer_than_the_timeout_keeps_every_question(
        tmp_path: Path) -> None:
    site = "big.stackexchange.com"
    posts = tmp_path / "stage" / "Posts.xml"
    questions = write_large_posts_xml(posts)
    (tmp_path / "raw").mkdir()
    # Stored, not compressed: quick to write, and never over the bomb ratio.
    with py7zr.SevenZipFile(tmp_path / "raw" / f"{site}.7z", "w", filters=[{"id": py7zr.FILTER_COPY}]) as archive:
        archive.write(posts, "Posts.xml")
    # Unpacking (before the site's first record) takes about a timeout or more: it lives on its
    # heartbeats. A plain Posts.xml no longer starts slowly: its records stream as it is parsed.

    done = cli("stackexchange", tmp_path / "raw", tmp_path / "out", "--document-timeout", str(TIMEOUT_S))

    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr, done.stderr
    stats = run_stats(tmp_path / "out", "stackexchange")
    assert stats["files"]["failed"] == [] and stats["documents_failed"] == []
    assert stats["stages"][1]["dropped"] == {"answer_without_question": ORPHANS, "joined_to_question": QUESTIONS}
    kept = list(read_corpus(tmp_path / "out" / "stackexchange"))
    assert {d.id for d in kept} == {f"{site}/{q}" for q in questions}
    assert all(d.text.endswith(f"A:\n\nBecause of {(d.meta['question_id'] - 1) // 2}.") for d in kept)


def test_run_all_names_every_input_given_up_by_any_source_at_the_very_end(tmp_path: Path) -> None:
    raw = tmp_path / "data" / "raw"
    write_c4(raw / "c4" / "good.json.gz", 3)
    cut = truncate(write_c4(raw / "c4" / "cut.json.gz", 50))
    (raw / "stackexchange" / "good.stackexchange.com").mkdir(parents=True)
    (raw / "stackexchange" / "good.stackexchange.com" / "Posts.xml").write_bytes(
        b'<posts><row Id="1" PostTypeId="1" Score="1" Title="Why?" Body="&lt;p&gt;Because.&lt;/p&gt;" /></posts>')
    (raw / "stackexchange" / "broken.stackexchange.com").mkdir()
    broken = raw / "stackexchange" / "broken.stackexchange.com" / "Posts.xml"
    broken.write_bytes(b'<posts><row Id="1" PostTypeId="1" Body="never closed')

    done = subprocess.run([script("pipeline"), "run", "all", "--workers", "1", "--no-progress"], cwd=tmp_path,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert [line.split(":")[0] for line in done.stdout.splitlines() if ": kept " in line] == ["c4", "stackexchange"]
    # Each source's stats.json lists its own; the end of the output lists them all, in source order.
    failed = [(f["path"], f["problem"]) for source in ("c4", "stackexchange")
              for f in run_stats(tmp_path / "data" / "corpus", source)["files"]["failed"]]
    assert [path for path, _ in failed] == [str(cut), str(broken)]
    assert failed[0][1].startswith("truncated or corrupt gzip") and failed[1][1].startswith("malformed XML")
    assert done.stderr.splitlines()[-3:] == [
        "warning: 2 inputs were given up or cut short; what they did not yield is not in the corpus "
        "(stats.json: files.failed):",
        *(f"  unreadable input: {path}: {problem}" for path, problem in failed),
    ]
