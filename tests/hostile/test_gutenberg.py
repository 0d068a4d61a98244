"""Gutenberg files made of blank-line runs, long lines of spaces (the boilerplate patterns were
quadratic on both) and CRLF: the body comes out exact and the run balances. Timings:
bench/hostile_text.py."""

from __future__ import annotations

import time
from pathlib import Path

from pipeline.text.gutenberg import strip_boilerplate
from sources.books import Books, BooksConfig
from tests.hostile.helpers import run

BODY = "It was a quiet morning in the valley."
START = "*** START OF THE PROJECT GUTENBERG EBOOK X ***"
END = "*** END OF THE PROJECT GUTENBERG EBOOK X ***"


def test_blank_line_runs_and_crlf(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "gutenberg"
    raw.mkdir(parents=True)
    runs = "\n" * 20_000
    (raw / "blank.txt").write_text(runs + START + runs + BODY + runs + END + runs)
    (raw / "spaces.txt").write_text(" \n" * 500_000 + START + "\nProduced by X\n\n" + BODY + "\n" + END)
    (raw / "crlf.txt").write_bytes((START + "\r\n" + "\r\n" * 300_000 + BODY + "\r\n" + END).encode())
    stats, docs = run(Books(BooksConfig(min_chars=1)), tmp_path / "raw", tmp_path / "out")
    # The three bodies are one text: near-dedup keeps one copy (the smallest id), exact.
    assert [(d.id, d.text) for d in docs] == [("gutenberg/blank", BODY)]
    assert stats["stages"][-1]["dropped"] == {"near_duplicate": 2}


def test_one_long_line_of_spaces() -> None:
    # Two runs of `[ \t]*` in a row in a footer pattern tried every split of a line of spaces
    # (a 40k-space line took 20 s): a million spaces, then tabs, around the body.
    line = " " * 1_000_000 + "\t" * 1000
    started = time.perf_counter()
    assert strip_boilerplate(START + "\n" + line + "\n" + BODY + "\n" + line + "\n" + END) == BODY
    assert time.perf_counter() - started < 5
