"""`pipeline download commoncrawl` against an HTTP server on 127.0.0.1: listing, segments,
retries after a dropped connection, resume with a Range request, clear errors."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterator

import pytest

from pipeline.cli import main
from pipeline.commands.download import commoncrawl as downloader
from pipeline.common.errors import UserError
from sources.commoncrawl import CommonCrawl
from tests.pipeline.commands.download.server import Server, cli_error, cut_once, resumed_gets, download_with

SNAPSHOT = "CC-MAIN-2020-05"
SEGMENTS = [f"crawl-data/{SNAPSHOT}/segments/1/wet/CC-MAIN-2020-0{n}.warc.wet.gz" for n in range(3)]


@pytest.fixture
def server() -> Iterator[Server]:
    files = {f"crawl-data/{SNAPSHOT}/wet.paths.gz": gzip.compress("\n".join(SEGMENTS).encode() + b"\n")}
    for n, path in enumerate(SEGMENTS):
        files[path] = bytes((i * 7 + n) % 251 for i in range(300_000 + n))
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
