"""Gutenberg boilerplate: header, credits, footer and licence gone, the body untouched."""

from __future__ import annotations

from pipeline.text.gutenberg import header_title, normalize_newlines, strip_boilerplate
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


def test_crlf_file_keeps_its_body_after_credits() -> None:
    # Real Gutenberg files use CRLF: a CRLF blank line ends the credits paragraph.
    text = ("Title: A Title\r\n\r\n*** START OF THIS PROJECT GUTENBERG EBOOK A TITLE ***\r\n\r\n"
            "Produced by Someone\r\nand Others\r\n\r\n" + BODY.replace("\n", "\r\n")
            + "\r\n\r\n*** END OF THIS PROJECT GUTENBERG EBOOK A TITLE ***\r\nlicence\r\n")
    assert strip_boilerplate(normalize_newlines(text)) == BODY
    assert header_title(text) == "A Title"


def test_small_print_closed_without_asterisk_and_produced_from_credits() -> None:
    text = ("Project Gutenberg Etext of Old Book\n***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***\n"
            "Why is this \"Small Print!\" statement here?\n*END THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.12.12.00*END*\n\n\n"
            "This etext was produced from the 1908 edition by A. Volunteer\n\n" + BODY
            + "\n\nEnd of Project Gutenberg Etext of Old Book\n")
    assert strip_boilerplate(text) == BODY


def test_licence_without_end_marker_and_blank_line_runs() -> None:
    text = "*** START OF THE PROJECT GUTENBERG EBOOK X ***\n" + BODY + "\n\n*** START: FULL LICENSE ***\nTHE FULL LICENSE"
    assert strip_boilerplate(text) == BODY
    # 20k blank lines (and lines of spaces) around the markers: read once, not once per line.
    blank = "\n" * 20_000 + " \n" * 20_000
    assert strip_boilerplate(blank + "*** START OF THE PROJECT GUTENBERG EBOOK X ***" + blank + BODY + blank) == BODY
