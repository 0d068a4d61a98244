"""WARC and WET files (CommonCrawl's and other archives'): their records, and the pages in them.

`iter_warc_records(path)` yields the records of a file, gzip (CommonCrawl writes one gzip
member per record) or plain, from a local path or an fsspec URL. `iter_warc_pages(path)` turns
them into pages: the text of a WET `conversion` record, whose first line is the page title (as
CCNet reads WET), or the HTML of a WARC `response` record holding an HTTP 200 HTML page,
de-chunked, inflated and decoded by its declared charset. Turning that HTML into text is not
the reader's step: pipeline/text/html.py `html_page_to_text` does it.

Bounded: the file is read a megabyte at a time and never held whole; a WARC header may take
64 KiB (MAX_HEADER_BYTES), a record 16 MiB (MAX_RECORD_BYTES) and an HTTP body may inflate to
16 MiB (MAX_HTTP_BODY_BYTES): CommonCrawl truncates payloads at 1 MiB, so nothing real comes
near these. A record past a bound is streamed past, not held in memory.

A file that holds no WARC record (no bytes, blank lines, or a first line that is no
"WARC/<version>": a server's error page saved under the file's name) raises `InputError`: the
run counts it as a failed input, never as a file of no pages.

Broken records are counted as `Skipped(reason)` and reading goes on with the next record: a
WARC header that cannot be parsed or runs past its bound (`broken_warc_header`) and a
Content-Length that is not ASCII digits, `²` (`bad_content_length`) say nothing of where the
record ends, so reading resumes at the next line starting `WARC/<digit>`; a page record without
a WARC-Record-ID (`broken_warc_header` too); a record or HTTP body over its bound
(`record_too_large`, `http_body_too_large`); an HTTP response with no header end or a corrupt
gzip, brotli or zstd body (`broken_http_response`), another status than 200 (`http_status_not_200`), no HTML
(`not_html`), a declared charset that is a codec but no text encoding, base64, rot13, idna
(`charset_not_text`); a body in a Content-Encoding not known here (`unknown_content_encoding`:
gzip, deflate, br and zstd are decoded, several in reverse order, each bounded like the body);
a page repeating an earlier page's record id (`duplicate_record_id`: the
first keeps it). Invalid bytes are decoded as U+FFFD and the page says so (`invalid_utf8`).
A truncated gzip member, or a last record that ends early, yields `Skipped("truncated_gzip")`
after every complete record before it, then raises `InputError` saying where (the compressed
byte offset of the member, or the last record); corrupt gzip data raises `InputError` with the
member's offset.

Archives as they are: chunked HTTP bodies are decoded when they really are chunked (some
archives keep the header over a joined body); wget's `<https://...>` target URIs lose their
brackets; HTTP headers ending in a bare LF (ClueWeb09) are read; a body declared gzip but
stored inflated is read as stored; a `dns:` record is no page.

Why the record layer is written here and not FastWARC's (resiliparse's authors' reader, in the
venv, 2.0.1): it is faster, and bench/commoncrawl.py compares against it, but it cannot keep the
drops above counted. Probed on the hand-written files of tests/pipeline/formats/test_warc.py:
a gzip member cut short ends its ArchiveIterator (and its GzipReader) silently, as if the file
had ended, so the cut is neither reported nor placed; a Content-Length past the end of the file
yields the short body as the whole record; a header line without a colon is dropped and its
record kept, a line starting with a space is glued onto the previous value; a header it cannot
parse raises OSError and ends the file (or, in quirks_mode, yields a record of no type, with no
reason); record offsets are member offsets only when each record is its own gzip member. What
it would save is small: on the bench's WET file of 8,001 records, ArchiveIterator reads them
(headers as a dict, bodies as bytes) in 0.050 CPU seconds and this reader in 0.080, 1 to 2% of
the per-document path (langid, SentencePiece and KenLM take most of it); GzipReader gunzips
the file in 0.033 s against 0.051 s here, and would still need this reader's check of the
last member. On the real WARC files (bench/commoncrawl.py --real) this reader and the page
steps after it run at 0.87 of FastWARC + resiliparse + fastText.
"""

from __future__ import annotations

import codecs
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

import brotli
import fsspec
import zstandard

from pipeline.common.errors import InputError, shown
from pipeline.engine.document import Skipped

CHUNK_BYTES = 1 << 20
WINDOW = 16 << 10
# Guards against records that lie or explode: CommonCrawl truncates payloads at 1 MiB, so
# nothing real comes near these.
MAX_HEADER_BYTES = 64 << 10
MAX_RECORD_BYTES = 16 << 20
MAX_HTTP_BODY_BYTES = 16 << 20


