"""Wikipedia multistream dumps as byte ranges of whole bz2 streams, so one dump is many tasks.

A multistream dump (`...-pages-articles-multistream[N].xml[-pApB].bz2`) is a concatenation of
bz2 streams: the first holds the `<mediawiki>` header and `<siteinfo>`, then each holds 100
`<page>`s, and the last closes `</mediawiki>`. Its index beside it
(`...-multistream-index[N].txt[-pApB].bz2`) has one line `OFFSET:PAGE_ID:TITLE` per page,
OFFSET being where the page's stream starts. Grouping consecutive streams into ranges of about
`target_bytes` gives inputs `<dump>#streams=START-END`; one reads as a well-formed document:
the header stream, the range's streams, and a closing tag (the first range starts at 0 and the
last ends at the end of the file, so together they hold every page exactly once, in order).
"""

from __future__ import annotations

import bz2
import contextlib
import io
import re
from typing import IO, Iterator

import fsspec

from pipeline.common.errors import InputError
from pipeline.formats.files import open_binary

DUMP = re.compile(r"^(?P<stem>.*-pages-articles-multistream)(?P<part>\d*)\.xml(?P<pages>[^/]*)\.bz2$")
RANGE = re.compile(r"^(?P<path>.+)#streams=(?P<start>\d+)-(?P<end>\d+)$")
CLOSING = b"\n</mediawiki>\n"


def index_of(dump: str) -> str | None:
    """The index file name that belongs to a multistream dump, or None for another file."""
    match = DUMP.match(dump)
    if match is None:
        return None
    return f"{match['stem']}-index{match['part']}.txt{match['pages']}.bz2"


def stream_offsets(index: str) -> list[int]:
    """Sorted distinct stream offsets of an index file (local path or fsspec URL)."""
    offsets: set[int] = set()
    with open_binary(index) as f:
        for number, line in enumerate(f, 1):
            head = line.split(b":", 1)[0]
            if not head.strip():
                continue
            if not head.isdigit():
                raise InputError(index, f"line {number}: expected OFFSET:PAGE_ID:TITLE")
            offsets.add(int(head))
    return sorted(offsets)


def byte_ranges(offsets: list[int], size: int, target_bytes: int) -> list[tuple[int, int]]:
    """[start, end) ranges covering [0, size), each cut at a stream offset once it holds at
    least `target_bytes`; the first range holds the header stream and the first page stream."""
    cuts = [0]
    for offset in offsets[1:]:
        if 0 < offset < size and offset - cuts[-1] >= target_bytes:
            cuts.append(offset)
    return list(zip(cuts, cuts[1:] + [size]))


def split_dump(path: str, target_bytes: int) -> list[str]:
    """`path` as range inputs when it is a multistream dump with its index beside it, else [path]."""
    index = index_of(path)
    if index is None:
        return [path]
    fs, _, (base,) = fsspec.get_fs_token_paths(index)
    if not fs.exists(base):
        return [path]
    offsets = stream_offsets(index)
    dump_fs, _, (dump_base,) = fsspec.get_fs_token_paths(path)
    size = dump_fs.size(dump_base)
    if not offsets or offsets[0] <= 0 or offsets[-1] >= size:
        raise InputError(index, f"stream offsets do not fit {path} ({size:,} bytes)")
    ranges = byte_ranges(offsets, size, target_bytes)
    if len(ranges) == 1:
        return [path]
    return [f"{path}#streams={start}-{end}" for start, end in ranges]


class _Window(io.RawIOBase):
    """Bytes [start, end) of an open binary file."""

    def __init__(self, f: IO[bytes], start: int, end: int) -> None:
        f.seek(start)
        self.f, self.left = f, end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.left <= 0:
            return 0
        data = self.f.read(min(len(buffer), self.left))
        buffer[: len(data)] = data
        self.left -= len(data)
        return len(data)


class _Chain(io.RawIOBase):
    """Several readable streams one after another."""

    def __init__(self, parts: list[IO[bytes]]) -> None:
        self.parts = parts

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self.parts:
            data = self.parts[0].read(len(buffer))
            if data:
                buffer[: len(data)] = data
                return len(data)
            self.parts.pop(0)
        return 0


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
            header = bz2.BZ2Decompressor()  # the first stream alone: it stops at its own end
            f.seek(0)
            data = b""
            while not header.eof:
                block = f.read(1 << 16)
                if not block:
                    break
                data += header.decompress(block)
            parts.append(io.BytesIO(data))
        parts.append(bz2.BZ2File(io.BufferedReader(_Window(f, start, end), 1 << 20)))
        if end < size:
            parts.append(io.BytesIO(CLOSING))
        yield io.BufferedReader(_Chain(parts), 1 << 16)
