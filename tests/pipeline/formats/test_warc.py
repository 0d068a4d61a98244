"""The WARC/WET reader on small hand-written files: record framing, gzip members cut short,
garbage and broken headers between records, records and HTTP bodies past their bounds (bombs
included), chunked, gzip and bare-LF HTTP responses, charsets, and the pages that come out.

Real third-party archives are read in tests/sources/test_commoncrawl_real.py; what the
CommonCrawl recipe makes of the pages (titles, columns, snapshots, dedup) in
tests/sources/test_commoncrawl*.py."""

from __future__ import annotations

import gzip
import random
import zlib
from collections import Counter
from pathlib import Path

import pytest

from pipeline.common.errors import InputError
from pipeline.engine.document import Skipped
from pipeline.formats.warc import WarcPage, dechunk, iter_warc_pages, iter_warc_records
from pipeline.text.html import html_page_to_text
from sources.samples.commoncrawl import http_response, warc_record, write_members
from tests.hostile.sources_data import wet_records

MiB = 1 << 20
PAGE = (b"<html><head><title>Boats of the harbour</title></head><body><article>"
        b"<p>The harbour built three wooden boats in the spring of that year.</p>"
        b"<p>They sailed along the coastal road for many years after.</p></article></body></html>")


def _items(tmp_path: Path, records: list[bytes], name: str = "a.warc.gz") -> list:
    write_members(tmp_path / name, records)
    return list(iter_warc_pages(str(tmp_path / name)))


def _read(path: Path) -> tuple[list[WarcPage], Counter, InputError | None]:
    """The pages of `path`, its skip reasons counted, and the error that ended it early if any."""
    pages, skipped = [], Counter()
    try:
        for item in iter_warc_pages(str(path)):
            if isinstance(item, Skipped):
                skipped[item.reason] += 1
            elif isinstance(item, WarcPage):
                pages.append(item)
    except InputError as e:
        return pages, skipped, e
    return pages, skipped, None


def _response(rng: random.Random, http: bytes, url: str = "https://a.example/") -> bytes:
    return warc_record(rng, "response", url, http, "application/http; msgtype=response")


def _chunked(body: bytes, sizes: list[int]) -> bytes:
    out, pos = b"", 0
    for size in sizes:
        out += f"{size:x}\r\n".encode() + body[pos : pos + size] + b"\r\n"
        pos += size
    return out + f"{len(body) - pos:x}\r\n".encode() + body[pos:] + b"\r\n0\r\n\r\n"


# --- records ---------------------------------------------------------------------------------


def test_truncated_gzip_member_keeps_the_records_before_it(tmp_path: Path) -> None:
    rng = random.Random("a.warc.wet.gz")
    # A WET record's first line is the page title.
    records = [warc_record(rng, "conversion", f"https://site.example/{i}", f"Title {i}\n{t}".encode(), "text/plain",
                           date=f"2019-03-0{i + 1}T00:00:00Z") for i, t in enumerate(["One.", "Two.", "Three."])]
    path = tmp_path / "a.warc.wet.gz"
    write_members(path, records)
    offset = sum(len(gzip.compress(r, compresslevel=6, mtime=0)) for r in records[:2])
    path.write_bytes(path.read_bytes()[: offset + 20])
    items = []
    with pytest.raises(InputError, match=f"gzip member at byte {offset} ends early"):
        for item in iter_warc_pages(str(path)):
            items.append(item)
    assert [getattr(i, "content", i) for i in items] == ["One.", "Two.", Skipped("truncated_gzip")]


def test_content_length_past_the_end_keeps_the_records_before(tmp_path: Path) -> None:
    good = wet_records(2)
    liar = (b"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Record-ID: <urn:uuid:liar>\r\n"
            b"Content-Length: 999999999\r\n\r\nonly a few bytes")
    (tmp_path / "a.warc.wet").write_bytes(b"".join(good) + liar)
    pages, skipped, error = _read(tmp_path / "a.warc.wet")
    assert len(pages) == 2
    assert skipped == {"truncated_gzip": 1}
    assert error is not None
    assert error.problem == "truncated input: the last record ends early; the records before it are kept"


