"""A real HTTP server on 127.0.0.1 for the download tests: static files with Range support,
a log of requests, bodies cut halfway on request, and JSON routes for API listings."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest

from pipeline.cli import main
from pipeline.common.cli import parse


class Server:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files  # path (no leading slash, no query) -> body
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.headers: list[dict[str, str]] = []  # every request's headers
        self.cut_first: set[str] = set()  # paths whose next full GET is cut halfway
        self.redirects: dict[str, str] = {}  # path -> URL it answers 302 with
        self.always_cut: set[str] = set()  # paths whose every GET stops halfway through what it sends
        self.fail_first: dict[str, int] = {}  # path -> HTTP status its next GET answers (once)
        self.ignore_range = False  # answer 200 with the whole body even to a Range request
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.lstrip("/").split("?", 1)[0]
                server.requests.append((path, self.headers.get("Range")))
                server.headers.append(dict(self.headers))
                if path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path in server.fail_first:
                    self.send_error(server.fail_first.pop(path))
                    return
                body = server.files.get(path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range") and not server.ignore_range:
                    start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if (path in server.cut_first and start == 0) or path in server.always_cut:
                    server.cut_first.discard(path)
                    self.wfile.write(body[start : start + (len(body) - start) // 2])  # then the connection drops
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add_json(self, path: str, data: object) -> None:
        self.files[path] = json.dumps(data).encode()

    def gets(self, path: str) -> list[str | None]:
        """The Range header of every request of `path`, in order."""
        return [r for p, r in self.requests if p == path]

    def __enter__(self) -> "Server":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


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
