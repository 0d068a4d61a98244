"""`pipeline download commoncrawl` against an HTTP server on 127.0.0.1: listing, segments,
retries after a dropped connection, resume with a Range request, clear errors."""

from __future__ import annotations

import argparse
import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from pipeline.cli import main
from pipeline.commands import download
from pipeline.common.errors import UserError

SNAPSHOT = "CC-MAIN-2020-05"
SEGMENTS = [f"crawl-data/{SNAPSHOT}/segments/1/wet/CC-MAIN-2020-0{n}.warc.wet.gz" for n in range(3)]


class Server:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.cut_first: set[str] = set()  # paths whose first full GET is cut halfway
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.lstrip("/")
                server.requests.append((path, self.headers.get("Range")))
                body = server.files.get(path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if path in server.cut_first and start == 0:
                    server.cut_first.discard(path)
                    self.wfile.write(body[: len(body) // 2])  # then the connection drops
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "Server":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    files = {f"crawl-data/{SNAPSHOT}/wet.paths.gz": gzip.compress("\n".join(SEGMENTS).encode() + b"\n")}
    for n, path in enumerate(SEGMENTS):
        files[path] = bytes((i * 7 + n) % 251 for i in range(300_000 + n))
    with Server(files) as s:
        yield s


def _download(server: Server, out: Path, *extra: str) -> list[Path]:
    return download.download_commoncrawl(["--snapshot", SNAPSHOT, "--base-url", server.url, "--out", str(out),
                                          "--no-progress", *extra])


def test_fetches_the_listing_and_the_first_segments(server: Server, tmp_path: Path) -> None:
    written = _download(server, tmp_path, "--segments", "2")
    assert [p.name for p in written] == ["CC-MAIN-2020-00.warc.wet.gz", "CC-MAIN-2020-01.warc.wet.gz"]
    for path, name in zip(SEGMENTS, written):
        assert name.read_bytes() == server.files[path]
    assert not list(tmp_path.glob("*.part"))
    # Offset picks later files; files already there are not fetched again.
    before = len(server.requests)
    written = _download(server, tmp_path, "--segments", "2", "--offset", "1")
    assert [p.name for p in written] == ["CC-MAIN-2020-01.warc.wet.gz", "CC-MAIN-2020-02.warc.wet.gz"]
    assert [r[0] for r in server.requests[before:]] == [SEGMENTS[2]]


def test_a_dropped_connection_is_retried_from_where_it_stopped(server: Server, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download.time, "sleep", lambda s: None)
    server.cut_first.add(SEGMENTS[0])
    (written,) = _download(server, tmp_path)
    assert written.read_bytes() == server.files[SEGMENTS[0]]
    tries = [r for r in server.requests if r[0] == SEGMENTS[0]]
    half = len(server.files[SEGMENTS[0]]) // 2
    assert tries == [(SEGMENTS[0], None), (SEGMENTS[0], f"bytes={half}-")]


def test_a_partial_file_from_an_earlier_run_is_resumed(server: Server, tmp_path: Path) -> None:
    body = server.files[SEGMENTS[0]]
    (tmp_path / "CC-MAIN-2020-00.warc.wet.gz.part").write_bytes(body[:1000])
    (written,) = _download(server, tmp_path)
    assert written.read_bytes() == body
    assert (SEGMENTS[0], "bytes=1000-") in server.requests


def test_missing_snapshot_bad_name_and_other_sources_are_one_line_errors(server: Server, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(UserError, match="HTTP 404"):
        download.download_commoncrawl(["--snapshot", "CC-MAIN-1999-01", "--base-url", server.url,
                                       "--out", str(tmp_path), "--no-progress"])
    with pytest.raises(UserError, match="expected a name like CC-MAIN-2020-05"):
        download.download_commoncrawl(["--snapshot", "latest", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "books", "--anything"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pipeline download books: not supported yet" in err


def test_command_delegates_by_source(server: Server, tmp_path: Path) -> None:
    args = argparse.Namespace(source="commoncrawl", rest=["--snapshot", SNAPSHOT, "--base-url", server.url,
                                                          "--out", str(tmp_path), "--no-progress"])
    download.command(args)
    assert (tmp_path / "CC-MAIN-2020-00.warc.wet.gz").exists()