# --- WARC records -------------------------------------------------------------------------


@dataclass(slots=True)
class WarcRecord:
    headers: dict[str, str]
    body: bytes

    @property
    def type(self) -> str:
        return self.headers.get("warc-type", "")


class _Truncated(Exception):
    def __init__(self, offset: int) -> None:
        self.offset = offset


def _decompressed_chunks(raw: IO[bytes], gzipped: bool) -> Iterator[bytes]:
    """The file's bytes, gunzipped member by member; raises `_Truncated(offset)` with the
    compressed offset of a member that ends before its end-of-stream marker.

    CommonCrawl writes one small gzip member per record. The decompressor is fed a window of
    WINDOW bytes at a time: zlib copies whatever follows a member's end into `unused_data`,
    and a window (not the whole 1 MB read) keeps that copy small.
    """
    if not gzipped:
        while chunk := raw.read(CHUNK_BYTES):
            yield chunk
        return
    member_start = 0  # compressed offset of the member being decoded
    base = 0  # compressed offset of `data[0]`
    decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
    fed_member = False
    data = b""
    while chunk := raw.read(CHUNK_BYTES):
        data = data + chunk if data else chunk
        view = memoryview(data)
        pos = 0
        while pos < len(data):
            window = view[pos : pos + WINDOW]
            try:
                out = decoder.decompress(window)
            except zlib.error as e:
                raise InputError("", f"corrupt gzip data in the member at byte {member_start} ({e})") from None
            fed_member = True
            if out:
                yield out
            if decoder.eof:
                pos += len(window) - len(decoder.unused_data)
                member_start = base + pos
                decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
                fed_member = False
            else:
                pos += len(window)
        view.release()
        base += len(data)
        data = b""
    if fed_member and not decoder.eof:
        raise _Truncated(member_start)


_WARC_MAGIC = b"WARC/"
_BROKEN = Skipped("broken_warc_header")
_BAD_LENGTH = Skipped("bad_content_length")
_RECORD_START = re.compile(rb"(?:^|\n)WARC/\d")


