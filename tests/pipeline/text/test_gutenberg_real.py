"""The Gutenberg cleaner on the real files (../shared/realdata/books, provenance in its
PROVENANCE.md): nothing of Project Gutenberg's own is left, and none of the book is lost.

The oracle is a reading of the raw files by hand (each book's first and last lines, below) and
plain regexes: Gutenberg's boilerplate phrases, and the heading lines (chapters, all-capital
titles) found between the markers of the raw file, which must all come out in order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.text.gutenberg import strip_boilerplate

REAL = Path(__file__).resolve().parents[3] / "../shared/realdata/books/gutenberg"
# Each book's first and last lines of its own text, read in the raw file (spaces around them
# left out). Before the first line, the lines listed as the preamble: text that is not the book's
# and that no marker bounds, so the cleaner keeps it.
BOOKS = {
    "alice-11-0": ("[Illustration]", "THE END"),
    "alice-11-0-pg2016": ("ALICE’S ADVENTURES IN WONDERLAND", "THE END"),
    "looking-glass-12-0": ("THROUGH THE LOOKING-GLASS", "THE END"),
    "devils-dictionary-972": ("THE DEVIL'S DICTIONARY",
                              "Nature_) that the domestic cow sheds its horn every two years."),
    "devils-dictionary-old-dvldc10": ("THE DEVIL'S DICTIONARY",
                                      "Nature_) that the domestic cow sheds its horn every two years."),
    "news-from-nowhere-3261": ("NEWS FROM NOWHERE", "{3}  Cirencester and Burford he must have meant."),
    "news-from-nowhere-old-nwsnw10": ("NEWS FROM NOWHERE", "{3}  Cirencester and Burford he must have meant."),
    "complete-angler-9198": ("THE COMPLETE ANGLER;", "FINIS."),
    "complete-angler-9198-8": ("THE COMPLETE ANGLER;", "FINIS."),
    "complete-angler-old-7tcng10": ("THE COMPLETE ANGLER;", "FINIS."),
    # The book ends with its publisher's list; the transcriber's notes after it are the edition's.
    "ontboezemingen-24675-8": ("ELK DEEL IS AFZONDERLIJK VERKRIJGBAAR", "» 73.--=Célestine.= Rob's moeder."),
    "pride-prejudice-pg1342": ("PAGE", "TOOKS COURT, CHANCERY LANE, LONDON."),
}
PREAMBLE = {
    # The 1993 edition's own title line (Internet Wiretap's, not Project Gutenberg's).
    "devils-dictionary-old-dvldc10": ["The Internet Wiretap 1st Online Edition of"],
    # Lines of the header that the committer kept when cutting the rest of it, the START marker
    # with it: no marker bounds them.
    "pride-prejudice-pg1342": ["Title: Pride and Prejudice", "Author: Jane Austen"],
}
BOILERPLATE = re.compile(
    r"\*{3}\s*(?:START|END)\b|\*END\*|SMALL PRINT|FULL LICEN[SC]E|Project Gutenberg|Gutenberg(?:-tm|™)"
    r"|gutenberg\.(?:org|net)|pgdp|pglaf|Literary Archive Foundation|Distributed Proofread"
    r"|Updated editions will replace|\be-?text\b|\be-?book\b|Transcriber['’]?s?\s+Notes?"
    r"|^\s*(?:Produced by|Transcribed from|This e-?text was)",
    re.IGNORECASE | re.MULTILINE,
)
HEADING = re.compile(r"^[ \t]*(?:(?:CHAPTER|CHAP\.)\b.*|[A-Z][A-Z0-9 .,;:'’!?&()-]{3,})$", re.MULTILINE)
START = re.compile(r"^\*{3}\s*START OF|^\*END\*?\s*THE SMALL PRINT", re.MULTILINE | re.IGNORECASE)
END = re.compile(r"^\*{3}\s*END OF|^End of (?:the )?Project Gutenberg", re.MULTILINE | re.IGNORECASE)


def read_raw(name: str) -> str:
    raw = (REAL / f"{name}.txt").read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # the "-8" files and old editions are ISO-8859-1
        return raw.decode("latin-1")


@pytest.mark.parametrize("name", sorted(BOOKS))
def test_real_book_keeps_its_text_and_none_of_gutenberg(name: str) -> None:
    if not REAL.is_dir():
        pytest.skip(f"{REAL} not found: the real Gutenberg files live outside the repository (../shared)")
    raw = read_raw(name)
    cleaned = strip_boilerplate(raw)

    assert "\r" not in cleaned
    assert BOILERPLATE.findall(cleaned) == []
    first, last = BOOKS[name]
    lines = [line.strip() for line in cleaned.split("\n") if line.strip()]
    preamble = PREAMBLE.get(name, [])
    assert lines[: len(preamble) + 1] == preamble + [first]
    assert lines[-1] == last

    # Every heading between the raw file's markers comes out, in order.
    text = raw.replace("\r\n", "\n")
    start = START.search(text)
    body_start = text.index("\n", start.end()) if start else 0
    end = END.search(text, body_start)
    assert HEADING.findall(cleaned) == HEADING.findall(text[body_start : end.start() if end else len(text)])


def test_every_real_book_is_listed() -> None:
    if not REAL.is_dir():
        pytest.skip(f"{REAL} not found: the real Gutenberg files live outside the repository (../shared)")
    assert sorted(path.stem for path in REAL.glob("*.txt")) == sorted(BOOKS)