@pytest.mark.parametrize("name, data, problem", [
    ("a.warc.wet.gz", b"", "empty file"),  # a download that never started
    ("a.warc", b"", "empty file"),
    ("a.warc.gz", gzip.compress(b"", mtime=0), "empty file"),  # a gzip member of nothing
    ("a.warc.wet.gz", gzip.compress(b"\r\n\r\n\n", mtime=0), "no WARC record in it"),
    ("a.warc", b"\r\n" * (3 << 19), "no WARC record in it"),  # 3 MB: the part read is dropped on the way
    # A server's error page saved under the file's name: named by its first bytes.
    ("a.warc.wet.gz", gzip.compress(b"<html><title>503 Service Unavailable</title></html>", mtime=0),
     "not a WARC file: it starts with '<html><title>503 Service Unavailable</ti' (an error page?)"),
    ("a.warc", b"\r\nHTTP/1.1 200 OK\r\n\r\nWARC/1.0",
     "not a WARC file: it starts with 'HTTP/1.1 200 OK\\r\\n\\r\\nWARC/1.0' (an error page?)"),
])
def test_a_file_that_starts_with_no_record_is_an_input_error_not_a_file_of_no_pages(
        tmp_path: Path, name: str, data: bytes, problem: str) -> None:
    (tmp_path / name).write_bytes(data)
    pages, skipped, error = _read(tmp_path / name)
    assert (pages, skipped) == ([], Counter())
    assert error is not None and (error.path, error.problem) == (str(tmp_path / name), problem)


def test_a_file_of_broken_records_only_is_read_as_their_counted_reasons(tmp_path: Path) -> None:
    (tmp_path / "a.warc").write_bytes(b"WARC/1.0\r\nno colon here\r\n\r\nbody\r\n\r\n")
    pages, skipped, error = _read(tmp_path / "a.warc")
    assert (pages, skipped, error) == ([], Counter({"broken_warc_header": 1}), None)


def test_a_broken_warc_header_is_skipped_and_counted(tmp_path: Path) -> None:
    rng = random.Random(2)
    records = [
        warc_record(rng, "conversion", "https://a.example/", b"A\nBefore.", "text/plain"),
        b"WARC/1.0\r\nWARC-Type conversion\r\nContent-Length: lots\r\n\r\nlost body\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nnot a warc record\r\n\r\n",
        warc_record(rng, "conversion", "https://b.example/", b"B\nAfter.", "text/plain"),
    ]
    (tmp_path / "plain.wet").write_bytes(b"".join(records))  # one stream: the reader must resync itself
    write_members(tmp_path / "members.wet.gz", records)
    for name in ("plain.wet", "members.wet.gz"):
        items = list(iter_warc_pages(str(tmp_path / name)))
        assert [getattr(i, "content", i) for i in items] == ["Before.", Skipped("broken_warc_header"), "After."]


def test_garbage_and_broken_headers_between_records_are_skipped(tmp_path: Path) -> None:
    good = wet_records(3)
    garbage = [
        b"\x00\x01\x02 binary noise with no header at all\r\n\r\n",
        b"WARC/1.0\r\nWARC-Type: conversion\r\nContent-Length: -5\r\n\r\n",
        b"WARC/1.0\r\nWARC-Type: conversion\r\nContent-Length: 12abc\r\n\r\n",
        b"WARC/1.0\r\nno colon in this line\r\nContent-Length: 3\r\n\r\nabc",
    ]
    (tmp_path / "a.warc.wet").write_bytes(good[0] + b"\r\n\r\n".join(garbage) + b"\r\n\r\n" + good[1] + good[2])
    pages, skipped, error = _read(tmp_path / "a.warc.wet")
    assert len(pages) == 3
    # A Content-Length that is not ASCII digits says nothing of where the record ends.
    assert skipped == {"broken_warc_header": 2, "bad_content_length": 2}
    assert error is None


def test_a_content_length_in_other_digits_is_skipped_and_the_file_goes_on(tmp_path: Path) -> None:
    rng = random.Random(6)
    superscript = (b"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Record-ID: <urn:uuid:x>\r\n"
                   + "Content-Length: ²\r\n\r\nA\nlost\r\n\r\n".encode())
    good = warc_record(rng, "conversion", "https://b.example/", b"Title\nKept text.", "text/plain")
    (tmp_path / "plain.wet").write_bytes(superscript + good)
    items = list(iter_warc_pages(str(tmp_path / "plain.wet")))
    assert items[0] == Skipped("bad_content_length") and items[1].content == "Kept text."