def iter_warc_records(path: str) -> Iterator[WarcRecord | Skipped]:
    """WARC records of `path`; broken headers give `Skipped("broken_warc_header")`.

    A file of no bytes (or gzip members of none) raises `InputError` "empty file", and one of
    blank lines only "no WARC record in it", and one that does not start with "WARC/" (an
    error page saved under the file's name) "not a WARC file": a WARC file starts with a record,
    and one without is a download that failed, counted as a failed input, never read as a file
    of no pages or of one broken record. A truncated gzip member yields
    `Skipped("truncated_gzip")` and then raises `InputError` naming the byte offset, after every
    complete record before it has been yielded.
    """
    gzipped = path.endswith(".gz")
    try:
        raw_file = fsspec.open(path, "rb").open()
    except FileNotFoundError:
        raise InputError(path, "file does not exist") from None
    with raw_file as raw:
        chunks = _decompressed_chunks(raw, gzipped)
        buffer = bytearray()
        pos = 0
        exhausted = False

        def more() -> bool:
            nonlocal exhausted, buffer, pos
            if exhausted:
                return False
            try:
                chunk = next(chunks)
            except StopIteration:
                exhausted = True
                return False
            if pos > CHUNK_BYTES:  # drop what was consumed, so the buffer stays small
                del buffer[:pos]
                pos = 0
            buffer += chunk
            return True

        def skip_to_next_record(start: int) -> None:
            """Move `pos` to the next line starting "WARC/<digit>" at or after `start`, holding
            no more than a chunk of the file while looking (a broken record may be huge)."""
            nonlocal pos, buffer
            while True:
                found = _RECORD_START.search(buffer, start)
                if found:
                    pos = found.start() + (1 if buffer[found.start()] == 0x0A else 0)
                    return
                keep = max(start, len(buffer) - 16)  # a marker may straddle two chunks
                del buffer[:keep]
                pos = start = 0
                if not more():
                    pos = len(buffer)
                    return

        def skip_bytes(start: int, count: int) -> None:
            """Move `pos` past `count` bytes from `start` without holding them."""
            nonlocal pos, buffer
            while len(buffer) - start < count:
                count -= len(buffer) - start
                del buffer[:]
                pos = start = 0
                if not more():
                    raise _Truncated(-1)
            pos = start + count

        any_record = False
        try:
            while True:
                # Skip the blank lines between records.
                while True:
                    while pos < len(buffer) and buffer[pos] in b"\r\n":
                        pos += 1
                    if pos < len(buffer) or not more():
                        break
                if pos >= len(buffer):
                    # Consumed bytes are dropped only as a chunk is added: an empty buffer read nothing.
                    if not any_record:
                        raise InputError(path, "no WARC record in it" if buffer else "empty file")
                    return
                if not any_record:
                    # A WARC file starts with a record. One that does not is another file under a
                    # WARC name (a server's error page saved by a download tool, a listing): a
                    # failed input named with its first bytes, not one broken record of no pages.
                    while len(buffer) - pos < len(_WARC_MAGIC) and more():
                        pass
                    if not buffer.startswith(_WARC_MAGIC, pos):
                        head = bytes(buffer[pos : pos + 40])
                        raise InputError(path, f"not a WARC file: it starts with {shown(head)} (an error page?)")
                any_record = True  # every way on from here yields a record or a reason
                header_end = buffer.find(b"\r\n\r\n", pos)
                while header_end < 0 and len(buffer) - pos <= MAX_HEADER_BYTES and more():
                    header_end = buffer.find(b"\r\n\r\n", pos)
                if header_end < 0 or header_end - pos > MAX_HEADER_BYTES:
                    yield _BROKEN  # a header that never ends: look for the next record
                    skip_to_next_record(pos + 1)
                    continue
                headers = _parse_header(bytes(buffer[pos:header_end]))
                body_start = header_end + 4
                if headers is None:
                    yield _BROKEN
                    skip_to_next_record(body_start)
                    continue
                if not _ascii_digits(headers.get("content-length", "")):
                    yield _BAD_LENGTH  # where the record ends is unknown: look for the next one
                    skip_to_next_record(body_start)
                    continue
                length = int(headers["content-length"])
                if length > MAX_RECORD_BYTES:
                    skip_bytes(body_start, length)  # a file that ends first is a truncation instead
                    yield Skipped("record_too_large")
                    continue
                while len(buffer) < body_start + length and more():
                    pass
                if len(buffer) < body_start + length:
                    raise _Truncated(-1)
                body = bytes(buffer[body_start : body_start + length])
                pos = body_start + length
                yield WarcRecord(headers, body)
        except _Truncated as e:
            yield Skipped("truncated_gzip")
            where = f"the gzip member at byte {e.offset}" if e.offset >= 0 else "the last record"
            raise InputError(path, f"truncated input: {where} ends early; the records before it are kept") from None
        except InputError as e:
            raise InputError(path, e.problem) from None


_BYTES_WHITESPACE = " \t\n\r\x0b\x0c"  # what bytes.strip() strips (str.strip() also strips \x1c-\x1f)


def _parse_header(block: bytes) -> dict[str, str] | None:
    """Header fields by lower-cased name, or None when the block is not a usable WARC header."""
    if block.isascii():
        # Nearly every header: decoded once, the same fields as line by line below.
        lines = block.decode("ascii").split("\r\n")
        if not lines[0].startswith("WARC/"):
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                return None
            headers[name.strip(_BYTES_WHITESPACE).lower()] = value.strip(_BYTES_WHITESPACE)
        return headers if "warc-type" in headers else None
    byte_lines = block.split(b"\r\n")
    if not byte_lines[0].startswith(b"WARC/"):
        return None
    headers = {}
    for byte_line in byte_lines[1:]:
        name_bytes, colon_bytes, value_bytes = byte_line.partition(b":")
        if not colon_bytes:
            return None
        headers[name_bytes.strip().lower().decode("latin-1")] = value_bytes.strip().decode("utf-8", "replace")
    return headers if "warc-type" in headers else None


def _ascii_digits(value: str) -> bool:
    """"123" but not "²" or "١٢": str.isdigit accepts those, and int() then fails on some."""
    return value.isascii() and value.isdigit()


# --- records to pages --------------------------------------------------------------------


@dataclass(slots=True)
class WarcPage:
    """A WET conversion record's text, or the HTML page of a WARC response, decoded to str."""

    record_id: str  # WARC-Record-ID without its angle brackets
    url: str  # WARC-Target-URI without wget's angle brackets; "" when the record has none
    date: str | None  # WARC-Date
    title: str  # a WET record's first line; "" for HTML, whose title is in the page
    content: str  # the WET text after the title line, or the HTML
    is_html: bool
    invalid_utf8: bool  # bytes invalid in the page's charset were replaced with U+FFFD


