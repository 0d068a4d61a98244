"""Truncated gzip, bz2, 7z and tar inputs, and decompression bombs: the damaged file is
counted (with what was read before the damage kept), the rest of the run goes on, and no
bomb is ever held in memory or written out."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import py7zr
import pytest

from sources.arxiv import ArXiv, ArxivConfig
from sources.books import Books, BooksConfig
from sources.c4 import C4
from sources.github import GitHub
from sources.jsonl import Jsonl
from sources.samples.wikipedia import Page, write_dump
from sources.stackexchange import StackExchange, StackExchangeConfig
from sources.wikipedia import Wikipedia
from tests.hostile.helpers import CommonCrawlReader, failures, json_line, read_drops, run, truncate, write_lines
from tests.hostile.sources_data import BOOK, PAPER, c4_lines, github_row, se_site, write_c4, write_paper, write_wet

MiB = 1 << 20


def _truncated_gzip_inputs(source: str, raw: Path) -> str:
    """A good file and a cut one (50 records, half of its bytes); returns the cut file's name."""
    if source == "c4":
        write_c4(raw / "a.json.gz")
        truncate(write_c4(raw / "b.json.gz", 50))
        return "b.json.gz"
    if source in ("jsonl", "books"):
        lines = [json_line(BOOK + str(i)) for i in range(51)]
        write_lines(raw / "sub/a.jsonl.gz", lines[:1])
        truncate(write_lines(raw / "sub/b.jsonl.gz", lines[1:]))
        return "b.jsonl.gz"
    if source == "github":
        write_lines(raw / "a.jsonl.gz", [github_row()])
        truncate(write_lines(raw / "b.jsonl.gz", [github_row(f"f{i}.py", f"x = {i}\n") for i in range(50)]))
        return "b.jsonl.gz"
    if source == "commoncrawl":
        write_wet(raw / "a.warc.wet.gz", 1, seed=1)
        truncate(write_wet(raw / "b.warc.wet.gz", 50, seed=2))
        return "b.warc.wet.gz"
    assert source == "arxiv"
    write_paper(raw / "2101.00001.tar.gz")
    truncate(write_paper(raw / "2101.00002.tar.gz", [("main.tex", PAPER.encode()), ("big.tex", BOOK.encode() * 50)]))
    return "2101.00002.tar.gz"


SOURCES = {
    "c4": C4(),
    "jsonl": Jsonl(),
    "books": Books(BooksConfig(min_chars=1, overlap_threshold=0.999)),
    "github": GitHub(),
    "commoncrawl": CommonCrawlReader(),
    "arxiv": ArXiv(ArxivConfig(min_chars=1)),
}
PROBLEMS = {
    "c4": "truncated or corrupt gzip file",
    "jsonl": "truncated or corrupt compressed file",
    "books": "truncated or corrupt compressed file",
    "github": "truncated or corrupt compressed file",
    "commoncrawl": "truncated input: the gzip member at byte",
    "arxiv": "truncated_archive",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SOURCES))
def test_truncated_gzip_keeps_what_came_before_and_counts_the_file(name: str, tmp_path: Path) -> None:
    cut = _truncated_gzip_inputs(name, tmp_path / "raw")
    stats, docs = run(SOURCES[name], tmp_path / "raw", tmp_path / "out")
    assert list(failures(stats)) == [cut]
    assert failures(stats)[cut].startswith(PROBLEMS[name])
    good_id = {"c4": "a:0", "jsonl": "a.jsonl.gz:0", "books": "sub/a:0", "github": "a.jsonl.gz:0", "arxiv": "2101.00001"}
    is_good = [d.meta.get("warc_file") == "a.warc.wet.gz" if name == "commoncrawl" else d.id == good_id[name]
               for d in docs]
    assert sum(is_good) == 1, [d.id for d in docs]
    # Records before the cut are kept (a tar paper is one record: nothing of it is).
    from_cut = len(docs) - 1
    assert (from_cut == 0) if name == "arxiv" else (0 < from_cut < 50), [d.id for d in docs]
    assert read_drops(stats) == ({"truncated_gzip": 1} if name == "commoncrawl" else {})


