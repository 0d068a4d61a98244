"""Bytes from a server, read and checked before anything trusts them.

A mirror, a CDN or a hostile host can answer anything: a listing that never ends, a gzip
listing that inflates without bound, JSON of the wrong shape, sizes in Arabic-Indic digits
(`int()` accepts them), NUL bytes in names, `file://` URLs, an HTML error page with status
200. Every downloader reads what a server sent through these helpers, so each of those is one
`UserError` line naming the URL (or a counted skip, where the downloader says so), never a
traceback, never unbounded memory, and never a local file copied. A body that trickles (a byte
just inside every socket timeout) is dropped as a connection too slow to finish (`Pace`), so no
server can hold a download for ever: counted on every read of the response from its first byte
(the socket under urllib's handlers, `PacedHTTPHandler`), the status line, the headers and the
size lines of a chunked body included.
"""

from __future__ import annotations

import gzip
import http.client
import io
import json
import re
import socket
import time
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

from pipeline.common.errors import UserError, shown
from pipeline.formats.files import starts_with_markup

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
BLOCK = 1 << 20
SCHEMES = ("http", "https")
# A file name as publishers write them (enwiki-...-p1p41242.bz2, c4-train.00000-of-01024.json.gz):
# ASCII only, so no NUL, no separator, no look-alike digit, and never `.` or `..`.
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
# The longest real names are about 70 characters; a file system takes 255 bytes, and a name must
# leave room for what herd adds while it works (`.part.version`, `.fetched.tmp`).
NAME_LIMIT = 200
ASCII_DIGITS = re.compile(r"[0-9]{1,20}")  # str.isdigit() and int() also take '١٢٣' and '²'
HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64}
URL_TEXT = re.compile(r"[!-~]+")  # printable ASCII, no space: urllib refuses the rest mid-request


def refused(source: str, problem: str) -> UserError:
    return UserError(f"{source}: {problem}")


def plain(text: object, width: int = 80) -> str:
    """A server's short text (an HTTP reason, a parser's error) unquoted, on one line of
    printable ASCII, cut to `width`."""
    return "".join(c if " " <= c <= "~" else "?" for c in " ".join(str(text).split()))[:width]


