"""Gutenberg files made of blank-line runs (the boilerplate patterns were quadratic on them) and
CRLF: the body comes out exact and the run balances. Timings: bench/hostile_text.py."""

from __future__ import annotations

from pathlib import Path

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
