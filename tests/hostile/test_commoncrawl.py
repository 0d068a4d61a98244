"""CommonCrawl WET/WARC files that lie or explode: records whose Content-Length runs past the
file, garbage between records, headers that never end, gzip bombs in a record or in an HTTP
body. Read through the engine with the reader alone (the filters need trained models)."""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import pytest

from sources.samples.commoncrawl import http_response, warc_record, write_members
from tests.hostile.helpers import CommonCrawlReader, failures, read_drops, run
from tests.hostile.sources_data import wet_records

MiB = 1 << 20


def _run(tmp_path: Path) -> tuple[dict, list]:
    return run(CommonCrawlReader(), tmp_path / "raw", tmp_path / "out")


def test_content_length_past_the_end_keeps_the_records_before(tmp_path: Path) -> None:
    good = wet_records(2)
    liar = (b"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Record-ID: <urn:uuid:liar>\r\n"
            b"Content-Length: 999999999\r\n\r\nonly a few bytes")
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw/a.warc.wet").write_bytes(b"".join(good) + liar)
    stats, docs = _run(tmp_path)
    assert len(docs) == 2
    assert read_drops(stats) == {"truncated_gzip": 1}
    assert failures(stats)["a.warc.wet"] == "truncated input: the last record ends early; the records before it are kept"


def test_garbage_and_broken_headers_between_records_are_skipped(tmp_path: Path) -> None:
    good = wet_records(3)
    garbage = [
        b"\x00\x01\x02 binary noise with no header at all\r\n\r\n",
        b"WARC/1.0\r\nWARC-Type: conversion\r\nContent-Length: -5\r\n\r\n",
        b"WARC/1.0\r\nWARC-Type: conversion\r\nContent-Length: 12abc\r\n\r\n",
        b"WARC/1.0\r\nno colon in this line\r\nContent-Length: 3\r\n\r\nabc",
    ]
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw/a.warc.wet").write_bytes(good[0] + b"\r\n\r\n".join(garbage) + b"\r\n\r\n" + good[1] + good[2])
    stats, docs = _run(tmp_path)
    assert len(docs) == 3
    # A Content-Length that is not ASCII digits says nothing of where the record ends.
    assert read_drops(stats) == {"broken_warc_header": 2, "bad_content_length": 2}
    assert failures(stats) == {}


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
    write_members(tmp_path / "raw/a.warc.gz", records + wet_records(1))
    stats, docs = _run(tmp_path)
    assert len(docs) == 2 and docs[0].text == "stored inflated"
    assert read_drops(stats) == {"broken_warc_header": 1, "broken_http_response": 2, "http_status_not_200": 1}


@pytest.mark.slow
def test_a_gzip_bomb_record_is_skipped(tmp_path: Path) -> None:
    head = (b"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Record-ID: <urn:uuid:bomb>\r\n"
            b"Content-Length: " + str(300 * MiB).encode() + b"\r\n\r\n")
    path = tmp_path / "raw/a.warc.wet.gz"
    write_members(path, wet_records(1))
    with open(path, "ab") as f:
        packer = zlib.compressobj(1, zlib.DEFLATED, 31)
        f.write(packer.compress(head))
        for _ in range(300):
            f.write(packer.compress(bytes(MiB)))
        f.write(packer.flush())
    stats, docs = _run(tmp_path)
    assert len(docs) == 1
    assert read_drops(stats) == {"record_too_large": 1}


def test_an_http_gzip_bomb_is_skipped(tmp_path: Path) -> None:
    rng = random.Random(0)
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # 64 MiB of zeros as a ~64 KB gzip body
    bomb = b"".join(packer.compress(bytes(MiB)) for _ in range(64)) + packer.flush()
    payload = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n\r\n" + bomb
    write_members(tmp_path / "raw/a.warc.gz", [warc_record(rng, "response", "https://a.example/", payload,
                                                           "application/http")] + wet_records(1))
    stats, docs = _run(tmp_path)
    assert len(docs) == 1
    assert read_drops(stats) == {"http_body_too_large": 1}


@pytest.mark.slow
def test_a_header_that_never_ends_is_bounded(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    with open(tmp_path / "raw/a.warc.wet", "wb") as f:
        f.write(b"".join(wet_records(1)) + b"WARC/1.0\r\nWARC-Type: conversion\r\n")
        for _ in range(64):  # 64 MiB: a thousand times the 64 KiB a header may take
            f.write(b"X-Padding: " + b"a" * (MiB - 13) + b"\r\n")
    stats, docs = _run(tmp_path)
    assert len(docs) == 1
    assert read_drops(stats) == {"broken_warc_header": 1}
