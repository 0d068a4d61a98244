"""Gutenberg boilerplate: header, credits, footer and licence gone, the body untouched."""

from __future__ import annotations

from pipeline.text.gutenberg import header_title, strip_boilerplate
from sources.samples.books import gutenberg_file

BODY = "CHAPTER I\n\nIt was a quiet morning in the valley.\n\nThe end of the story came later."


def test_modern_markers() -> None:
    text = gutenberg_file("A Title", "Someone", 12, BODY)
    assert strip_boilerplate(text) == BODY
    assert header_title(text) == "A Title"


def test_old_small_print_and_end_line() -> None:
    text = ("Project Gutenberg's Etext of Old Book\n*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n"
            "This etext was produced by a volunteer.\n\n" + BODY + "\n\nEnd of Project Gutenberg's Old Book\nlicence...")
    assert strip_boilerplate(text) == BODY


def test_text_without_markers_is_unchanged() -> None:
    assert strip_boilerplate("  " + BODY + "\n") == BODY
    assert header_title(BODY) == ""