def iter_warc_pages(path: str) -> Iterator[WarcPage | WarcRecord | Skipped]:
    """Pages of `path`, and the reasons records were not pages (see the module docstring).

    `warcinfo` records are handed out as they are: what they say of the file (a crawl's name
    in `isPartOf`) is the caller's to read. Requests, metadata, `dns:` lookups and other
    protocols' responses are no pages and pass unseen.
    """
    seen_ids: set[str] = set()
    for record in iter_warc_records(path):
        if isinstance(record, Skipped) or record.type == "warcinfo":
            yield record
            continue
        page = _page(record)
        if isinstance(page, WarcPage):
            # Record ids are the pages' ids: a file that repeats one (a writer's bug) keeps
            # its first record under it.
            if page.record_id in seen_ids:
                yield Skipped("duplicate_record_id")
                continue
            seen_ids.add(page.record_id)
        if page is not None:
            yield page


def _page(record: WarcRecord) -> WarcPage | Skipped | None:
    """A page from a WET conversion or WARC HTML response; None for records that are not
    pages (warcinfo, request, metadata, a `dns:` lookup)."""
    kind = record.type
    url = record.headers.get("warc-target-uri", "")
    if url.startswith("<") and url.endswith(">"):  # wget writes <https://...>
        url = url[1:-1]
    if kind == "conversion":
        text, invalid = decode(record.body)
        title, content = _split_title(text)
        is_html = False
    elif kind == "response":
        content_type = record.headers.get("content-type", "application/http").lower()
        if url.startswith("dns:") or "http" not in content_type:
            return None  # a DNS lookup or another protocol's response: no page
        page = http_html(record.body)
        if isinstance(page, Skipped):
            return page
        content, invalid = page
        title, is_html = "", True
    else:
        return None
    record_id = record.headers.get("warc-record-id", "").strip("<>")
    if not record_id:
        return _BROKEN
    return WarcPage(record_id, url, record.headers.get("warc-date"), title, content, is_html, invalid)


def _split_title(text: str) -> tuple[str, str]:
    """CCNet's WET reading: the first line of a conversion record is the page title."""
    title, _, rest = text.strip().partition("\n")
    return title.strip(), rest


# --- HTTP bodies and charsets -------------------------------------------------------------

_CHARSET = re.compile(rb"charset=[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)
# Codecs Python knows that are not character sets: a page declaring one is not text we can read.
_NOT_CHARSETS = frozenset({"idna", "punycode"})
_HTTP_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,8})[ \t]*(?:;[^\r\n]*)?\r?\n")


class CharsetNotText(ValueError):
    """A declared charset that names a codec but not a text encoding (base64, rot13, idna)."""


def decode(data: bytes, charset: str | None = None) -> tuple[str, bool]:
    """Text of `data` and whether invalid bytes had to be replaced with U+FFFD.

    An unknown charset falls back to UTF-8; one that Python knows but that is no text
    encoding raises `CharsetNotText`.
    """
    encoding = "utf-8"
    if charset:
        try:
            info = codecs.lookup(charset)
        except LookupError:
            info = None
        if info is not None:
            if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
                raise CharsetNotText(charset)
            encoding = info.name
    try:
        return data.decode(encoding), False
    except UnicodeDecodeError:
        return data.decode(encoding, "replace"), True


def dechunk(body: bytes) -> bytes | None:
    """The body of an HTTP `Transfer-Encoding: chunked` message, or None when `body` is not
    a chunked stream (some archives declare chunked but store the joined body).

    A capture cut inside its last chunk keeps what it has; anything that does not parse as
    chunk sizes and chunks of those sizes means the body was not chunked.
    """
    parts: list[bytes] = []
    pos = 0
    while True:
        size_line = _CHUNK_SIZE.match(body, pos)
        if size_line is None:
            return b"".join(parts) if parts and pos >= len(body) else None
        size = int(size_line.group(1), 16)
        start = size_line.end()
        if size == 0:
            return b"".join(parts)
        chunk = body[start : start + size]
        parts.append(chunk)
        if len(chunk) < size:  # the capture ends inside this chunk, or this was never one
            return b"".join(parts) or None
        pos = start + size
        if body.startswith(b"\r\n", pos):
            pos += 2
        elif body.startswith(b"\n", pos):
            pos += 1
        elif pos < len(body):
            return None