def test_truncated_bz2_dump_keeps_the_pages_before_the_cut(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    path = raw / "enwiki-20220701-pages-articles.xml.bz2"
    write_dump(path, "en", [Page(f"P{i}", "Words here. " * 600, i) for i in range(1, 41)], streams=20)
    truncate(path)
    stats, docs = run(Wikipedia(), raw, tmp_path / "out")
    assert 5 <= len(docs) < 40
    assert [d.meta["page_id"] for d in docs] == list(range(1, len(docs) + 1))
    assert read_drops(stats) == {"truncated_stream": 1}
    assert failures(stats) == {}


def test_truncated_7z_and_tar_fail_alone(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "good").mkdir(parents=True)
    (raw / "good/Posts.xml").write_bytes(se_site())
    with py7zr.SevenZipFile(raw / "cut.7z", "w") as archive:
        archive.writestr(se_site(50), "Posts.xml")
    truncate(raw / "cut.7z")
    stats, docs = run(StackExchange(StackExchangeConfig(largest_sites=0)), raw, tmp_path / "out")
    assert [d.id for d in docs] == ["good/1"]
    assert failures(stats)["cut.7z"].startswith("truncated or corrupt 7z archive")

    papers = tmp_path / "papers"
    write_paper(papers / "2101.00001.tar.gz")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("main.tex", PAPER.encode()), ("more.tex", BOOK.encode() * 20)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (papers / "2101.00002.tar").write_bytes(buffer.getvalue()[:3000])
    stats, docs = run(ArXiv(ArxivConfig(min_chars=1)), papers, tmp_path / "out2")
    assert [d.id for d in docs] == ["2101.00001"]
    assert list(failures(stats)) == ["2101.00002.tar"]
    assert failures(stats)["2101.00002.tar"].startswith("truncated_archive")


def _zeros_gz(path: Path, mib: int, prefix: bytes = b"") -> Path:
    """`mib` MiB of zero bytes after `prefix`, gzipped as a stream (a ~1000:1 bomb)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(prefix)
        block = bytes(MiB)
        for _ in range(mib):
            f.write(block)
    return path


@pytest.mark.slow
def test_decompression_bombs_are_refused_with_a_reason(tmp_path: Path) -> None:
    # arXiv: a gzipped "tex" of 300 MiB, and a tar whose member is 300 MiB (default limits).
    papers = tmp_path / "papers"
    write_paper(papers / "2101.00001.tar.gz")
    _zeros_gz(papers / "2101.00002.gz", 300)
    stats, docs = run(ArXiv(ArxivConfig(min_chars=1)), papers, tmp_path / "out-arxiv")
    assert [d.id for d in docs] == ["2101.00001"]
    assert failures(stats)["2101.00002.gz"].startswith("decompression_limit")

    # Books: a zip whose member inflates to 100 MiB (max_book_mb is 64).
    books = tmp_path / "books/gutenberg"
    books.mkdir(parents=True)
    with zipfile.ZipFile(books / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("bomb.txt", "w") as member:
            for _ in range(100):
                member.write(bytes(MiB))
        archive.writestr("good.txt", BOOK)
    stats, docs = run(Books(BooksConfig(min_chars=1)), tmp_path / "books", tmp_path / "out-books")
    assert [d.id for d in docs] == ["gutenberg/bomb.zip:good"]
    assert read_drops(stats) == {"member_too_large": 1}

    # C4 (and every JSON-lines reader): 300 MiB without a newline is one over-long line, skipped.
    c4 = tmp_path / "c4"
    _zeros_gz(c4 / "bomb.json.gz", 300, prefix=c4_lines()[0] + b"\n")
    stats, docs = run(C4(), c4, tmp_path / "out-c4")
    assert len(docs) == 1
    assert read_drops(stats) == {"line_too_long": 1}

    # Stack Exchange: a 7z whose Posts.xml is almost all padding (compression ratio over 100).
    sites = tmp_path / "se"
    (sites / "good").mkdir(parents=True)
    (sites / "good/Posts.xml").write_bytes(se_site())
    padded = se_site().replace(b"<posts>", b"<posts>" + b" " * (64 * MiB), 1)
    with py7zr.SevenZipFile(sites / "bomb.7z", "w") as archive:
        archive.writestr(padded, "Posts.xml")
    stats, docs = run(StackExchange(StackExchangeConfig(largest_sites=0)), sites, tmp_path / "out-se")
    assert [d.id for d in docs] == ["good/1"]
    assert failures(stats)["bomb.7z"].startswith("refused: Posts.xml would inflate to 67,109,")


def _corrupt_deflate() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.txt", BOOK)
    data = bytearray(buffer.getvalue())
    data[40:48] = b"\xff" * 8  # inside a.txt's compressed bytes
    return bytes(data)


# A central directory entry alone, then the end record: member name empty, or a zip version 6.4.
_EMPTY_NAME = b"PK\x01\x02" + bytes(42) + b"PK\x05\x06" + bytes(4) + b"\x01\x00\x01\x00" + b"\x2e" + bytes(9)
_VERSION_64 = (b"PK\x01\x02\x00\x00\x40" + bytes(39) + b"PK\x05\x06" + bytes(4) + b"\x01\x00\x01\x00"
               + b"\x2e" + bytes(9))


@pytest.mark.parametrize("data, problem", [
    (_corrupt_deflate(), "corrupt_archive"),
    (_EMPTY_NAME, "unsafe_member_path"),
    (_VERSION_64, "unsupported_zip"),
], ids=["corrupt_deflate", "empty_member_name", "zip_version_6.4"])
def test_corrupt_zip_fails_the_zip_alone(data: bytes, problem: str, tmp_path: Path) -> None:
    # Found by test_properties: each of these raised out of the run (zlib.error, IndexError,
    # NotImplementedError) and ended it with a traceback.
    folder = tmp_path / "raw/gutenberg"
    folder.mkdir(parents=True)
    (folder / "good.txt").write_text(BOOK)
    (folder / "bad.zip").write_bytes(data)
    stats, docs = run(Books(BooksConfig(min_chars=1)), tmp_path / "raw", tmp_path / "out")
    assert [d.id for d in docs] == ["gutenberg/good"]
    if problem == "unsafe_member_path":  # the zip is read; its nameless member is refused
        assert (failures(stats), read_drops(stats)) == ({}, {"unsafe_member_path": 1})
    else:
        assert failures(stats)["bad.zip"].startswith(problem)
