"""CommonCrawl input as real archives write it, in small hand-written records that run on every
clone: chunked bodies, wget's bracketed URIs, bare-LF HTTP headers, dns: records, charsets
that are no text encodings, a Content-Length in other digits, WET titles, snapshots, and the
dedup order (300-character floor, one copy across snapshots, line dedup within one)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pipeline.commands.run import run_source
from pipeline.engine.document import Document, Skipped
from pipeline.engine.shards import read_corpus
from pipeline.formats.warc import dechunk
from sources.commoncrawl import CommonCrawl, snapshot_of
from sources.samples.commoncrawl import warc_record, write_members

PAGE = (b"<html><head><title>Boats of the harbour</title></head><body><article>"
        b"<p>The harbour built three wooden boats in the spring of that year.</p>"
        b"<p>They sailed along the coastal road for many years after.</p></article></body></html>")


def _items(tmp_path: Path, records: list[bytes], name: str = "a.warc.gz") -> list:
    write_members(tmp_path / name, records)
    return list(CommonCrawl().read(str(tmp_path / name)))


def _response(rng: random.Random, http: bytes, url: str = "https://a.example/") -> bytes:
    return warc_record(rng, "response", url, http, "application/http; msgtype=response")


def _chunked(body: bytes, sizes: list[int]) -> bytes:
    out, pos = b"", 0
    for size in sizes:
        out += f"{size:x}\r\n".encode() + body[pos : pos + size] + b"\r\n"
        pos += size
    return out + f"{len(body) - pos:x}\r\n".encode() + body[pos:] + b"\r\n0\r\n\r\n"


def test_dechunk_decodes_only_what_is_really_chunked() -> None:
    body = b"<p>digital environment</p>"
    assert dechunk(_chunked(body, [12, 5])) == body
    assert dechunk(b"<!doctype html><p>joined already</p>") is None
    assert dechunk(b"1a\r\n<p>cut inside a") == b"<p>cut inside a"  # the capture ends early
    assert dechunk(b"5\r\nabcdeXX") is None  # no CRLF after the chunk: not chunked
    assert dechunk(b"cafe\r\n") is None  # a hex-looking word with nothing after it


def test_chunked_responses_are_decoded_and_joined_ones_kept(tmp_path: Path) -> None:
    rng = random.Random(1)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
    items = _items(tmp_path, [_response(rng, head + _chunked(PAGE, [0x7d, 0x1e])),
                              _response(rng, head + PAGE)])
    text = ("The harbour built three wooden boats in the spring of that year.\n\n"
            "They sailed along the coastal road for many years after.")
    assert [d.text for d in items] == [text, text]
    assert all("7d" not in d.text.split() and "1e" not in d.text.split() for d in items)


def test_url_angle_brackets_from_wget_are_stripped(tmp_path: Path) -> None:
    rng = random.Random(2)
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + PAGE
    (doc,) = _items(tmp_path, [_response(rng, http, url="<https://soldaini.example/>")])
    assert doc.meta["url"] == "https://soldaini.example/"


def test_bare_lf_http_headers_and_inflated_gzip_bodies_are_read(tmp_path: Path) -> None:
    rng = random.Random(3)
    http = (b"HTTP/1.1 200 OK\nContent-Type: text/html; charset=EUC-JP\nContent-Encoding: gzip\n"
            b"Content-Length: 999\n\n") + "<html><head><title>鞄</title></head><body><p>日本語のページです。</p></body></html>".encode("euc-jp")
    (doc,) = _items(tmp_path, [_response(rng, http)])
    assert doc.meta["title"] == "鞄" and doc.text == "日本語のページです。"


def test_a_dns_record_is_not_a_document(tmp_path: Path) -> None:
    rng = random.Random(4)
    dns = warc_record(rng, "response", "dns:www.archive.org", b"20080430204825\nwww.archive.org. 589 IN A 207.241.229.39\n",
                      "text/dns")
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + PAGE
    items = _items(tmp_path, [dns, _response(rng, http)])
    assert len(items) == 1 and isinstance(items[0], Document)


@pytest.mark.parametrize("charset", ["base64", "hex", "rot13", "zlib", "idna"])
def test_a_charset_that_is_no_text_encoding_is_skipped_and_the_file_goes_on(tmp_path: Path, charset: str) -> None:
    rng = random.Random(5)
    bad = f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset={charset}\r\n\r\n".encode() + PAGE
    good = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + PAGE
    items = _items(tmp_path, [_response(rng, bad), _response(rng, good)])
    assert items[0] == Skipped("charset_not_text") and isinstance(items[1], Document)


def test_a_content_length_in_other_digits_is_skipped_and_the_file_goes_on(tmp_path: Path) -> None:
    rng = random.Random(6)
    superscript = (b"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Record-ID: <urn:uuid:x>\r\n"
                   + "Content-Length: ²\r\n\r\nA\nlost\r\n\r\n".encode())
    good = warc_record(rng, "conversion", "https://b.example/", b"Title\nKept text.", "text/plain")
    (tmp_path / "plain.wet").write_bytes(superscript + good)
    items = list(CommonCrawl().read(str(tmp_path / "plain.wet")))
    assert items[0] == Skipped("bad_content_length") and items[1].text == "Kept text."


def test_wet_title_goes_to_its_column_and_the_snapshot_comes_from_warcinfo_or_path(tmp_path: Path) -> None:
    rng = random.Random(7)
    info = warc_record(rng, "warcinfo", None, b"isPartOf: CC-MAIN-2019-09\r\n", "application/warc-fields")
    page = warc_record(rng, "conversion", "https://a.example/", b"Page title\nFirst line.\nSecond line.", "text/plain")
    (doc,) = _items(tmp_path, [info, page], "a.warc.wet.gz")
    assert (doc.meta["title"], doc.text, doc.meta["snapshot"]) == ("Page title", "First line.\nSecond line.", "CC-MAIN-2019-09")
    assert snapshot_of("s3://commoncrawl/crawl-data/CC-MAIN-2020-34/segments/x/wet/CC-MAIN-20200808-00395.warc.wet.gz") \
        == "CC-MAIN-2020-34"
    assert snapshot_of("CC-MAIN-20200808165417-20200808195417-00395.warc.gz") == ""  # a crawl time, not a snapshot


class _DedupOnly(CommonCrawl):
    def stages(self) -> list:
        return self.dedup_stages()


LONG = " ".join(f"Sentence {n} of a page long enough to pass the floor." for n in range(8))


def _wet(path: Path, pages: list[tuple[str, str]], snapshot: str, seed: int) -> None:
    rng = random.Random(seed)
    info = warc_record(rng, "warcinfo", None, f"isPartOf: {snapshot}\r\n".encode(), "application/warc-fields")
    write_members(path, [info] + [warc_record(rng, "conversion", url, f"Title\n{text}".encode(), "text/plain")
                                  for url, text in pages])


def test_two_snapshots_of_an_unchanged_page_keep_one_copy(tmp_path: Path) -> None:
    page = ("https://a.example/", f"Home | News\n{LONG}")
    other = ("https://b.example/", f"Home | News\nAnother story. {LONG}")
    _wet(tmp_path / "in/s1.warc.wet.gz", [page], "CC-MAIN-2019-09", 1)
    _wet(tmp_path / "in/s2.warc.wet.gz", [page, other], "CC-MAIN-2019-13", 2)
    report = run_source(_DedupOnly(), str(tmp_path / "in"), str(tmp_path / "out"), show_progress=False)
    docs = list(read_corpus(tmp_path / "out/commoncrawl"))
    assert [s["dropped"] for s in report.stats["stages"][1:]] == [{}, {"duplicate_page": 1}]
    kept = {d.meta["url"]: (d.meta["snapshot"], d.text) for d in docs}
    assert sorted(kept) == ["https://a.example/", "https://b.example/"]
    # Each snapshot hashes all its pages, the copy dropped too (as CCNet, then RedPajama): the
    # nav line is shared inside the second snapshot and goes from its pages; the copy of the
    # first page that is kept is whole only if it is the first snapshot's.
    assert kept["https://b.example/"] == ("CC-MAIN-2019-13", f"Another story. {LONG}")
    snapshot, text = kept["https://a.example/"]
    assert text == (f"Home | News\n{LONG}" if snapshot == "CC-MAIN-2019-09" else LONG)


def test_pages_under_300_characters_never_reach_the_hash_set(tmp_path: Path) -> None:
    # The short page shares a line with the long one: if it were hashed, the long page would lose it.
    _wet(tmp_path / "in/a.warc.wet.gz", [("https://a.example/", f"Shared line of text.\n{LONG}"),
                                         ("https://b.example/", "Shared line of text.\nToo short.")], "", 3)
    report = run_source(_DedupOnly(), str(tmp_path / "in"), str(tmp_path / "out"), show_progress=False)
    assert [s["name"] for s in report.stats["stages"]] == ["read", "min_chars", "line_dedup"]
    assert report.stats["stages"][1]["dropped"] == {"too_short": 1}
    (doc,) = read_corpus(tmp_path / "out/commoncrawl")
    assert doc.text == f"Shared line of text.\n{LONG}"


def test_a_record_id_repeated_in_a_file_keeps_the_first_record(tmp_path: Path) -> None:
    first = (b"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Target-URI: https://a.example/\r\n"
             b"WARC-Record-ID: <urn:uuid:same>\r\nContent-Length: 15\r\n\r\nTitle\nFirst one\r\n\r\n")
    again = first.replace(b"First one", b"Other one")
    (tmp_path / "a.warc.wet").write_bytes(first + again)
    items = list(CommonCrawl().read(str(tmp_path / "a.warc.wet")))
    assert [getattr(i, "text", i) for i in items] == ["First one", Skipped("duplicate_record_id")]
