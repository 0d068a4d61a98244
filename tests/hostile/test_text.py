"""Invalid UTF-8, mixed encodings, empty files and binary files, source by source: each is
skipped with a reason, decoded by a documented rule, or counted as a failed input."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from pipeline.common.errors import UserError
from sources.arxiv import ArXiv, ArxivConfig
from sources.books import Books, BooksConfig
from sources.c4 import C4
from sources.github import GitHub
from sources.jsonl import Jsonl
from sources.samples.commoncrawl import warc_record, write_members
from sources.stackexchange import StackExchange, StackExchangeConfig
from sources.wikipedia import Wikipedia
from tests.hostile.helpers import CommonCrawlReader, failures, json_line, read_drops, run, write_lines
from tests.hostile.sources_data import (
    BOOK,
    C4_PAGE,
    CODE,
    PAPER,
    github_repo,
    github_row,
    se_site,
    wiki_dump,
    write_paper,
)

LATIN1 = "caf\xe9".encode("latin-1")  # b"caf\xe9": not UTF-8
MIXED = "na\u00efve caf\u00e9\n".encode() + "d\xe9j\xe0 vu\n".encode("latin-1")  # a UTF-8 line, a Latin-1 line


def test_invalid_utf8_in_json_lines(tmp_path: Path) -> None:
    # C4 is UTF-8 by definition: a line that is not is skipped; jsonl replaces bad bytes (U+FFFD).
    # A lone surrogate from a JSON escape ("\\ud800", in the text or a field) cannot be stored.
    write_lines(tmp_path / "c4/a.json", [json_line(C4_PAGE), b'{"text": "' + LATIN1 + b'"}',
                                         json_line(C4_PAGE, url="https://\ud800.example/")])
    stats, docs = run(C4(), tmp_path / "c4", tmp_path / "out")
    assert (len(docs), read_drops(stats)) == (1, {"not_utf8": 1, "invalid_unicode": 1})
    write_lines(tmp_path / "jsonl/a.jsonl", [b'{"text": "' + LATIN1 + b'"}', b'{"text": "\\ud800 lone"}'])
    write_lines(tmp_path / "books/b3/a.jsonl", [json_line(BOOK, title="\udfff"), json_line(BOOK)])
    write_lines(tmp_path / "gh/rows.jsonl", [github_row("\ud800.py"), github_row("\u00e9.py")])
    for source, raw, kept in ((Jsonl(), "jsonl", ["caf\ufffd"]), (Books(BooksConfig(min_chars=1)), "books", [BOOK.strip()]),
                              (GitHub(), "gh", [CODE])):
        stats, docs = run(source, tmp_path / raw, tmp_path / "out")
        assert [d.text for d in docs] == kept
        assert read_drops(stats) == {"invalid_unicode": 1}


def test_mixed_encodings_decode_line_by_line(tmp_path: Path) -> None:
    # Gutenberg .txt and arXiv .tex: UTF-8 where a line is UTF-8, Latin-1 where it is not.
    (tmp_path / "books/gutenberg").mkdir(parents=True)
    (tmp_path / "books/gutenberg/mixed.txt").write_bytes(MIXED + BOOK.encode())
    _, docs = run(Books(BooksConfig(min_chars=1)), tmp_path / "books", tmp_path / "out")
    assert docs[0].text.startswith("na\u00efve caf\u00e9\nd\u00e9j\u00e0 vu\n")
    paper = PAPER.replace("\\section{Intro}\n", "\\section{Intro}\n" + MIXED.decode("latin-1")).encode("latin-1")
    write_paper(tmp_path / "papers/2101.00001.tar.gz", [("main.tex", paper)])
    _, docs = run(ArXiv(ArxivConfig(min_chars=1)), tmp_path / "papers", tmp_path / "out")
    assert "na\u00efve caf\u00e9\nd\u00e9j\u00e0 vu" in docs[0].text


def test_invalid_utf8_in_code_xml_and_warc(tmp_path: Path) -> None:
    github_repo(tmp_path / "gh", "r", {"a.py": "x = 1\n", "b.py": b"s = '" + LATIN1 + b"'\n"})
    stats, docs = run(GitHub(), tmp_path / "gh", tmp_path / "out")
    assert [d.id for d in docs] == ["r/a.py"]
    assert read_drops(stats) == {"license_file": 1, "not_utf8": 1}
    # XML declares UTF-8: a dump or Posts.xml that is not is malformed, counted as a failed file.
    (tmp_path / "wiki").mkdir()
    (tmp_path / "wiki/enwiki-20220701-pages-articles1.xml").write_text(wiki_dump())
    (tmp_path / "wiki/enwiki-20220701-pages-articles2.xml").write_bytes(
        wiki_dump().encode().replace(b"Alder", LATIN1))
    stats, docs = run(Wikipedia(), tmp_path / "wiki", tmp_path / "out")
    assert len(docs) == 3
    assert failures(stats)["enwiki-20220701-pages-articles2.xml"].startswith("malformed_xml")
    for site, data in (("good", se_site()), ("latin1", se_site().replace(b"How?", LATIN1))):
        (tmp_path / "se" / site).mkdir(parents=True)
        (tmp_path / "se" / site / "Posts.xml").write_bytes(data)
    stats, docs = run(StackExchange(StackExchangeConfig(largest_sites=0)), tmp_path / "se", tmp_path / "out")
    assert [d.id for d in docs] == ["good/1"]
    assert list(failures(stats)) == ["Posts.xml"]
    assert stats["files"]["failed"][0]["path"].endswith("latin1/Posts.xml")
    # WET text: bad bytes become U+FFFD and the page says so in its invalid_utf8 column (the
    # first line of a WET record is the page title).
    import random

    rng = random.Random(0)
    write_members(tmp_path / "cc/a.warc.wet.gz", [
        warc_record(rng, "conversion", "https://a.example/", b"Title\ngood text", "text/plain"),
        warc_record(rng, "conversion", "https://b.example/", b"Title\n" + LATIN1, "text/plain"),
    ])
    stats, docs = run(CommonCrawlReader(), tmp_path / "cc", tmp_path / "out")
    assert [(d.text, d.meta["invalid_utf8"]) for d in docs] == [("good text", False), ("caf\ufffd", True)]


EMPTY = {
    "c4": ("a.json.gz", gzip.compress(b""), "empty file"),
    "jsonl": ("a.jsonl", b"", "empty file"),
    "books": ("gutenberg/a.jsonl", b"", "empty file"),
    "github": ("a.jsonl.gz", gzip.compress(b""), "empty file"),
    "wikipedia": ("enwiki-20220701-pages-articles.xml", b"", "malformed_xml"),
    "stackexchange": ("site/Posts.xml", b"", "malformed XML"),
}


@pytest.mark.parametrize("name", list(EMPTY))
def test_empty_file_alone_is_one_clear_error(name: str, tmp_path: Path) -> None:
    from pipeline.engine.registry import source_class

    file_name, data, problem = EMPTY[name]
    (tmp_path / "raw" / file_name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "raw" / file_name).write_bytes(data)
    with pytest.raises(UserError) as caught:
        run(source_class(name)(), tmp_path / "raw", tmp_path / "out")
    assert f"{Path(file_name).name}: {problem}" in str(caught.value)
    assert str(caught.value).endswith(f"(no input of {name} was usable)")


def test_empty_files_without_a_document_are_skipped_with_a_reason(tmp_path: Path) -> None:
    # A whole-file document that is empty is one skipped record, counted.
    (tmp_path / "books/gutenberg").mkdir(parents=True)
    (tmp_path / "books/gutenberg/empty.txt").write_bytes(b"")
    (tmp_path / "books/gutenberg/good.txt").write_text(BOOK)
    stats, docs = run(Books(BooksConfig(min_chars=1)), tmp_path / "books", tmp_path / "out")
    assert (len(docs), read_drops(stats)) == (1, {"empty_file": 1})
    # A paper archive or a WET file of no bytes is a download that failed: a failed input (a WET
    # file holds at least its warcinfo record), beside the good files read in full.
    write_paper(tmp_path / "papers/2101.00001.tar.gz")
    (tmp_path / "papers/2101.00002.tar.gz").write_bytes(b"")
    stats, docs = run(ArXiv(ArxivConfig(min_chars=1)), tmp_path / "papers", tmp_path / "out")
    assert (len(docs), read_drops(stats)) == (1, {})
    assert failures(stats) == {"2101.00002.tar.gz": "empty_file (no bytes)"}
    (tmp_path / "cc").mkdir()
    import random

    rng = random.Random(1)
    write_members(tmp_path / "cc/good.warc.wet.gz", [
        warc_record(rng, "conversion", "https://a.example/", b"Title\ngood text", "text/plain")])
    (tmp_path / "cc/empty.warc.wet.gz").write_bytes(b"")
    write_members(tmp_path / "cc/empty-member.warc.wet.gz", [b""])
    stats, docs = run(CommonCrawlReader(), tmp_path / "cc", tmp_path / "out")
    assert (stats["documents_read"], [d.text for d in docs]) == (1, ["good text"])
    assert failures(stats) == {"empty.warc.wet.gz": "empty file", "empty-member.warc.wet.gz": "empty file"}
    # An empty source file in a repository is not code.
    github_repo(tmp_path / "gh", "r", {"a.py": "x = 1\n", "empty.py": ""})
    stats, docs = run(GitHub(), tmp_path / "gh", tmp_path / "out")
    assert [d.id for d in docs] == ["r/a.py"]
    assert {s["name"]: s["dropped"] for s in stats["stages"]}["code_quality"] == {"empty": 1}


def test_binary_files_in_source_trees_are_skipped(tmp_path: Path) -> None:
    elf = b"\x7fELF\x02\x01\x01\x00" + bytes(64) + b"int main"
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    github_repo(tmp_path / "gh", "r", {"a.py": "x = 1\n", "bin/tool": elf, "logo.png": png, "data.c": png})
    write_lines(tmp_path / "gh/rows.jsonl", [
        github_row("ok.py"),
        github_row("blob.c", "int a;\x00\x01\x02"),
        b'{"repo_name": "o/r", "path": "b.bin", "content": null, "binary": true, "license": "mit"}',
    ])
    stats, docs = run(GitHub(), tmp_path / "gh", tmp_path / "out")
    assert sorted(d.id for d in docs) == ["r/a.py", "rows.jsonl:0"]
    assert read_drops(stats) == {"license_file": 1, "binary_file": 5}
    # Books: an image or archive under a .txt name (alone or in a zip) is not a book.
    (tmp_path / "books/gutenberg").mkdir(parents=True)
    (tmp_path / "books/gutenberg/cover.txt").write_bytes(png)
    (tmp_path / "books/gutenberg/good.txt").write_text(BOOK)
    from sources.samples.books import zipped

    (tmp_path / "books/gutenberg/more.zip").write_bytes(zipped({"elf.txt": elf}))
    stats, docs = run(Books(BooksConfig(min_chars=1)), tmp_path / "books", tmp_path / "out")
    assert [d.id for d in docs] == ["gutenberg/good"]
    assert read_drops(stats) == {"binary_file": 2}
    # arXiv: figures and compiled files in a paper's tarball are never read as text.
    write_paper(tmp_path / "papers/2101.00001.tar.gz",
                [("main.tex", PAPER.encode()), ("fig.png", png), ("main.pdf", b"%PDF-1.5\x00\xff")])
    stats, docs = run(ArXiv(ArxivConfig(min_chars=1)), tmp_path / "papers", tmp_path / "out")
    assert [d.text for d in docs] == ["\\section{Intro}\nEvery $x \\in \\mathbb{R}$ is real."]
