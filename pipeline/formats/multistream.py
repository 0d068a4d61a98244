"""Wikipedia multistream dumps as byte ranges of whole bz2 streams, so one dump is many tasks.

A multistream dump (`...-pages-articles-multistream[N].xml[-pApB].bz2`) is a concatenation of
bz2 streams: the first holds the `<mediawiki>` header and `<siteinfo>`, then each holds 100
`<page>`s, and the last closes `</mediawiki>`. Its index beside it
(`...-multistream-index[N].txt[-pApB].bz2`) has one line `OFFSET:PAGE_ID:TITLE` per page,
OFFSET being where the page's stream starts. Grouping consecutive streams into ranges of about
`target_bytes` gives inputs `<dump>#streams=START-END`; one reads as a well-formed document:
the header stream, the range's streams, and a closing tag (the first range starts at 0 and the
last ends at the end of the file, so together they hold every page exactly once, in order).

The index is checked, not trusted: a range cut at a byte that is not where a stream of whole
pages starts would lose pages with no error to show for it. An index that is cut, empty,
unreadable, not `OFFSET:PAGE_ID:TITLE` lines, with offsets that go down or leave the dump, or
with an offset the plan uses where no stream of pages starts, is a `BadIndex`: its dump is then
read whole, from its first byte to its last, which needs no index.
"""

from __future__ import annotations

import bz2
import contextlib
import io
import re
from itertools import groupby
from typing import IO, Iterator

import fsspec

from pipeline.common.errors import InputError
from pipeline.formats.files import ByteWindow, ChainedStreams, open_binary

DUMP = re.compile(r"^(?P<stem>.*-pages-articles-multistream)(?P<part>\d*)\.xml(?P<pages>[^/]*)\.bz2$")
RANGE = re.compile(r"^(?P<path>.+)#streams=(?P<start>\d+)-(?P<end>\d+)$")
CLOSING = b"\n</mediawiki>\n"
# Lines exactly as Wikimedia writes them; [0-9], not \d: a digit of another script is no offset.
# An offset has at most 20 digits (a 64-bit number), so a line of 5,000 digits is not an offset.
INDEX_LINES = re.compile(rb"(?:[0-9]{1,20}:[0-9]+:[^\n]*\n)*")
INDEX_LINE = re.compile(rb"[0-9]{1,20}:[0-9]+:[^\n]*\n")
INDEX_OFFSET = re.compile(rb"^([0-9]+):", re.MULTILINE)
MAX_INDEX_LINE = 1 << 16  # a title is at most 255 bytes: a longer line is not an index line
# A bz2 stream starts with "BZh", the block size digit, and the first block's magic (pi's digits).
STREAM_START = re.compile(rb"BZh[1-9]\x31\x41\x59\x26\x53\x59")
STREAM_START_BYTES = 10
PAGE_OPEN = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?page[\s/>]")
PAGE_TAG_OVERLAP = 64
# Bytes of a stream read to see how its text starts: its first block whole (at most 900 kB of
# text, compressed to less), so a stream that is not a bz2 stream of pages is told apart quickly.
FIRST_BLOCK_BYTES = 2 << 20
READ_BYTES = 1 << 16
INDEX_READ_BYTES = 1 << 20  # an index's text is checked a block of lines at a time: one regex a block


class BadIndex(Exception):
    """A multistream index that cannot be used to split its dump; the dump is read whole."""

    def __init__(self, index: str, problem: str) -> None:
        super().__init__(f"{index}: {problem}")
        self.index = index
        self.problem = problem


def index_of(dump: str) -> str | None:
    """The index file name that belongs to a multistream dump, or None for another file."""
    match = DUMP.match(dump)
    if match is None:
        return None
    return f"{match['stem']}-index{match['part']}.txt{match['pages']}.bz2"


def stream_offsets(index: str) -> list[int]:
    """The distinct stream offsets of an index file (local path or fsspec URL), in order.

    Raises BadIndex for an index that is not whole `OFFSET:PAGE_ID:TITLE` lines with offsets
    that never go down (a page's line follows those of the pages before it): unreadable, a cut
    bz2 file or a last line with no newline (cut), no line at all, or a line of anything else.
    An index has tens of millions of lines: they are checked by one regex per block of lines."""
    offsets: list[int] = []
    lines = 0  # whole lines before `block`
    rest = b""  # a line that goes on in the next read
    try:
        with open_binary(index) as f:
            while data := f.read(INDEX_READ_BYTES):
                block = rest + data
                end = block.rfind(b"\n") + 1
                block, rest = block[:end], block[end:]
                if len(rest) > MAX_INDEX_LINE:
                    number = lines + block.count(b"\n") + 1
                    raise BadIndex(index, f"line {number}: not OFFSET:PAGE_ID:TITLE "
                                          f"(over {MAX_INDEX_LINE:,} bytes without a newline)")
                if not INDEX_LINES.fullmatch(block):
                    raise BadIndex(index, f"line {lines + _first_bad_line(block)}: not OFFSET:PAGE_ID:TITLE")
                for head, _ in groupby(INDEX_OFFSET.findall(block)):
                    offset = int(head)
                    if offsets and offset < offsets[-1]:
                        raise BadIndex(index, f"offset {offset:,} follows {offsets[-1]:,}: offsets go down")
                    if not offsets or offset > offsets[-1]:
                        offsets.append(offset)
                lines += block.count(b"\n")
    except InputError as e:
        raise BadIndex(index, f"unreadable ({e.problem})") from None
    except (OSError, EOFError, ValueError) as e:  # a cut or corrupt bz2 file, a read that failed
        raise BadIndex(index, f"unreadable ({type(e).__name__}: {e})") from None
    if rest:
        raise BadIndex(index, f"cut: line {lines + 1} ends without a newline")
    if not offsets:
        raise BadIndex(index, "empty: no OFFSET:PAGE_ID:TITLE line")
    return offsets