def _http_headers(head: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    """Status line and lower-cased header fields; lines may end in CRLF or a bare LF (ClueWeb09)."""
    lines = head.split(b"\n")
    fields: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip().lower()
    return lines[0].strip(), fields


def http_html(payload: bytes) -> tuple[str, bool] | Skipped:
    """(HTML, invalid_utf8) of an HTTP 200 response holding an HTML page, or why not:
    de-chunked, inflated and decoded by its declared charset."""
    head_end = _HTTP_HEADER_END.search(payload)
    if head_end is None:
        return Skipped("broken_http_response")
    status_line, fields = _http_headers(payload[: head_end.start()])
    body = payload[head_end.end() :]
    parts = status_line.split()
    if len(parts) < 2 or parts[1] != b"200":
        return Skipped("http_status_not_200")
    content_type = fields.get(b"content-type", b"")
    if b"html" not in content_type:
        return Skipped("not_html")
    if b"chunked" in fields.get(b"transfer-encoding", b""):
        body = dechunk(body) or body
    decoded = decode_content(body, fields.get(b"content-encoding", b""))
    if isinstance(decoded, Skipped):
        return decoded
    body = decoded
    charset = _CHARSET.search(content_type) or _CHARSET.search(body[:2048])
    try:
        return decode(body, charset.group(1).decode("ascii") if charset else None)
    except CharsetNotText:
        return Skipped("charset_not_text")


def decode_content(body: bytes, content_encoding: bytes) -> bytes | Skipped:
    """A body as its `Content-Encoding` header value lists it (lower-cased), decoded: the codings
    were applied in the order listed, so they are undone last first ("gzip, br": brotli, then
    gzip). Each one is bounded by MAX_HTTP_BODY_BYTES (`http_body_too_large`); a broken stream is
    `broken_http_response`, a coding not known here `unknown_content_encoding`: never text of
    compressed bytes."""
    codings = [c.strip() for c in content_encoding.split(b",")]
    for coding in reversed([c for c in codings if c and c != b"identity"]):
        decoder = _DECODERS.get(coding)
        if decoder is None:
            return Skipped("unknown_content_encoding")
        decoded = decoder(body)
        if isinstance(decoded, Skipped):
            return decoded
        body = decoded
    return body


def _inflate(body: bytes, raw_deflate: bool) -> bytes | Skipped:
    """A body declared gzip or deflate, inflated; as stored when it is not compressed at all
    (archives such as ClueWeb09 keep the header but store the inflated page)."""
    gzip_or_zlib = body[:2] == b"\x1f\x8b" or (len(body) >= 2 and body[0] == 0x78 and (body[0] << 8 | body[1]) % 31 == 0)
    if not gzip_or_zlib and not raw_deflate:
        return body
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32 if gzip_or_zlib else -zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(body, MAX_HTTP_BODY_BYTES)
    except zlib.error:
        return Skipped("broken_http_response") if gzip_or_zlib else body
    if inflater.unconsumed_tail:  # more than the bound: a bomb, not a page
        return Skipped("http_body_too_large")
    return inflated


def _unbrotli(body: bytes) -> bytes | Skipped:
    decompressor = brotli.Decompressor()
    try:
        # Output stops growing at the bound: a bomb costs the bound, not its size.
        decoded = decompressor.process(body, output_buffer_limit=MAX_HTTP_BODY_BYTES + 1)
    except brotli.error:
        return Skipped("broken_http_response")
    if len(decoded) > MAX_HTTP_BODY_BYTES or not decompressor.can_accept_more_data():
        return Skipped("http_body_too_large")
    # A stream cut short (a truncated capture) keeps what it has, as a cut gzip body does.
    return decoded


def _unzstd(body: bytes) -> bytes | Skipped:
    reader = zstandard.ZstdDecompressor().stream_reader(body, read_across_frames=True)
    try:
        decoded = reader.read(MAX_HTTP_BODY_BYTES + 1)  # at most the bound and one byte, bomb or not
    except zstandard.ZstdError:
        return Skipped("broken_http_response")
    if len(decoded) > MAX_HTTP_BODY_BYTES:
        return Skipped("http_body_too_large")
    return decoded


_DECODERS: dict[bytes, Callable[[bytes], bytes | Skipped]] = {
    b"gzip": lambda body: _inflate(body, raw_deflate=False),
    b"x-gzip": lambda body: _inflate(body, raw_deflate=False),
    b"deflate": lambda body: _inflate(body, raw_deflate=True),
    b"br": _unbrotli,
    b"zstd": _unzstd,
}
