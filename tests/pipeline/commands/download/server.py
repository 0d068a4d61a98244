"""A real HTTP server on 127.0.0.1 for the download tests: static files with Range support,
a log of requests, bodies cut halfway on request, and JSON routes for API listings."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest

from pipeline.cli import main
from pipeline.common.cli import parse
from tests.loopback import LoopbackServer


class Server(LoopbackServer):
    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__()
        self.files = files  # path (no leading slash, no query) -> body
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.headers: list[dict[str, str]] = []  # every request's headers
        self.cut_first: set[str] = set()  # paths whose next full GET is cut halfway
        self.redirects: dict[str, str] = {}  # path -> URL it answers 302 with
        self.always_cut: set[str] = set()  # paths whose every GET stops halfway through what it sends
        self.fail_first: dict[str, int] = {}  # path -> HTTP status its next GET answers (once)
        self.ignore_range = False  # answer 200 with the whole body even to a Range request
        self.lengths: dict[str, int | None] = {}  # path -> the Content-Length it claims (None: it sends none)
        self.chunked: set[str] = set()  # paths whose full GETs answer with a chunked body (cut: no final chunk)
        self.trickle_first: set[str] = set()  # paths whose next GET sends 16 bytes every 50 ms (320 bytes/s)
        # paths whose every GET trickles a byte every 50 ms where http.client reads a whole line: a
        # header line ("headers"), or the size line after a first chunk of a chunked body ("chunk")
        self.trickle_lines: dict[str, str] = {}

    def answer(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        self.requests.append((path, handler.headers.get("Range")))
        self.headers.append(dict(handler.headers))
        if path in self.redirects:
            handler.send_response(302)
            handler.send_header("Location", self.redirects[path])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if path in self.fail_first:
            handler.send_error(self.fail_first.pop(path))
            return
        body = self.files.get(path)
        if body is None:
            handler.send_error(404)
            return
        if path in self.trickle_lines:
            self._trickle_a_line(handler, self.trickle_lines[path], body)
            return
        if path in self.chunked and not handler.headers.get("Range"):
            self._send_chunked(handler, path, body)
            return
        start = 0
        if handler.headers.get("Range") and not self.ignore_range:
            start = int(handler.headers["Range"].removeprefix("bytes=").rstrip("-"))
            if start >= len(body):
                handler.send_error(416)
                return
            handler.send_response(206)
            handler.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            handler.send_response(200)
        length = self.lengths.get(path, len(body) - start)
        if length is not None:
            handler.send_header("Content-Length", str(length))
        handler.end_headers()
        if (path in self.cut_first and start == 0) or path in self.always_cut:
            self.cut_first.discard(path)
            handler.wfile.write(body[start : start + (len(body) - start) // 2])  # then the connection drops
            handler.close_connection = True
            return
        if path in self.trickle_first:
            self.trickle_first.discard(path)
            # Event.wait, not time.sleep: the tests make the downloader's sleeps (time.sleep) no-ops.
            pause = threading.Event()
            try:
                for at in range(start, len(body), 16):
                    handler.wfile.write(body[at : at + 16])
                    handler.wfile.flush()
                    pause.wait(0.05)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up on it
                pass
            handler.close_connection = True
            return
        handler.wfile.write(body[start:])

    def _send_chunked(self, handler: BaseHTTPRequestHandler, path: str, body: bytes) -> None:
        """`body` in chunks of 4 KiB; cut (cut_first, always_cut), the first half of them and no
        final zero-size chunk: a close between chunks that only the missing final chunk tells."""
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunks = [body[at : at + 4096] for at in range(0, len(body), 4096)]
        cut = path in self.cut_first or path in self.always_cut
        self.cut_first.discard(path)
        for chunk in chunks[: len(chunks) // 2] if cut else chunks:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if not cut:
            handler.wfile.write(b"0\r\n\r\n")
        handler.close_connection = True

    @staticmethod
    def _trickle_a_line(handler: BaseHTTPRequestHandler, where: str, body: bytes) -> None:
        if where == "headers":
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        else:
            first = body[:1000]
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n" % (len(first), first))
        pause = threading.Event()  # Event.wait, not time.sleep: the tests make the downloader's sleeps no-ops
        try:
            for _ in range(1200):  # a minute at most: the client gives up long before
                handler.wfile.write(b"0")
                handler.wfile.flush()
                pause.wait(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass
        handler.close_connection = True

    def add_json(self, path: str, data: object) -> None:
        self.files[path] = json.dumps(data).encode()

    def gets(self, path: str) -> list[str | None]:
        """The Range header of every request of `path`, in order."""
        return [r for p, r in self.requests if p == path]


def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries back off without waiting."""
    from pipeline.commands.download import fetch

    monkeypatch.setattr(fetch.time, "sleep", lambda s: None)


def cut_once(server: Server, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """The first GET of `path` stops halfway through its body; retries back off without waiting."""
    no_sleep(monkeypatch)
    server.cut_first.add(path)


def resumed_gets(body: bytes) -> list[str | None]:
    """The Range headers of a download of `body` cut halfway once: none, then one from the cut on."""
    return [None, f"bytes={len(body) // 2}-"]


def requested_by(server: Server, run: Callable[[], object]) -> list[str]:
    """The paths that `run()` requested from `server`, in order."""
    before = len(server.requests)
    run()
    return [p for p, _ in server.requests[before:]]


def cli_error(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """Run `pipeline ARGV`, which must end with exit status 2 and one line on stderr; that line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pipeline: error: "), err
    return err


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def download_with(downloader: ModuleType, argv: list[str]) -> list[Path]:
    """Run one downloader module as `pipeline download NAME ARGV` does; the files it wrote."""
    name = downloader.__name__.rsplit(".", 1)[-1]
    return downloader.run(parse(downloader, f"pipeline download {name}", argv))
