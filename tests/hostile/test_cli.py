"""The real `pipeline run` on hostile inputs: one clear line and exit status 2 when nothing
is usable, warnings and a normal summary when something is, and never a traceback."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from sources.samples.stackexchange import entity_bomb_xml
from sources.samples.wikipedia import BOMB
from tests.hostile.helpers import cli, truncate
from tests.hostile.sources_data import BOOK, write_c4, write_paper


def _c4(raw: Path) -> str:
    truncate(write_c4(raw / "a.json.gz", 50), keep=0.1)  # cut inside the first line: nothing read
    return "a.json.gz: truncated or corrupt gzip file"


def _jsonl(raw: Path) -> str:
    (raw / "a.jsonl").write_bytes(b"")
    return "a.jsonl: empty file"


def _github(raw: Path) -> str:
    (raw / "rows.parquet").write_bytes(b"PAR1 not a parquet file")
    return "rows.parquet: not a readable Parquet file"


def _wikipedia(raw: Path) -> str:
    (raw / "enwiki-20220701-pages-articles.xml").write_text(BOMB)
    return "enwiki-20220701-pages-articles.xml: dtd_not_allowed"


def _books(raw: Path) -> str:
    (raw / "gutenberg").mkdir()
    (raw / "gutenberg/books.zip").write_bytes(b"PK\x03\x04 cut short")
    return "books.zip: not_a_zip_archive"


def _arxiv(raw: Path) -> str:
    truncate(write_paper(raw / "2101.00001.tar.gz", [("main.tex", BOOK.encode() * 40)]))
    return "2101.00001.tar.gz: truncated_archive"


def _stackexchange(raw: Path) -> str:
    (raw / "site").mkdir()
    (raw / "site/Posts.xml").write_bytes(entity_bomb_xml())
    return "site/Posts.xml: refused: the XML declares a DTD"


UNUSABLE = {"c4": _c4, "jsonl": _jsonl, "github": _github, "wikipedia": _wikipedia, "books": _books,
            "arxiv": _arxiv, "stackexchange": _stackexchange}


@pytest.mark.slow
@pytest.mark.parametrize("source", list(UNUSABLE))
def test_nothing_usable_is_one_error_line_and_exit_2(source: str, tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    names = UNUSABLE[source](tmp_path / "raw")
    done = cli(source, tmp_path / "raw", tmp_path / "out")
    assert done.returncode == 2, done.stderr
    *warnings, error = done.stderr.strip().split("\n")
    assert error.startswith("pipeline: error: ") and names in error, error
    assert error.endswith(f"(no input of {source} was usable)")
    assert all(line.startswith("warning: ") for line in warnings), warnings
    assert done.stdout == ""


@pytest.mark.slow
def test_hostile_files_beside_good_ones_end_with_a_summary(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_c4(raw / "good.json.gz", 3)
    truncate(write_c4(raw / "cut.json.gz", 50))
    (raw / "empty.json").write_bytes(b"")
    (raw / "bad.json").write_bytes(b'{"text": "\xff\xfe"}\n[1, 2]\n{not json\n' + gzip.compress(b"binary"))
    done = cli("c4", raw, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("c4: kept ")
    unreadable = sorted(line.split(": ")[1].rsplit("/", 1)[1] for line in done.stderr.splitlines()
                        if line.startswith("  unreadable input: "))
    assert unreadable == ["cut.json.gz", "empty.json"]
