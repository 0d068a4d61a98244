"""An HTTP server on 127.0.0.1 for tests: a free port, GETs served on a thread inside a `with`
block. The download tests' file server and the hostile mirror are both one (a subclass says how
a path is answered)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LoopbackServer:
    """Serves while in a `with` block; `url` is its address. Subclasses implement `answer`."""

    def __init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                try:
                    server.answer(self, self.path.lstrip("/").split("?", 1)[0])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what a bounded reader does

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def answer(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        """Answer a GET of `path` (no leading slash, no query) through `handler`."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
