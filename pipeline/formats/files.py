"""Opening raw inputs, local or remote (fsspec URLs), compressed or not."""

from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import json
import zlib
from typing import IO, Any, Callable, Iterator

import fsspec
import pyarrow as pa

from pipeline.common.errors import InputError, shown
from pipeline.common.files import single_read
from pipeline.engine.document import Skipped


@contextlib.contextmanager
def open_binary(path: str) -> Iterator[IO[bytes]]:
    """The decompressed bytes of `path`; compression inferred from the name (.gz, .bz2, .xz, .zst)."""
    try:
        with fsspec.open(path, "rb", compression="infer") as f:
            yield f
    except FileNotFoundError:
        raise InputError(path, "file does not exist") from None
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, expected a file") from None


def read_capped(path: str, limit: int) -> bytes:
    """All the (decompressed) bytes of `path`, or an InputError when it holds more than `limit`:
    at most `limit` + 1 bytes are ever read, so a huge file or a decompression bomb costs no more."""
    with open_binary(path) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise InputError(path, f"larger than {limit / (1 << 20):g} MB")
    return data


@contextlib.contextmanager
def open_text(path: str) -> Iterator[IO[str]]:
    """Text lines of `path` as UTF-8; invalid bytes become U+FFFD instead of failing the file, and
    a byte-order mark at the start of the file is dropped (utf-8-sig), as `bounded_lines` does."""
    with open_binary(path) as raw:
        yield io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")


# What reading a damaged Parquet file raises besides OSError: pyarrow's own errors (ArrowInvalid,
# ArrowIndexError: "Index 102 out of bounds"), and a UnicodeDecodeError from a column path's bytes.
PARQUET_ERRORS = (pa.ArrowException, OSError, ValueError, IndexError)
JSON_TOO_DEEP = "json_too_deep"
MALFORMED_JSON = "malformed_json"
# An integer literal past Python's int-from-string limit (4,300 digits): valid JSON, and one
# such line must not end its file (json.loads raises a plain ValueError on it).
NUMBER_TOO_LONG = "json_number_too_long"


def decoded_json(line: str) -> Any:
    """The JSON value of one line, or a `Skipped` saying why it has none: not JSON
    (MALFORMED_JSON), nested deeper than the decoder recurses (`[[[[...` 100,000 deep raises
    RecursionError), or an integer too long to convert (a plain ValueError). Every reader of raw
    JSON lines decodes through here, so that no hostile line ends its file."""
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return Skipped(MALFORMED_JSON)
    except RecursionError:
        return Skipped(JSON_TOO_DEEP)
    except ValueError:
        return Skipped(NUMBER_TOO_LONG)
# One JSON record a line: a line longer than this is skipped with a reason, never held whole.
MAX_LINE_BYTES = 64 << 20
READ_BYTES = 1 << 20
UTF8_BOM = b"\xef\xbb\xbf"


def bounded_lines(stream: IO[bytes], max_bytes: int = MAX_LINE_BYTES) -> Iterator[bytes | None]:
    """The lines of `stream`, split on b"\\n" (dropped), read 1 MiB at a time.

    A line longer than `max_bytes` comes out as None: its bytes are thrown away as they arrive,
    so a single 200 MB line, or a newline-free decompression bomb, never sits in memory. Line
    numbers (positions in this sequence) match those of iterating over the file.

    Every JSON-lines reader reads its lines here, so this is where a UTF-8 byte-order mark at the
    start of the file is dropped: Windows tools write one, and left on, it makes the first
    record malformed JSON. Only there: a byte-order mark anywhere else is the line's data.
    """
    parts: list[bytes] = []  # the start of a line that goes on in the next read
    size = 0
    overlong = False
    read = single_read(stream)  # when a gzip stream turns out to be cut, the lines before it are out
    for chunk in _chunks_without_bom(read):
        pieces = chunk.split(b"\n")
        for piece in pieces[:-1]:  # each of these ends a line
            if overlong or size + len(piece) > max_bytes:
                yield None
            elif parts:
                parts.append(piece)
                yield b"".join(parts)
            else:
                yield piece
            parts, size, overlong = [], 0, False
        tail = pieces[-1]
        if not overlong and tail:
            size += len(tail)
            if size > max_bytes:
                parts, overlong = [], True
            else:
                parts.append(tail)
    if overlong:
        yield None
    elif parts:
        yield b"".join(parts)


def _chunks_without_bom(read: Callable[[int], bytes]) -> Iterator[bytes]:
    """The file's bytes in reads of READ_BYTES, without a UTF-8 byte-order mark at its very start
    (its first read may hold fewer than the mark's 3 bytes: reads go on until it holds them)."""
    head = b""
    while len(head) < len(UTF8_BOM) and (chunk := read(READ_BYTES)):
        head += chunk
    yield head.removeprefix(UTF8_BOM)
    while chunk := read(READ_BYTES):
        yield chunk