def _first_bad_line(block: bytes) -> int:
    """The number (from 1) of the first line of `block` that is not an index line."""
    for number, line in enumerate(block.splitlines(keepends=True), 1):
        if not INDEX_LINE.fullmatch(line):
            return number
    return 1  # not reached: INDEX_LINES failed, so one line did


def byte_ranges(offsets: list[int], size: int, target_bytes: int) -> list[tuple[int, int]]:
    """[start, end) ranges covering [0, size), each cut at a stream offset once it holds at
    least `target_bytes`; the first range holds the header stream and the first page stream."""
    cuts = [0]
    for offset in offsets[1:]:
        if 0 < offset < size and offset - cuts[-1] >= target_bytes:
            cuts.append(offset)
    return list(zip(cuts, cuts[1:] + [size]))


def split_dump(path: str, target_bytes: int) -> list[str]:
    """`path` as range inputs when it is a multistream dump with its index beside it, else [path].

    Raises BadIndex when the index is there but does not fit the dump (see the module's
    docstring); the caller then reads `path` whole."""
    index = index_of(path)
    if index is None:
        return [path]
    try:
        fs, _, (base,) = fsspec.get_fs_token_paths(index)
        if not fs.exists(base):
            return [path]
        if fs.isfile(base) and fs.size(base) == 0:
            raise BadIndex(index, "empty: 0 bytes")
    except (OSError, ValueError) as e:
        raise BadIndex(index, f"unreadable ({type(e).__name__}: {e})") from None
    offsets = stream_offsets(index)
    try:
        dump_fs, _, (dump_base,) = fsspec.get_fs_token_paths(path)
        size = dump_fs.size(dump_base)
    except (OSError, ValueError):
        return [path]  # the dump's own problem: reading it whole reports it
    if offsets[0] <= 0 or offsets[-1] >= size:
        raise BadIndex(index, f"offsets {offsets[0]:,} to {offsets[-1]:,} do not fit inside the dump after its "
                              f"header stream ({size:,} bytes)")
    ranges = byte_ranges(offsets, size, target_bytes)
    cuts = [start for start, _ in ranges[1:]]
    _check_stream_starts(path, index, sorted({offsets[0], offsets[-1], *cuts}), set(cuts))
    if len(ranges) == 1:
        return [path]
    return [f"{path}#streams={start}-{end}" for start, end in ranges]


def _check_stream_starts(dump: str, index: str, offsets: list[int], cuts: set[int]) -> None:
    """A bz2 stream starts at each of `offsets` (10 bytes read each), and at each of `cuts`
    one whose text starts with a `<page>`: a range cut there holds whole pages, as does the
    range before it. Raises BadIndex naming the first offset that is not."""
    try:
        with fsspec.open(dump, "rb") as f:
            for offset in offsets:
                f.seek(offset)
                if not STREAM_START.fullmatch(f.read(STREAM_START_BYTES)):
                    raise BadIndex(index, f"offset {offset:,} is not the start of a bz2 stream in the dump")
                if offset in cuts and not _starts_with_page(f, offset):
                    raise BadIndex(index, f"offset {offset:,} is not the start of a bz2 stream of whole pages "
                                          "in the dump")
    except (OSError, EOFError, ValueError) as e:
        raise BadIndex(index, f"cannot check its offsets in the dump ({type(e).__name__}: {e})") from None


def _starts_with_page(f: IO[bytes], offset: int) -> bool:
    """Whether the bz2 stream at `offset` decompresses to text that starts with a `<page>` tag."""
    f.seek(offset)
    stream = bz2.BZ2Decompressor()
    text, read = b"", 0
    while not stream.eof and read < FIRST_BLOCK_BYTES and len(text.lstrip()) < 6:
        data = f.read(READ_BYTES)
        if not data:
            break
        read += len(data)
        try:
            text += stream.decompress(data, max_length=READ_BYTES)
        except OSError:  # not bz2 data after all
            return False
    return PAGE_OPEN.match(text.lstrip()) is not None


@contextlib.contextmanager
def open_dump(path: str) -> Iterator[IO[bytes]]:
    """The decompressed XML of a dump, or of one `#streams=START-END` range of it."""
    match = RANGE.match(path)
    if match is None:
        with open_binary(path) as stream:
            yield stream
        return
    dump, start, end = match["path"], int(match["start"]), int(match["end"])
    with fsspec.open(dump, "rb") as f:
        size = f.size if isinstance(getattr(f, "size", None), int) else f.seek(0, io.SEEK_END)
        parts: list[IO[bytes]] = []
        if start > 0:
            parts.append(io.BytesIO(_header(f)))
        parts.append(bz2.BZ2File(io.BufferedReader(ByteWindow(f, start, end), 1 << 20)))
        if end < size:
            parts.append(io.BytesIO(CLOSING))
        yield io.BufferedReader(ChainedStreams(parts), 1 << 16)


def _header(f: IO[bytes]) -> bytes:
    """The text of the dump's first stream before its first `<page>`: the `<mediawiki>` tag and
    `<siteinfo>`. Wikimedia's first stream holds nothing else; a dump whose first stream also
    holds pages must not give them again with every range (they are read with the first)."""
    stream = bz2.BZ2Decompressor()  # the first stream alone: it stops at its own end
    f.seek(0)
    text = b""
    while not stream.eof:
        block = f.read(READ_BYTES)
        if not block:
            break
        scanned = max(0, len(text) - PAGE_TAG_OVERLAP)  # a tag split across two reads is still seen
        text += stream.decompress(block)
        page = PAGE_OPEN.search(text, scanned)
        if page is not None:
            return text[: page.start()]
    return text
