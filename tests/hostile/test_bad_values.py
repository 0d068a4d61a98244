"""Values that ended whole runs, through the real `pipeline run`: Stack Exchange numbers past
what SQLite holds, a GitHub `license` that is not a name, JSON nested 100,000 deep, post HTML
nested past lxml's depth limit, and a Stack Exchange run killed with SIGKILL. Each is skipped
and counted with its reason (or cleaned up), and the run goes on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sources.samples.stackexchange import posts_xml
from tests.conftest import script, subprocess_env
from tests.hostile.helpers import assert_balanced, cli, json_line, write_lines
from tests.hostile.sources_data import C4_PAGE, CODE, c4_lines, github_row

pytestmark = pytest.mark.slow  # runs the source end to end
BIG = 1 << 63  # one past the largest int64
DEEP = 100_000


def _stats(out: Path, source: str) -> dict:
    stats = json.loads((out / source / "stats.json").read_text())
    assert_balanced(stats)
    return stats


def _question(qid: int | str, score: int | str = 1, body: str = "<p>How?</p>") -> dict:
    return {"Id": qid, "PostTypeId": 1, "Score": score, "Title": f"Question {qid}", "Body": body}


def _answer(aid: int | str, parent: int | str, score: int | str = 1, body: str = "<p>Like so.</p>") -> dict:
    return {"Id": aid, "PostTypeId": 2, "ParentId": parent, "Score": score, "Body": body}


def test_stackexchange_numbers_past_int64_and_html_past_lxml_depth_are_counted(tmp_path: Path) -> None:
    deep = "<div>" * 300 + "lost" + "</div>" * 300
    rows = [
        _question(1), _answer(2, 1),
        _question(BIG), _question(3, score=BIG), _question(4, score=-BIG - 1),
        _answer(5, BIG), _answer(BIG + 7, 1), _answer(6, 1, score=BIG),
        _question(8, body=f"<p>before</p>{deep}"), _answer(9, 1, body=deep), _answer(10, 8),
    ]
    (tmp_path / "raw/s.example").mkdir(parents=True)
    (tmp_path / "raw/s.example/Posts.xml").write_bytes(posts_xml(rows))
    done = cli("stackexchange", tmp_path / "raw", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    read, join = _stats(tmp_path / "out", "stackexchange")["stages"][:2]
    assert read["dropped"] == {"number_out_of_range": 6, "html_too_deep": 1, "answer_html_too_deep": 1}
    assert read["out"] == 3  # question 1, its answer 2, and answer 10 of the too deep question 8
    assert join["out"] == 1 and join["dropped"] == {"joined_to_question": 1, "answer_without_question": 1}


@pytest.mark.parametrize("license_value", [["mit", "apache-2.0"], 3, {"key": "mit"}])
def test_github_license_that_is_not_a_name_is_counted(license_value: object, tmp_path: Path) -> None:
    bad = json.dumps({"repo_name": "o/r", "path": "b.py", "content": CODE, "license": license_value}).encode()
    write_lines(tmp_path / "raw/rows.jsonl", [github_row("a.py"), bad])
    done = cli("github", tmp_path / "raw", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    stats = _stats(tmp_path / "out", "github")
    assert stats["stages"][0]["dropped"] == {"malformed_license": 1}
    assert stats["documents_kept"] == 1


def _deep_lines(key: str) -> list[bytes]:
    nested = "[" * DEEP + "]" * DEEP
    return [nested.encode(), f'{{"{key}": {nested}}}'.encode()]


DEEP_INPUTS = {
    "c4": lambda raw: write_lines(raw / "en/c4-train.00000-of-00001.json.gz", c4_lines(1) + _deep_lines("text")),
    "jsonl": lambda raw: write_lines(raw / "a.jsonl", [json_line(C4_PAGE)] + _deep_lines("text")),
    "books": lambda raw: write_lines(raw / "books3/a.jsonl", [json_line(C4_PAGE * 20)] + _deep_lines("text")),
    "github": lambda raw: write_lines(raw / "rows.jsonl", [github_row("a.py")] + _deep_lines("license")),
}


@pytest.mark.parametrize("source", sorted(DEEP_INPUTS))
def test_json_nested_100000_deep_is_counted(source: str, tmp_path: Path) -> None:
    DEEP_INPUTS[source](tmp_path / "raw")
    done = cli(source, tmp_path / "raw", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    read = _stats(tmp_path / "out", source)["stages"][0]
    assert read["dropped"] == {"json_too_deep": 2}
    assert read["out"] == 1


LONG_NUMBER = "1" * 5000  # valid JSON; past Python's 4,300-digit limit for int("...")
LONG_NUMBER_INPUTS = {  # the hostile line first: the good line after it must still be read
    "c4": lambda raw: write_lines(raw / "en/c4-train.00000-of-00001.json.gz",
                                  [f'{{"text": "x", "n": {LONG_NUMBER}}}'.encode()] + c4_lines(1)),
    "jsonl": lambda raw: write_lines(raw / "a.jsonl", [f'{{"n": {LONG_NUMBER}}}'.encode(), json_line(C4_PAGE)]),
    "books": lambda raw: write_lines(raw / "books3/a.jsonl", [LONG_NUMBER.encode(), json_line(C4_PAGE * 20)]),
    "github": lambda raw: write_lines(raw / "rows.jsonl", [f'{{"license": {LONG_NUMBER}}}'.encode(), github_row("a.py")]),
}


@pytest.mark.parametrize("source", sorted(LONG_NUMBER_INPUTS))
def test_json_integer_of_5000_digits_is_counted_and_the_file_goes_on(source: str, tmp_path: Path) -> None:
    LONG_NUMBER_INPUTS[source](tmp_path / "raw")
    done = cli(source, tmp_path / "raw", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    stats = _stats(tmp_path / "out", source)
    assert stats["files"]["failed"] == []
    assert stats["stages"][0]["dropped"] == {"json_number_too_long": 1}
    assert stats["stages"][0]["out"] == 1


def test_a_sigkilled_stackexchange_run_leaves_its_temporaries_under_the_output(tmp_path: Path) -> None:
    rows = []
    for q in range(1, 40_001):  # big enough that reading it takes a moment
        rows += [_question(2 * q - 1, body=f"<p>Question body {q} " + "word " * 20 + "</p>"), _answer(2 * q, 2 * q - 1)]
    (tmp_path / "raw/big.example").mkdir(parents=True)
    (tmp_path / "raw/big.example/Posts.xml").write_bytes(posts_xml(rows))
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    env = dict(subprocess_env(), TMPDIR=str(system_tmp))
    out = tmp_path / "out"
    command = [script("pipeline"), "run", "stackexchange", "--input", str(tmp_path / "raw"), "--corpus", str(out),
               "--workers", "1", "--no-progress"]
    run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    leftovers: list[Path] = []
    deadline = time.monotonic() + 60
    try:
        while not leftovers and run.poll() is None and time.monotonic() < deadline:
            leftovers = list(out.glob("stackexchange/_work/pass*/task-*/tmp/herd-stackexchange-*"))
            time.sleep(0.01)
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    assert leftovers, "the run ended before its temporary folder was seen"
    assert leftovers[0].exists()  # the killed run's temporary folder: under the run's output ...
    assert os.listdir(system_tmp) == []  # ... and nothing in $TMPDIR
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert not leftovers[0].exists() and not list(out.rglob("herd-stackexchange-*"))
    assert os.listdir(system_tmp) == []
    assert _stats(out, "stackexchange")["documents_kept"] == 40_000
