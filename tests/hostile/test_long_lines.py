"""A single 200 MB line, in the form each source reads: skipped with a reason (or its file
counted as failed) in bounded memory and time, with the good records beside it kept.

Each run is a fresh interpreter (tests/hostile/measure.py) so its peak memory can be read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import REPO, subprocess_env
from tests.hostile.helpers import assert_balanced, json_line
from tests.hostile.sources_data import ARTICLE, BOOK, MIT, PAPER, c4_lines, github_row, se_site, wet_records

MiB = 1 << 20
LINE_MB = 200
PEAK_MB = 450  # about 120 MB of interpreter and libraries, and what a source holds at most
SECONDS = 20


def write_long(path: Path, head: bytes, tail: bytes, fill: bytes = b"a") -> Path:
    """`head`, 200 MiB of `fill`, `tail`: written a MiB at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = fill * MiB
    with open(path, "wb") as f:
        f.write(head)
        for _ in range(LINE_MB):
            f.write(block)
        f.write(tail)
    return path


@pytest.fixture(scope="module")
def json_line_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One JSON object of 200 MiB on a line: shared (hard-linked) by every JSON-lines case."""
    return write_long(tmp_path_factory.mktemp("long") / "line.json", b'{"text": "', b'"}\n')


def _lines_around(path: Path, shared: Path, before: bytes, after: bytes) -> None:
    """`before`, the shared 200 MiB line, `after`: the long line is a hard link of its own file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.link(shared, path.with_name("z-" + path.name))
    path.write_bytes(before + b"\n" + after + b"\n")


def c4(raw: Path, shared: Path) -> None:
    _lines_around(raw / "a.json", shared, *c4_lines(2))


def jsonl(raw: Path, shared: Path) -> None:
    _lines_around(raw / "a.jsonl", shared, json_line("one"), json_line("two"))


def books(raw: Path, shared: Path) -> None:
    _lines_around(raw / "b3/a.jsonl", shared, json_line(BOOK), json_line(ARTICLE * 40))


def github(raw: Path, shared: Path) -> None:
    _lines_around(raw / "a.jsonl", shared, github_row("a.py"), github_row("b.py", "y = 2\n"))


def books_txt(raw: Path, shared: Path) -> None:
    write_long(raw / "gutenberg/long.txt", b"", b"\n")
    (raw / "gutenberg/good.txt").write_text(BOOK)


def github_repo(raw: Path, shared: Path) -> None:
    write_long(raw / "r/long.js", b"var a = '", b"';\n")
    (raw / "r/LICENSE").write_text(MIT)
    (raw / "r/a.py").write_text("x = 1\n")


def arxiv(raw: Path, shared: Path) -> None:
    write_long(raw / "long/main.tex", PAPER.encode().replace(b"\\end{document}", b""), b"\n\\end{document}\n")
    (raw / "good").mkdir()
    (raw / "good/main.tex").write_text(PAPER.replace("is real.", "is real. " + BOOK))  # past min_chars


def wikipedia(raw: Path, shared: Path) -> None:
    from sources.samples.wikipedia import Page, dump_xml

    xml = dump_xml("en", [Page("Good", ARTICLE, 1), Page("Long", "LONG", 2), Page("After", ARTICLE, 3)])
    head, tail = xml.encode().split(b"LONG")
    write_long(raw / "enwiki-20220701-pages-articles.xml", head, tail)


def stackexchange(raw: Path, shared: Path) -> None:
    (raw / "good").mkdir(parents=True)
    (raw / "good/Posts.xml").write_bytes(se_site())
    head, tail = se_site().split(b"How?", 1)
    write_long(raw / "long/Posts.xml", head, tail)


def commoncrawl(raw: Path, shared: Path) -> None:
    good = wet_records(2)
    head = (b"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Target-URI: https://long.example/\r\n"
            b"WARC-Record-ID: <urn:uuid:long>\r\nContent-Length: " + str(LINE_MB * MiB).encode() + b"\r\n\r\n")
    write_long(raw / "a.warc.wet", good[0] + head, b"\r\n\r\n" + good[1])


# source, input writer, expected read drops, expected failed file (name: problem start), documents kept
CASES: list = [
    ("c4", c4, {"line_too_long": 1}, {}, 2),
    ("jsonl", jsonl, {"line_too_long": 1}, {}, 2),
    ("books", books, {"line_too_long": 1}, {}, 2),
    ("github", github, {"line_too_long": 1}, {}, 2),
    ("books", books_txt, {}, {"long.txt": "larger than 64 MB"}, 1),
    ("github", github_repo, {"license_file": 1, "file_too_large": 1}, {}, 1),
    ("arxiv", arxiv, {}, {"main.tex": "unreadable or larger than 16 MB"}, 1),
    ("wikipedia", wikipedia, {"malformed_xml": 1}, {}, 1),
    ("stackexchange", stackexchange, {}, {"Posts.xml": "malformed XML"}, 1),
    ("commoncrawl", commoncrawl, {"record_too_large": 1}, {}, 2),
]


@pytest.mark.parametrize("source, make, drops, failed, kept", CASES,
                         ids=[getattr(c, "values", c)[1].__name__ for c in CASES])
@pytest.mark.slow
def test_a_200_mb_line_is_skipped_in_bounded_memory(source: str, make: Callable, drops: dict, failed: dict,
                                                      kept: int, json_line_file: Path, tmp_path: Path) -> None:
    make(tmp_path / "raw", json_line_file)
    done = subprocess.run([sys.executable, "-m", "tests.hostile.measure", source, str(tmp_path / "raw"),
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO,
                          env=subprocess_env(), timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    result = json.loads(done.stdout)
    stats = result["stats"]
    assert_balanced(stats)
    assert stats["stages"][0]["dropped"] == drops
    assert {Path(f["path"]).name: f["problem"][: len(failed.get(Path(f["path"]).name, ""))]
            for f in stats["files"]["failed"]} == failed
    assert stats["documents_kept"] == kept
    print(f"{source}/{make.__name__}: peak {result['peak_mb']:.0f} MB, {result['seconds']:.1f} s")
    assert result["peak_mb"] < PEAK_MB, result["peak_mb"]
    assert result["seconds"] < SECONDS, result["seconds"]