def test_a_record_id_repeated_in_a_file_keeps_the_first_record(tmp_path: Path) -> None:
    first = (b"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Target-URI: https://a.example/\r\n"
             b"WARC-Record-ID: <urn:uuid:same>\r\nContent-Length: 15\r\n\r\nTitle\nFirst one\r\n\r\n")
    again = first.replace(b"First one", b"Other one")
    (tmp_path / "a.warc.wet").write_bytes(first + again)
    items = list(iter_warc_pages(str(tmp_path / "a.warc.wet")))
    assert [getattr(i, "content", i) for i in items] == ["First one", Skipped("duplicate_record_id")]


def test_invalid_utf8_is_replaced_and_counted(tmp_path: Path) -> None:
    rng = random.Random(1)
    bad = warc_record(rng, "conversion", "https://x.example/", "Menu\nCaf\xe9 au lait".encode("latin-1"), "text/plain")
    good = warc_record(rng, "conversion", "https://y.example/", "Menu\nCafé au lait".encode(), "text/plain")
    write_members(tmp_path / "a.wet.gz", [bad, good])
    pages = list(iter_warc_pages(str(tmp_path / "a.wet.gz")))
    assert [p.content for p in pages] == ["Caf\ufffd au lait", "Café au lait"]
    assert [p.invalid_utf8 for p in pages] == [True, False]


# --- bounds ----------------------------------------------------------------------------------