def size_text(limit: int) -> str:
    for unit, name in ((GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if limit >= unit and limit % unit == 0:
            return f"{limit // unit} {name}"
    return f"{limit:,} bytes"


# --- values --------------------------------------------------------------------------------

def ascii_int(text: object) -> int | None:
    """A count written in ASCII digits (an XML size, a header), else None."""
    return int(text) if isinstance(text, str) and ASCII_DIGITS.fullmatch(text) else None


def json_count(value: object) -> int | None:
    """A JSON size: an integer, not a boolean (True is an int in Python), not negative."""
    return value if type(value) is int and value >= 0 else None


def hex_digest(value: object, algorithm: str) -> str | None:
    """`value` as a lower-case hex digest of `algorithm`, else None."""
    if not isinstance(value, str):
        return None
    digest = value.strip().lower()
    ok = len(digest) == HEX_LENGTHS[algorithm] and all(c in "0123456789abcdef" for c in digest)
    return digest if ok else None


def file_name(value: object) -> str | None:
    ok = isinstance(value, str) and len(value) <= NAME_LIMIT and FILE_NAME.fullmatch(value) and ".." not in value
    return value if ok else None


def relative_path(value: str) -> bool:
    """`a/b/c.gz`: file names joined by `/`, nothing absolute, no scheme, nothing climbing."""
    return bool(value) and all(file_name(part) for part in value.split("/"))


def url_problem(url: object) -> str | None:
    """Why `url` must not be requested (a `file://` URL, a control character), or None."""
    if not isinstance(url, str) or not URL_TEXT.fullmatch(url):
        return f"{shown(url)} is not a URL of printable ASCII characters"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in SCHEMES or not parts.netloc:
        return f"{shown(url)} is not an http(s) URL"
    return None


# --- reading --------------------------------------------------------------------------------

# The slowest a body may arrive, over each window: 128 KiB in 2 minutes (about 1 KiB/s), where
# the real mirrors send megabytes a second. The socket's timeout catches a server gone silent;
# this one a server that sends a byte now and then, which the timeout never sees.
PACE_WINDOW_S = 120.0
PACE_MIN_BYTES = 128 * KiB


class Pace:
    """Counts a body's bytes as they arrive; raises ConnectionError (retried, from where the body
    stopped, like a dropped connection) when a window of PACE_WINDOW_S brings fewer than
    PACE_MIN_BYTES."""

    def __init__(self) -> None:
        self.window_s, self.min_bytes = PACE_WINDOW_S, PACE_MIN_BYTES  # read now: tests lower them
        self._started, self._bytes = time.monotonic(), 0

    def add(self, count: int) -> None:
        self._bytes += count
        now = time.monotonic()
        if now - self._started < self.window_s:
            return
        if self._bytes < self.min_bytes:
            raise ConnectionError(f"{self._bytes:,} bytes in {now - self._started:.0f} s, slower than "
                                  f"{size_text(self.min_bytes)} in {self.window_s:g} s; dropped")
        self._started, self._bytes = now, 0


def paced_reads(stream: IO[bytes]) -> Callable[[int], bytes]:
    """`stream`'s read(n), returning what has arrived (at most n bytes; read1 where the stream has
    it) and raising ConnectionError when the body comes too slowly (Pace): a plain read(n) waits
    for n bytes, however long a trickle takes to bring them."""
    read = getattr(stream, "read1", None) or stream.read
    pace = Pace()

    def paced(n: int) -> bytes:
        block = read(n)
        pace.add(len(block))
        return block

    return paced


class _PacedRaw(io.RawIOBase):
    """A response's socket reads, each counted by one Pace: the status line, the headers and a
    chunked body's size lines too, which http.client reads a line at a time, however long a
    trickle takes to bring the line (a 64 KiB header line at a byte every few seconds is days)."""

    def __init__(self, raw: io.RawIOBase) -> None:
        self._raw, self._pace = raw, Pace()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int | None:  # type: ignore[no-untyped-def]
        count = self._raw.readinto(buffer)
        self._pace.add(count or 0)
        return count

    def close(self) -> None:
        self._raw.close()  # the socket's own reader: releases the socket's reference
        super().close()


class _PacedSocket:
    """A connection's socket whose responses are read through `_PacedRaw`."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def makefile(self, mode: str = "r", *args, **kwargs):  # type: ignore[no-untyped-def]
        if mode != "rb":
            return self._sock.makefile(mode, *args, **kwargs)
        return io.BufferedReader(_PacedRaw(self._sock.makefile("rb", buffering=0)))

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._sock, name)


class _PacedHTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = _PacedSocket(self.sock)  # type: ignore[assignment]


class _PacedHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()  # TCP, a proxy's tunnel and TLS on the real socket first
        self.sock = _PacedSocket(self.sock)  # type: ignore[assignment]


class PacedHTTPHandler(urllib.request.HTTPHandler):
    """urllib's http: handler, every response read at a pace (`Pace`) from its first byte on."""

    def http_open(self, req):  # type: ignore[no-untyped-def]
        return self.do_open(_PacedHTTPConnection, req)


class PacedHTTPSHandler(urllib.request.HTTPSHandler):
    """urllib's https: handler, every response read at a pace (`Pace`) from its first byte on."""

    def https_open(self, req):  # type: ignore[no-untyped-def]
        return self.do_open(_PacedHTTPSConnection, req, context=self._context)


def read_bounded(stream: IO[bytes], limit: int, source: str, what: str) -> bytes:
    """All of `stream`, refused (one line naming `source` and the limit) past `limit` bytes:
    a listing that never ends costs at most `limit` bytes of memory."""
    blocks, total = [], 0
    read = paced_reads(stream)
    while block := read(min(BLOCK, limit + 1 - total)):
        blocks.append(block)
        total += len(block)
        if total > limit:
            raise too_large(source, what, limit)
    return b"".join(blocks)


def too_large(source: str, what: str, limit: int) -> UserError:
    return refused(source, f"{what} is larger than {size_text(limit)}, the most herd reads of it; refused")


def bounded_lines(stream: IO[bytes], source: str, what: str, line_limit: int, total_limit: int) -> Iterator[bytes]:
    """The lines of `stream` (a gzip file, say) that are not empty, with at most `total_limit`
    bytes read in all and `line_limit` in one line: a listing that inflates without bound is
    refused, never held. Read a block at a time, so a flood of empty lines costs no Python loop."""
    total, rest = 0, b""
    while block := stream.read(BLOCK):
        total += len(block)
        if total > total_limit:
            raise too_large(source, f"{what} (decompressed)", total_limit)
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        if max(map(len, lines), default=0) > line_limit or len(rest) > line_limit:
            raise refused(source, f"{what} has a line longer than {size_text(line_limit)}; refused")
        yield from filter(None, lines)
    if rest:
        yield rest


def parse_json(data: bytes, source: str, what: str) -> object:
    """`data` as JSON, or one line saying it is not `what`: bad syntax, invalid UTF-8, nesting
    too deep (RecursionError), an integer of thousands of digits, NaN and Infinity."""

    def no_constant(name: str) -> object:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(data, parse_constant=no_constant)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e).splitlines()[0][:100]
        raise refused(source, f"not {what} ({reason})") from None


# --- formats --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Format:
    name: str
    suffix: str  # the last suffix of a file of this format that names it
    magic: bytes
    offset: int = 0


FORMATS = (
    Format("gzip", ".gz", b"\x1f\x8b"),
    Format("bz2", ".bz2", b"BZh"),
    Format("7z", ".7z", b"7z\xbc\xaf\x27\x1c"),
    Format("zip", ".zip", b"PK\x03\x04"),
    Format("parquet", ".parquet", b"PAR1"),
    Format("tar", ".tar", b"ustar", 257),
    Format("WARC", ".warc", b"WARC/"),
)
TEXT_SUFFIX = ".txt"
HEAD = 512


def format_of(name: str) -> Format | None:
    """The format named by the last suffix of `name` that names one (`x.tar.fetched`: tar)."""
    by_suffix = {f.suffix: f for f in FORMATS}
    for suffix in reversed(Path(name).suffixes):
        if suffix in by_suffix:
            return by_suffix[suffix]
    return None


def looks_like_text(head: bytes) -> bool:
    """An error page (HTML, XML, JSON or plain text) rather than binary data: no control byte
    but tab and line ends, and UTF-8 (a character cut at the end of the head allowed)."""
    if any(b < 0x20 and b not in b"\t\n\r\f" for b in head) or b"\x7f" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(head) - 3 and e.reason == "unexpected end of data"
    return True


def format_problem(path: Path, name: str) -> str | None:
    """Why the file at `path`, to be kept as `name`, is not of the format its name says (an error
    page served with status 200), or None. A binary format's file is refused when its magic bytes
    are missing and it reads as text; a `.txt` file when it is empty or starts with markup; a gzip
    file whose name says what it holds (`.warc.wet.gz`) when what it inflates to begins with text
    that is not of that format, or with nothing."""
    with open(path, "rb") as f:
        head = f.read(HEAD)
    if Path(name).suffix == TEXT_SUFFIX:
        if head and not starts_with_markup(head):
            return None
        return f"not a plain-text file: {_starts(head)} (an error page?)"
    kind = format_of(name)
    if kind is None:
        return None
    if head[kind.offset : kind.offset + len(kind.magic)] != kind.magic:
        return f"not a {kind.name} file: {_starts(head)} (an error page?)" if looks_like_text(head) else None
    inner = format_of(Path(name).stem) if kind.suffix == ".gz" else None
    if inner is None:
        return None
    # A server may gzip its error page (`.warc.wet.gz` holding "<html>...Not Found"): the gzip is whole,
    # so the head of what it inflates to must be of the format the name says inside.
    with open(path, "rb") as f:
        inflated = _inflated_head(f.read(BLOCK), inner.offset + HEAD)
    if inflated is None or inflated[inner.offset : inner.offset + len(inner.magic)] == inner.magic:
        return None  # bytes that do not inflate: gzip_problem's to name
    if not inflated or looks_like_text(inflated[:HEAD]):
        return f"not a {inner.name} file inside its gzip: {_starts(inflated[:HEAD])} (an error page?)"
    return None


def _inflated_head(data: bytes, size: int) -> bytes | None:
    """The first `size` bytes that gzip `data` inflates to (across members), or None when it is no gzip."""
    out = b""
    try:
        while data and len(out) < size:
            member = zlib.decompressobj(zlib.MAX_WBITS | 16)
            out += member.decompress(data, size - len(out))
            if not member.eof:
                break
            data = member.unused_data
    except zlib.error:
        return None
    return out


def _starts(head: bytes) -> str:
    return f"it starts with {shown(head[:40])}" if head else "it is empty"


def gzip_problem(path: Path, ratio: int = 32, floor: int = 256 * MiB) -> str | None:
    """Why the gzip file at `path` is not whole (cut short, a CRC that fails, bytes after its end),
    or None. Where no listing gives a size or checksum, the gzip trailer is the only witness of a
    file's end: a body sent without a Content-Length, or with one shorter than the body, ends
    wherever the server stopped. Inflating past `ratio` times the file's size (and past `floor`,
    which a small repetitive file may) refuses it: a bomb would take hours to check. Real WET
    files inflate about 4 times."""
    limit, total = max(path.stat().st_size * ratio, floor), 0
    try:
        with gzip.open(path, "rb") as f:
            while block := f.read(BLOCK):
                total += len(block)
                if total > limit:
                    return f"inflates to more than {size_text(limit)} (a decompression bomb?)"
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        return f"not a whole gzip file ({plain(e)})"
    return None
