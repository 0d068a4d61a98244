"""`pipeline stats` and the run report: the warning when one reason drops more than half of a source's documents."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.commands.stats import drop_warnings
from tests.conftest import script, subprocess_env
from tests.hostile.helpers import cli, one_error, run_script


def test_warns_only_past_half_for_one_reason() -> None:
    stats = {"source": "books", "documents_read": 12, "stages": [
        {"name": "read", "in": 12, "out": 12, "dropped": {}},
        {"name": "strip_gutenberg", "in": 12, "out": 5, "dropped": {"empty_after_stripping": 7}},
        {"name": "near_dedup", "in": 5, "out": 2, "dropped": {"near_duplicate": 3}},
    ]}
    assert drop_warnings(stats) == ["warning: books: strip_gutenberg dropped 7 of 12 documents as empty_after_stripping"]
    stats["stages"][1]["dropped"] = {"empty_after_stripping": 6}
    assert drop_warnings(stats) == []


def test_answers_joined_into_their_questions_are_no_loss_to_warn_of(tmp_path: Path) -> None:
    """Most rows of a Stack Exchange dump are answers, each dropped as a record of its own once
    its text is in its question's document: the run says nothing of it, and still warns of a
    real loss past half."""
    env = subprocess_env()
    run = lambda *args: subprocess.run([script("pipeline"), *args], cwd=tmp_path, env=env,  # noqa: E731
                                       capture_output=True, text=True, timeout=300)
    assert run("sample", "--sources", "stackexchange").returncode == 0
    done = run("run", "stackexchange", "--no-progress")
    assert done.returncode == 0, done.stderr
    stats = json.loads((tmp_path / "data" / "corpus" / "stackexchange" / "stats.json").read_text())
    join = next(st for st in stats["stages"] if st["name"] == "join_answers")
    assert 2 * join["dropped"]["joined_to_question"] > stats["documents_read"]  # the case in question
    assert join["merged_reasons"] == ["joined_to_question"]
    warned = lambda out: [line for line in out.splitlines() if "warning" in line and "joined_to_question" in line]  # noqa: E731
    assert warned(done.stdout + done.stderr) == [] and "joined_to_question: " in done.stdout  # counted, not warned of
    shown = run("stats", "stackexchange")
    assert warned(shown.stdout + shown.stderr) == [] and "joined_to_question: " in shown.stdout
    join["dropped"]["answer_without_question"] = stats["documents_read"]  # a loss still warns
    assert drop_warnings(stats) == [f"warning: stackexchange: join_answers dropped {stats['documents_read']:,} of "
                                    f"{stats['documents_read']:,} documents as answer_without_question"]


@pytest.mark.slow
def test_run_that_strips_every_book_says_so(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "gutenberg"
    raw.mkdir(parents=True)
    for i in range(3):  # a header and a footer with nothing between them
        (raw / f"pg{i}.txt").write_text("*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n")
    done = cli("books", tmp_path / "raw", tmp_path / "out")
    assert done.returncode == 0
    assert "warning: books: strip_gutenberg dropped 3 of 3 documents as empty_after_stripping" in done.stdout
    command = [script("pipeline"), "stats", "--corpus", str(tmp_path / "out")]
    shown = subprocess.run(command, check=True, capture_output=True, text=True, env=subprocess_env())
    assert "warning: books: strip_gutenberg dropped 3 of 3 documents as empty_after_stripping" in shown.stdout


def test_no_finished_run_is_one_line_naming_the_folder_and_the_command(tmp_path: Path, capsys) -> None:
    """`pipeline stats`, `pipeline stats SOURCE` and `pipeline report` find finished runs the same
    way: a folder without stats.json is one line naming it and the run to make, exit 2."""
    (tmp_path / "c4").mkdir()  # a run that never finished
    for argv, line in [
        (["stats", "--corpus", str(tmp_path)], f"{tmp_path}: no finished runs (no */stats.json)"),
        (["stats", "c4", "--corpus", str(tmp_path)],
         f"{tmp_path / 'c4'}: no finished c4 corpus (no stats.json); run `pipeline run c4` first"),
        (["report", "c4", "--corpus", str(tmp_path), "--out", str(tmp_path / "r.html")],
         f"{tmp_path / 'c4'}: no finished c4 corpus (no stats.json); run `pipeline run c4` first"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert capsys.readouterr().err == f"pipeline: error: {line}\n"


def test_a_remote_corpus_is_refused_in_one_line(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """An s3:// --corpus was read as the relative folder s3:/corpus/x and reported missing, though
    it holds a published run: stats reads local corpora only, and says so."""
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="corpus")
    s3.put_object(Bucket="corpus", Key="x/c4/stats.json", Body=b'{"source": "c4", "stages": []}')
    s3.put_object(Bucket="corpus", Key="x/c4/manifest.json", Body=b'{"shards": []}')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["stats", "c4", "--corpus", "s3://corpus/x"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "pipeline: error: pipeline stats reads local corpora only; s3://corpus/x is remote"]
    assert list(tmp_path.iterdir()) == []


def test_a_fifo_in_a_finished_corpus_is_one_line_for_every_reader_never_a_hang(tmp_path: Path) -> None:
    # A FIFO has no writer: a command that opened it to read would wait for ever (each under a timeout).
    raw = tmp_path / "raw" / "gutenberg"
    raw.mkdir(parents=True)
    (raw / "pg1.txt").write_text("*** START OF THE PROJECT GUTENBERG EBOOK X ***\nA book.\n"
                                 "*** END OF THE PROJECT GUTENBERG EBOOK X ***\n")
    assert cli("books", tmp_path / "raw", tmp_path / "out").returncode == 0
    folder = tmp_path / "out" / "books"
    for planted in ("stats.json", "manifest.json"):
        kept = (folder / planted).read_bytes()
        (folder / planted).unlink()
        os.mkfifo(folder / planted)
        for args in (["stats", "--corpus", "out"], ["verify", "--corpus", "out", "books"],
                     ["run", "books", "--input", "raw", "--corpus", "out", "--no-progress"]):
            done = run_script("pipeline", *args, cwd=tmp_path, timeout=30)
            line = one_error(done, "pipeline")
            assert line in (f"out/books/{planted}: a FIFO, not a file a command wrote here; remove it and rerun",
                            f"out/books/{planted}: a FIFO, not a corpus manifest"), (args, line)
        (folder / planted).unlink()
        (folder / planted).write_bytes(kept)
