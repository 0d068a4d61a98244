"""An HTTP server on 127.0.0.1 that answers what a broken or hostile mirror answers: bodies
that never end, error pages with status 200, a file that changes between two requests (a new
ETag), a server that ignores If-Range, headers that are no numbers. It also stands in for S3
(path-style GETs of `/<bucket>/<key>`), which boto3 speaks to through --endpoint-url."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Callable

from tests.loopback import LoopbackServer

Answer = Callable[[BaseHTTPRequestHandler], None]

ERROR_PAGE = (b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n"
              b"<body><h1>Service Unavailable</h1><p>Please try again later.</p></body></html>\n")


class HostileServer(LoopbackServer):
    """Routes (a path without its query) -> an Answer; every request is logged with its headers."""

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[str, Answer] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []

    def answer(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        self.requests.append((path, dict(handler.headers)))
        answer = self.routes.get(path)
        if answer is None:
            handler.send_error(404)
            return
        answer(handler)

    def gets(self, path: str) -> list[dict[str, str]]:
        """The headers of every request of `path`, in order."""
        return [headers for p, headers in self.requests if p == path]


def file(body: bytes, etag: str | None = None, cut_first: bool = False, honour_if_range: bool = True,
         headers: dict[str, str] | None = None) -> Answer:
    """`body`, with Range support. With `etag`, an If-Range naming another ETag gets the whole
    file (200), unless `honour_if_range` is False: then the range is served anyway, as a broken
    server does. `cut_first`: the first answer stops halfway and the connection drops."""
    cut = [cut_first]

    def answer(h: BaseHTTPRequestHandler) -> None:
        start = 0
        wanted = h.headers.get("Range")
        if wanted and not (honour_if_range and h.headers.get("If-Range") not in (None, etag)):
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
        if start and start >= len(body):
            h.send_error(416)
            return
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        if etag:
            h.send_header("ETag", etag)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            h.send_header("Content-Length", str(len(body) - start))
        h.end_headers()
        if cut[0]:
            cut[0] = False
            h.wfile.write(body[start : start + (len(body) - start) // 2])
            h.close_connection = True
            return
        h.wfile.write(body[start:])

    return answer


def endless(head: bytes = b"", block: bytes = b"a" * 65536) -> Answer:
    """`head`, then `block` again and again: no Content-Length, a body that never ends."""

    def answer(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.end_headers()
        h.wfile.write(head)
        while True:
            h.wfile.write(block)

    return answer


def with_link(body: bytes, next_url: str) -> Answer:
    """`body` with a `Link: <next_url>; rel="next"` header, as the Hub paginates."""

    def answer(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Link", f'<{next_url}>; rel="next"')
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return answer