def test_oversized_records_headers_and_http_bodies_are_skipped(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.formats.warc as warc

    monkeypatch.setattr(warc, "MAX_RECORD_BYTES", 5000)
    monkeypatch.setattr(warc, "MAX_HEADER_BYTES", 2000)
    monkeypatch.setattr(warc, "MAX_HTTP_BODY_BYTES", 5000)
    rng = random.Random(4)
    bomb = http_response(b"", "text/html").replace(b"\r\n\r\n", b"\r\nContent-Encoding: gzip\r\n\r\n") + \
        gzip.compress(bytes(100_000))
    records = [
        warc_record(rng, "conversion", "https://a.example/", b"x" * 6000, "text/plain"),  # over the record bound
        warc_record(rng, "response", "https://b.example/", bomb, "application/http"),  # inflates past the bound
        warc_record(rng, "conversion", "https://c.example/", b"C\nKept.", "text/plain"),
        b"WARC/1.0\r\n" + b"X-Padding: aaaa\r\n" * 500,  # a header that never ends
    ]
    write_members(tmp_path / "a.warc.gz", records)
    items = list(iter_warc_pages(str(tmp_path / "a.warc.gz")))
    assert [getattr(i, "content", i) for i in items] == [
        Skipped("record_too_large"), Skipped("http_body_too_large"), "Kept.", Skipped("broken_warc_header")]


@pytest.mark.slow
def test_a_gzip_bomb_record_is_skipped(tmp_path: Path) -> None:
    head = (b"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Record-ID: <urn:uuid:bomb>\r\n"
            b"Content-Length: " + str(300 * MiB).encode() + b"\r\n\r\n")
    path = tmp_path / "a.warc.wet.gz"
    write_members(path, wet_records(1))
    with open(path, "ab") as f:
        packer = zlib.compressobj(1, zlib.DEFLATED, 31)
        f.write(packer.compress(head))
        for _ in range(300):
            f.write(packer.compress(bytes(MiB)))
        f.write(packer.flush())
    pages, skipped, _ = _read(path)
    assert len(pages) == 1
    assert skipped == {"record_too_large": 1}


def test_an_http_gzip_bomb_is_skipped(tmp_path: Path) -> None:
    rng = random.Random(0)
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # 64 MiB of zeros as a ~64 KB gzip body
    bomb = b"".join(packer.compress(bytes(MiB)) for _ in range(64)) + packer.flush()
    payload = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n\r\n" + bomb
    write_members(tmp_path / "a.warc.gz", [warc_record(rng, "response", "https://a.example/", payload,
                                                       "application/http")] + wet_records(1))
    pages, skipped, _ = _read(tmp_path / "a.warc.gz")
    assert len(pages) == 1
    assert skipped == {"http_body_too_large": 1}


@pytest.mark.slow
def test_a_header_that_never_ends_is_bounded(tmp_path: Path) -> None:
    with open(tmp_path / "a.warc.wet", "wb") as f:
        f.write(b"".join(wet_records(1)) + b"WARC/1.0\r\nWARC-Type: conversion\r\n")
        for _ in range(64):  # 64 MiB: a thousand times the 64 KiB a header may take
            f.write(b"X-Padding: " + b"a" * (MiB - 13) + b"\r\n")
    pages, skipped, _ = _read(tmp_path / "a.warc.wet")
    assert len(pages) == 1
    assert skipped == {"broken_warc_header": 1}


# --- HTTP responses and charsets ---------------------------------------------------------------


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
    assert [(p.content, p.is_html) for p in items] == [(PAGE.decode(), True)] * 2
    # The text the page makes (pipeline/text/html.py) keeps no chunk size either.
    texts = [html_page_to_text(p.content)[1].strip() for p in items]
    text = ("The harbour built three wooden boats in the spring of that year.\n\n"
            "They sailed along the coastal road for many years after.")
    assert texts == [text, text]
    assert all("7d" not in t.split() and "1e" not in t.split() for t in texts)


def test_bare_lf_http_headers_and_inflated_gzip_bodies_are_read(tmp_path: Path) -> None:
    rng = random.Random(3)
    html = "<html><head><title>鞄</title></head><body><p>日本語のページです。</p></body></html>"
    http = (b"HTTP/1.1 200 OK\nContent-Type: text/html; charset=EUC-JP\nContent-Encoding: gzip\n"
            b"Content-Length: 999\n\n") + html.encode("euc-jp")
    (page,) = _items(tmp_path, [_response(rng, http)])
    assert page.content == html and not page.invalid_utf8
    title, text = html_page_to_text(page.content)
    assert title == "鞄" and text.strip() == "日本語のページです。"


def test_url_angle_brackets_from_wget_are_stripped(tmp_path: Path) -> None:
    rng = random.Random(2)
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + PAGE
    (page,) = _items(tmp_path, [_response(rng, http, url="<https://soldaini.example/>")])
    assert page.url == "https://soldaini.example/"


def test_a_dns_record_is_not_a_page(tmp_path: Path) -> None:
    rng = random.Random(4)
    dns = warc_record(rng, "response", "dns:www.archive.org", b"20080430204825\nwww.archive.org. 589 IN A 207.241.229.39\n",
                      "text/dns")
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + PAGE
    items = _items(tmp_path, [dns, _response(rng, http)])
    assert len(items) == 1 and isinstance(items[0], WarcPage)


@pytest.mark.parametrize("charset", ["base64", "hex", "rot13", "zlib", "idna"])
def test_a_charset_that_is_no_text_encoding_is_skipped_and_the_file_goes_on(tmp_path: Path, charset: str) -> None:
    rng = random.Random(5)
    bad = f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset={charset}\r\n\r\n".encode() + PAGE
    good = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + PAGE
    items = _items(tmp_path, [_response(rng, bad), _response(rng, good)])
    assert items[0] == Skipped("charset_not_text") and isinstance(items[1], WarcPage)


def test_a_record_without_id_or_with_a_bad_http_response_is_skipped(tmp_path: Path) -> None:
    rng = random.Random(0)
    no_id = (b"WARC/1.0\r\nWARC-Type: conversion\r\nContent-Length: 4\r\n\r\ntext")
    records = [
        no_id,
        warc_record(rng, "response", "https://a.example/", b"no http head at all", "application/http"),
        warc_record(rng, "response", "https://a.example/", http_response(b"<p>x</p>", "text/html", "500 Oops"),
                    "application/http"),
        warc_record(rng, "response", "https://a.example/",
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n\r\n\x1f\x8bnot gzip",
                    "application/http"),
        # Declared gzip but stored inflated (ClueWeb09 does this): read as it is.
        warc_record(rng, "response", "https://a.example/",
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n\r\n<p>stored inflated</p>",
                    "application/http"),
    ]
    write_members(tmp_path / "a.warc.gz", records + wet_records(1))
    pages, skipped, _ = _read(tmp_path / "a.warc.gz")
    assert len(pages) == 2 and pages[0].content == "<p>stored inflated</p>"
    assert html_page_to_text(pages[0].content)[1].strip() == "stored inflated"
    assert skipped == {"broken_warc_header": 1, "broken_http_response": 2, "http_status_not_200": 1}


# --- Content-Encoding: br, zstd and several codings (Browsertrix and other modern crawlers) ----


def _encoded(rng: random.Random, body: bytes, coding: str) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Encoding: {coding}\r\n\r\n"
    return _response(rng, head.encode() + body)


def test_brotli_zstd_and_stacked_codings_are_decoded_before_extraction(tmp_path: Path) -> None:
    import brotli
    import zstandard

    rng = random.Random(6)
    zstd = zstandard.ZstdCompressor()
    items = _items(tmp_path, [
        _encoded(rng, brotli.compress(PAGE), "br"),
        _encoded(rng, zstd.compress(PAGE), "zstd"),
        # Listed in the order applied: gzip first, then brotli; decoded brotli first.
        _encoded(rng, brotli.compress(gzip.compress(PAGE)), "gzip, br"),
        _encoded(rng, gzip.compress(zstd.compress(PAGE)), "ZSTD ,gzip"),
        _encoded(rng, brotli.compress(PAGE), "identity, br"),
    ])
    assert all(isinstance(p, WarcPage) and p.content == PAGE.decode() for p in items), items
    texts = {html_page_to_text(p.content)[1].strip() for p in items}
    assert texts == {"The harbour built three wooden boats in the spring of that year.\n\n"
                     "They sailed along the coastal road for many years after."}


def test_unknown_codings_and_broken_streams_are_counted_never_read_as_text(tmp_path: Path) -> None:
    import brotli

    rng = random.Random(7)
    records = [
        _encoded(rng, PAGE, "compress"),  # LZW: not decoded here
        _encoded(rng, brotli.compress(PAGE), "br, x-custom"),
        _encoded(rng, b"\x8b\x02\x80not a brotli stream at all", "br"),
        _encoded(rng, b"(\xb5/\xfd not a zstd frame", "zstd"),
        _encoded(rng, brotli.compress(PAGE), "zstd"),  # declared wrongly: a zstd decoder sees no frame
    ]
    write_members(tmp_path / "a.warc.gz", records + wet_records(1))
    pages, skipped, error = _read(tmp_path / "a.warc.gz")
    assert error is None and len(pages) == 1 and not pages[0].is_html  # only the WET record
    assert skipped == {"unknown_content_encoding": 2, "broken_http_response": 3}


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip, br"])
def test_brotli_and_zstd_bombs_are_bounded(tmp_path: Path, coding: str) -> None:
    import brotli
    import zstandard

    rng = random.Random(8)
    zeros = bytes(64 * MiB)  # four times the 16 MiB an HTTP body may inflate to
    bomb = {"br": lambda: brotli.compress(zeros, quality=1),
            "zstd": lambda: zstandard.ZstdCompressor(level=1).compress(zeros),
            # The bomb inside: brotli gives back a 64 KB gzip stream that inflates past the bound.
            "gzip, br": lambda: brotli.compress(gzip.compress(zeros, compresslevel=1), quality=1)}[coding]()
    assert len(bomb) < MiB
    write_members(tmp_path / "a.warc.gz", [_encoded(rng, bomb, coding)] + wet_records(1))
    pages, skipped, _ = _read(tmp_path / "a.warc.gz")
    assert len(pages) == 1 and skipped == {"http_body_too_large": 1}


def test_header_fields_are_stripped_of_ascii_white_space_only(tmp_path: Path) -> None:
    """Names lower-cased, values stripped of space, tab, CR, LF, VT and FF (what a byte-wise
    reading strips) and nothing else: a file separator at a value's edge stays, and a value in
    UTF-8 is read as UTF-8, with U+FFFD for a byte that is not."""
    body = b"Title\nText."
    fields = {
        "ascii.wet": (b"WARC-Target-URI: \x1chttps://a.example/ \t\x0b\r\n", "\x1chttps://a.example/"),
        "utf8.wet": ("WARC-Target-URI:  https://ü.example/\x0c\r\n".encode(), "https://ü.example/"),
        "latin1.wet": (b"WARC-Target-URI: https://\xfc.example/\r\n", "https://\ufffd.example/"),
    }
    for name, (line, url) in fields.items():
        record = (b"WARC/1.0\r\nWARC-TYPE:conversion\r\nwarc-record-id: <urn:uuid:1>\r\n" + line
                  + b"Content-Length: %d\r\n\r\n" % len(body) + body + b"\r\n\r\n")
        (tmp_path / name).write_bytes(record)
        [found] = list(iter_warc_records(str(tmp_path / name)))
        assert found.headers == {"warc-type": "conversion", "warc-record-id": "<urn:uuid:1>",
                                 "warc-target-uri": url, "content-length": str(len(body))}
        assert found.body == body
