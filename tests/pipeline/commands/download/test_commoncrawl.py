"""`pipeline download commoncrawl` against an HTTP server on 127.0.0.1: listing, segments,
retries after a dropped connection, resume with a Range request, clear errors."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterator

import pytest

from pipeline.cli import main
from pipeline.commands.download import commoncrawl as downloader
from pipeline.commands.download.untrusted import gzip_problem
from pipeline.common.errors import UserError
from sources.commoncrawl import CommonCrawl
from tests.pipeline.commands.download.server import Server, cli_error, cut_once, resumed_gets, download_with

SNAPSHOT = "CC-MAIN-2020-05"
SEGMENTS = [f"crawl-data/{SNAPSHOT}/segments/1/wet/CC-MAIN-2020-0{n}.warc.wet.gz" for n in range(3)]


def _wet(n: int) -> bytes:
    """A WET file as Common Crawl writes it: one gzip member per record (a downloaded WET is inflated to
    its end, so a stand-in must be real gzip)."""
    records = (f"WARC/1.0\r\nWARC-Type: conversion\r\n\r\npage {n}.{i} ".encode() + bytes(range(256)) * 40
               for i in range(30))
    return b"".join(gzip.compress(r, mtime=0) for r in records)


@pytest.fixture
def server() -> Iterator[Server]:
    files = {f"crawl-data/{SNAPSHOT}/wet.paths.gz": gzip.compress("\n".join(SEGMENTS).encode() + b"\n")}
    for n, path in enumerate(SEGMENTS):
        files[path] = _wet(n)
    with Server(files) as s:
        yield s


def _download(server: Server, out: Path, *extra: str) -> list[Path]:
    return download_with(downloader, ["--snapshot", SNAPSHOT, "--base-url", server.url, "--out", str(out), "--no-progress", *extra])


def test_fetches_the_listing_and_the_first_segments(server: Server, tmp_path: Path) -> None:
    written = _download(server, tmp_path, "--segments", "2")
    assert [p.name for p in written] == ["CC-MAIN-2020-00.warc.wet.gz", "CC-MAIN-2020-01.warc.wet.gz"]
    for path, name in zip(SEGMENTS, written):
        assert name.read_bytes() == server.files[path]
    assert not list(tmp_path.glob("*.part"))
    assert CommonCrawl().list_inputs(str(tmp_path)) == [str(p) for p in written]
    # Offset picks later files; files already there are not fetched again.
    before = len(server.requests)
    written = _download(server, tmp_path, "--segments", "2", "--offset", "1")
    assert [p.name for p in written] == ["CC-MAIN-2020-01.warc.wet.gz", "CC-MAIN-2020-02.warc.wet.gz"]
    assert [r[0] for r in server.requests[before:]] == [SEGMENTS[2]]


def test_a_dropped_connection_is_retried_from_where_it_stopped(server: Server, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cut_once(server, monkeypatch, SEGMENTS[0])
    (written,) = _download(server, tmp_path)
    assert written.read_bytes() == server.files[SEGMENTS[0]]
    assert server.gets(SEGMENTS[0]) == resumed_gets(server.files[SEGMENTS[0]])


def test_a_partial_file_from_an_earlier_run_is_resumed(server: Server, tmp_path: Path) -> None:
    body = server.files[SEGMENTS[0]]
    (tmp_path / "CC-MAIN-2020-00.warc.wet.gz.part").write_bytes(body[:1000])
    (written,) = _download(server, tmp_path)
    assert written.read_bytes() == body
    assert server.gets(SEGMENTS[0]) == ["bytes=1000-"]


def test_missing_snapshot_bad_name_and_unknown_sources_are_one_line_errors(server: Server, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    err = cli_error(["download", "commoncrawl", "--snapshot", "CC-MAIN-1999-01", "--base-url", server.url,
                     "--out", str(tmp_path), "--no-progress"], capsys)
    assert "wet.paths.gz: HTTP 404" in err
    with pytest.raises(UserError, match="expected a name like CC-MAIN-2020-05"):
        download_with(downloader, ["--snapshot", "latest", "--out", str(tmp_path)])
    err = cli_error(["download", "books3", "--anything"], capsys)
    assert "pipeline download books3: unknown source" in err


def test_command_delegates_by_source(server: Server, tmp_path: Path) -> None:
    main(["download", "commoncrawl", "--snapshot", SNAPSHOT, "--base-url", server.url, "--out", str(tmp_path),
          "--no-progress"])
    assert (tmp_path / "CC-MAIN-2020-00.warc.wet.gz").exists()


# --- a WET file has no published size or checksum: its gzip trailer is the witness of its end ---

@pytest.mark.parametrize("length", [None, "half"], ids=["no Content-Length", "a Content-Length of half the body"])
def test_a_wet_file_cut_where_the_server_stopped_is_never_kept(server: Server, tmp_path: Path, length: str | None,
                                                               capsys: pytest.CaptureFixture) -> None:
    """Without a Content-Length the body ends where the connection closes, and with a short one where
    the header says: both look whole to HTTP."""
    path, body = SEGMENTS[0], server.files[SEGMENTS[0]]
    server.lengths[path] = None if length is None else len(body) // 2
    if length is None:
        server.cut_first.add(path)
    err = cli_error(["download", "commoncrawl", "--snapshot", SNAPSHOT, "--base-url", server.url, "--out",
                     str(tmp_path), "--no-progress", "--retries", "0"], capsys)
    assert err == (f"pipeline: error: {server.url}/{path}: not a whole gzip file (Compressed file ended before the "
                   f"end-of-stream marker was reached); removed, rerun to fetch it again\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{SNAPSHOT}.wet.paths.gz"]
    server.lengths.clear()
    (written,) = _download(server, tmp_path)
    assert written.read_bytes() == body


def test_a_listing_sent_without_content_length_is_judged_by_its_gzip_trailer(server: Server, tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture) -> None:
    """The list of WET paths has no published size either: cut where the server stopped, it is
    refused before it takes its name; whole, its trailer is the witness of its end."""
    listing = f"crawl-data/{SNAPSHOT}/wet.paths.gz"
    server.lengths[listing] = None
    server.cut_first.add(listing)
    err = cli_error(["download", "commoncrawl", "--snapshot", SNAPSHOT, "--base-url", server.url, "--out",
                     str(tmp_path), "--no-progress"], capsys)
    assert err == (f"pipeline: error: {server.url}/{listing}: sent without a Content-Length and not a whole gzip file "
                   f"(Compressed file ended before the end-of-stream marker was reached): it may be cut short; "
                   f"removed, rerun to fetch it again\n")
    assert list(tmp_path.iterdir()) == []
    (written,) = _download(server, tmp_path)
    assert written.read_bytes() == server.files[SEGMENTS[0]]
    assert (tmp_path / f"{SNAPSHOT}.wet.paths.gz").read_bytes() == server.files[listing]


def test_a_gzipped_error_page_served_as_a_wet_file_is_refused_and_never_kept(server: Server, tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture) -> None:
    """A whole gzip file whose name says WARC inside, holding an HTML page: the gzip trailer checks out,
    so only what it inflates to can tell."""
    path, body = SEGMENTS[0], server.files[SEGMENTS[0]]
    server.files[path] = gzip.compress(b"<html><body>503 Service Unavailable</body></html>\n", mtime=0)
    err = cli_error(["download", "commoncrawl", "--snapshot", SNAPSHOT, "--base-url", server.url, "--out",
                     str(tmp_path), "--no-progress"], capsys)
    assert err == (f"pipeline: error: {server.url}/{path}: not a WARC file inside its gzip: it starts with "
                   f"'<html><body>503 Service Unavailable</bod' (an error page?); removed\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{SNAPSHOT}.wet.paths.gz"]
    # One already under its final name (kept by an older herd) is named and fetched again.
    dest = tmp_path / "CC-MAIN-2020-00.warc.wet.gz"
    dest.write_bytes(server.files[path])
    server.files[path] = body
    (written,) = _download(server, tmp_path)
    assert written.read_bytes() == body
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{dest}: not a WARC file inside its gzip: it starts with '<html><body>503 Service Unavailable</bod' "
        "(an error page?); fetched again")


def test_a_cut_wet_file_under_its_final_name_is_fetched_again(server: Server, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    body = server.files[SEGMENTS[0]]
    _download(server, tmp_path)
    dest = tmp_path / "CC-MAIN-2020-00.warc.wet.gz"
    dest.write_bytes(body[: len(body) - 100])  # as an older herd kept a body cut without a Content-Length
    before, _ = len(server.requests), capsys.readouterr()
    (written,) = _download(server, tmp_path)
    assert written.read_bytes() == body
    assert [p for p, _ in server.requests[before:]] == [SEGMENTS[0]]
    assert capsys.readouterr().out.splitlines() == [
        f"{dest}: not a whole gzip file (Compressed file ended before the end-of-stream marker was reached); "
        f"fetched again", f"1 WET file(s) of {SNAPSHOT} in {tmp_path}"]


@pytest.mark.parametrize("lines, problem", [
    ([f"crawl-data/{SNAPSHOT}/{SNAPSHOT}.wet.paths.gz"],
     f"path 1: 'crawl-data/{SNAPSHOT}/{SNAPSHOT}.wet.paths.gz' is not a relative path of a WET file"),
    (["crawl-data/run.sh"], "path 1: 'crawl-data/run.sh' is not a relative path of a WET file"),
    (["a/" + "x" * 300 + ".warc.wet.gz"], "path 1: 'a/" + "x" * 54 + "... is not a relative path of a WET file"),
    (["a/CC.warc.wet.gz", "b/CC.warc.wet.gz"], "path 2: 'CC.warc.wet.gz' is named twice"),
], ids=["the listing's own name", "not a WET file", "a name of 300 characters", "one name twice"])
def test_a_listing_naming_what_is_no_wet_file_of_its_own_is_refused(server: Server, tmp_path: Path,
                                                                    lines: list[str], problem: str,
                                                                    capsys: pytest.CaptureFixture) -> None:
    listing = f"crawl-data/{SNAPSHOT}/wet.paths.gz"
    server.files[listing] = gzip.compress("\n".join(lines).encode() + b"\n", mtime=0)
    err = cli_error(["download", "commoncrawl", "--snapshot", SNAPSHOT, "--base-url", server.url, "--out",
                     str(tmp_path), "--no-progress", "--segments", "2"], capsys)
    assert err == f"pipeline: error: {server.url}/{listing}: {problem}\n"
    assert [p for p, _ in server.requests] == [listing]
    assert list(tmp_path.iterdir()) == []  # the refused listing is not kept for the next run


def test_checking_a_gzip_file_that_inflates_without_bound_stops_at_its_limit(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.warc.wet.gz"
    bomb.write_bytes(gzip.compress(b"\0" * (8 << 20), mtime=0))  # 8 KB that inflate to 8 MiB
    assert len(bomb.read_bytes()) < 16_000
    assert gzip_problem(bomb, ratio=32, floor=1 << 20) == "inflates to more than 1 MiB (a decompression bomb?)"
    assert gzip_problem(bomb, ratio=32, floor=16 << 20) is None