def text_lines(path: str, max_bytes: int = MAX_LINE_BYTES) -> Iterator[str | None]:
    """Lines of `path` as UTF-8 (invalid bytes become U+FFFD); None for a line over `max_bytes`.
    An empty file is an `InputError`: counted as a failed input, never silently nothing."""
    empty = True
    with open_binary(path) as raw:
        try:
            for line in bounded_lines(raw, max_bytes):
                empty = False
                yield None if line is None else line.decode("utf-8", "replace")
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:  # lines read before the damage are kept
            raise InputError(path, f"truncated or corrupt compressed file ({e})") from None
    if empty:
        raise InputError(path, "empty file")


def json_rows(path: str, max_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, Any] | Skipped]:
    """(line number, decoded JSON value) for each non-blank line of a JSON-lines file, or a
    `Skipped` for a line too long, not JSON, or nested deeper than the decoder recurses
    (`[[[[...` 100,000 deep raises RecursionError: one hostile line must not end the run).
    The caller judges the value's shape.

    A file none of whose lines is JSON (a server's error page saved under the file's name) is,
    after its lines are counted, an `InputError` naming its first bytes: a failed input, not a
    file of malformed records."""
    any_json, first = False, None
    for number, line in enumerate(text_lines(path, max_bytes)):
        if line is None:
            yield Skipped("line_too_long")
            continue
        if not line.strip():
            continue
        value = decoded_json(line)
        if isinstance(value, Skipped) and value.reason == MALFORMED_JSON:
            first = line if first is None else first
            yield value
            continue
        any_json = True  # JSON, even nested past the decoder's reach or holding a number too long
        yield value if isinstance(value, Skipped) else (number, value)
    if first is not None and not any_json:
        raise not_json_lines(path, first)


def not_json_lines(path: str, first: str | bytes) -> InputError:
    """The error of a JSON-lines file none of whose lines is JSON, `first` its first line's start."""
    starts = shown(first[:40])
    return InputError(path, f"not JSON lines: no line of it is JSON; it starts with {starts} (an error page?)")


def text_rows(path: str, max_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, dict] | Skipped]:
    """`json_rows` narrowed to JSON objects with a string `text`; any other line is a `Skipped`."""
    for item in json_rows(path, max_bytes):
        if isinstance(item, Skipped):
            yield item
        elif not isinstance(item[1], dict) or not isinstance(item[1].get("text"), str):
            yield Skipped("no_text_field")
        else:
            yield item


def starts_with_markup(head: bytes) -> bool:
    """Whether a plain-text file (a book) starts as markup or JSON does, after a byte-order mark
    and white space: a server's error page or API error saved under a .txt name. No book does."""
    return head.lstrip(UTF8_BOM + b" \t\r\n")[:1] in (b"<", b"{")


# Byte-order marks of UTF-32 and UTF-16 (UTF-32's first: its little-endian mark starts with UTF-16's).
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
              (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode_utf8_or_latin1(data: bytes) -> str:
    """UTF-8 (a leading BOM dropped), else Latin-1, which older Gutenberg books and arXiv papers
    often are. A file mixing both is decoded line by line, so its UTF-8 lines do not turn into
    mojibake. A file that opens with a UTF-16 or UTF-32 byte-order mark (an editor's "Unicode"
    save) is decoded as such: read as bytes, its every other byte is a NUL."""
    for bom, encoding in _WIDE_BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                break  # a mark by chance: read as the bytes it is
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "".join(_decode_line(line) for line in data.splitlines(keepends=True))


def _decode_line(line: bytes) -> str:
    try:
        return line.decode("utf-8-sig")
    except UnicodeDecodeError:
        return line.decode("latin-1")


class ByteWindow(io.RawIOBase):
    """Bytes [start, end) of an open binary file."""

    def __init__(self, f: IO[bytes], start: int, end: int) -> None:
        f.seek(start)
        self.f, self.left = f, end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self.left <= 0:
            return 0
        data = self.f.read(min(len(buffer), self.left))
        buffer[: len(data)] = data
        self.left -= len(data)
        return len(data)


class ChainedStreams(io.RawIOBase):
    """Several readable streams one after another."""

    def __init__(self, parts: list[IO[bytes]]) -> None:
        self.parts = parts

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while self.parts:
            data = single_read(self.parts[0])(len(buffer))  # all bytes before a cut come out
            if data:
                buffer[: len(data)] = data
                return len(data)
            self.parts.pop(0)
        return 0
