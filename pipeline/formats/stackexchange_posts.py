"""Stack Exchange's Posts.xml (plain, or inside the site's .7z) read as rows, whole or by byte ranges.

lxml reads the rows with entities never resolved and no network; a file that declares a DTD is
refused, so an entity-expansion bomb ends as one counted failure. Rows whose Id, Score or
ParentId an int64 column cannot hold (2^63 or more) and malformed rows are counted, not
returned; a 7z whose Posts.xml would inflate past a ratio of its size is refused as a bomb.

Byte ranges: Stack Overflow's Posts.xml is about 100 GB, 15 hours of one core read as one
input. A plain Posts.xml larger than a target is cut into ranges `<file>#rows=START-END`, each
an input (a task) of its own, as Wikipedia's multistream dumps are (pipeline/formats/
multistream.py). A cut is made where a `<row` tag starts: attribute values escape `<`, so those
bytes start a row and nothing else. A range reads as a well-formed document: the file's own
prologue (XML declaration and `<posts>` tag, re-read from its first bytes), the range's rows,
and a closing `</posts>` when the file goes on; the first range starts at 0 and the last ends at
the end of the file, so together they hold every row exactly once, in order. Planning costs a
seek and a short read per cut. Answers are joined to their questions across ranges by a global
stage (pipeline/transforms/join_answers.py), not here.

A .7z is unpacked into the task's temporary folder and read whole: ranges need random access to
the decompressed file, and a plan is fixed before any task runs, so a Posts.xml inside an
archive cannot be cut at planning. To split Stack Overflow, unpack its .7z once (about 100 GB
written; py7zr or 7z's own tool, on the order of an hour of one core) and give the folder.

Unpacking takes long before the site's first row: it sends heartbeats (pipeline/engine/
heartbeat.py) by bytes unpacked, and parsing by bytes parsed, so the per-document timeout never
takes a long stretch of rows that make no document for a stalled one.
"""

from __future__ import annotations

import contextlib
import io
import lzma
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

import fsspec
import py7zr
import py7zr.exceptions
import py7zr.io
from lxml import etree

from pipeline.common.errors import OUT_OF_SPACE, InputError
from pipeline.engine.heartbeat import HeartbeatReader, heartbeat, megabytes
from pipeline.formats.archives import PrefixedReader, safe_member_path
from pipeline.formats.files import ByteWindow, ChainedStreams, open_binary
from pipeline.formats.xml import SAFE_PARSER_OPTIONS, declares_dtd

QUESTION, ANSWER = "1", "2"
INT64 = range(-(1 << 63), 1 << 63)  # what the int64 columns (and SQLite's INTEGER) can hold
PROLOGUE_BYTES = 1 << 16  # a DTD, if any, sits before the root element, near the start
BEAT_BYTES = 1 << 20
RANGE = re.compile(r"^(?P<path>.+)#rows=(?P<start>\d+)-(?P<end>\d+)$")
ROW_START = re.compile(rb"<row[\s/>]")
ROOT_OPEN = re.compile(rb"<posts[^>]*>")
CUT_SEARCH_BYTES = 1 << 20  # read at a time when looking for the next row after a target offset
CLOSING = b"\n</posts>\n"


@dataclass(frozen=True, slots=True)
class Question:
    id: int
    score: int
    title: str
    body: str  # HTML


@dataclass(frozen=True, slots=True)
class Answer:
    id: int
    parent: int  # the question's id
    score: int
    body: str  # HTML


def whole_file(path: str) -> str:
    """The Posts.xml (or .7z) a range input `<file>#rows=START-END` is part of; `path` itself otherwise."""
    match = RANGE.match(path)
    return path if match is None else match["path"]


def split_rows(path: str, target_bytes: int) -> list[str]:
    """A plain Posts.xml larger than `target_bytes` as range inputs cut where rows start, about
    `target_bytes` each; [path] when it is smaller, has no rows to cut at, holds a comment, CDATA or
    processing instruction past its root tag (a `<row` there is no row), or cannot be read
    (reading it whole then reports the problem)."""
    try:
        with fsspec.open(path, "rb") as f:
            size = f.seek(0, io.SEEK_END)
            if target_bytes <= 0 or size <= target_bytes:
                return [path]
            f.seek(0)
            root = ROOT_OPEN.search(f.read(PROLOGUE_BYTES))
            if root is None or _markup_past(f, root.end()):
                return [path]
            cuts = [0]
            while (cut := _row_start_after(f, max(cuts[-1] + target_bytes, root.end()), size)) is not None:
                cuts.append(cut)
    except (OSError, ValueError):
        return [path]
    if len(cuts) == 1:
        return [path]
    return [f"{path}#rows={start}-{end}" for start, end in zip(cuts, cuts[1:] + [size])]


def _markup_past(f: IO[bytes], offset: int) -> bool:
    """Whether a comment, a CDATA section or a processing instruction (`<!`, `<?`) follows `offset`.
    Attribute values hold no raw `<`, so without them every `<row` is a row; in a comment it is
    text, and a cut there made the rows of the comment real documents of the next range (and
    the range before it malformed). A dump has none: one pass over the file, at the speed of a
    byte search, when the plan is made."""
    f.seek(offset)
    last = b""
    while block := f.read(CUT_SEARCH_BYTES):
        window = last + block
        if b"<!" in window or b"<?" in window:
            return True
        last = block[-1:]  # a `<` at the end of one block and `!` at the start of the next
    return False


def _row_start_after(f: IO[bytes], offset: int, size: int) -> int | None:
    """Where the first `<row` tag at or after `offset` starts, or None when none is left."""
    while offset < size:
        f.seek(offset)
        block = f.read(CUT_SEARCH_BYTES + 5)
        found = ROW_START.search(block)
        if found is not None:
            return offset + found.start()
        offset += CUT_SEARCH_BYTES  # the 5 extra bytes: a tag split by the read is found next time
    return None


# A .7z whose Posts.xml would inflate past this many times the archive's size is refused (real
# dumps inflate 5 to 10 times): the default of the source's max_compression_ratio.
MAX_COMPRESSION_RATIO = 100


@contextlib.contextmanager
def open_rows(path: str, tmp: Path, max_ratio: int) -> Iterator[IO[bytes]]:
    """A well-formed Posts.xml stream of the whole file (or .7z) `path`, or of one range of it."""
    match = RANGE.match(path)
    if match is None:
        with open_posts_xml(path, tmp, max_ratio) as stream:
            yield stream
        return
    whole, start, end = match["path"], int(match["start"]), int(match["end"])
    with open_binary(whole) as f:
        size = f.seek(0, io.SEEK_END)
        f.seek(0)
        head = f.read(PROLOGUE_BYTES)
        root = ROOT_OPEN.search(head)
        if root is None or not 0 <= start < end <= size:
            raise InputError(path, f"not a range of rows of {whole} ({size:,} bytes; the plan's file was changed)")
        parts: list[IO[bytes]] = [io.BytesIO(head[: root.end()])] if start > 0 else []
        parts.append(io.BufferedReader(ByteWindow(f, start, end), 1 << 20))
        if end < size:
            parts.append(io.BytesIO(CLOSING))
        yield io.BufferedReader(ChainedStreams(parts), 1 << 16)


@contextlib.contextmanager
def open_posts_xml(path: str, tmp: Path, max_ratio: int) -> Iterator[IO[bytes]]:
    """A binary stream of the site's Posts.xml, extracted to `tmp` first when archived."""
    if not path.endswith(".7z"):
        with open_binary(path) as stream:
            yield stream
        return
    with open(extract_posts_xml(path, tmp / "extracted", max_ratio), "rb") as stream:
        yield stream


def extract_posts_xml(path: str, folder: Path, max_ratio: int) -> Path:
    """`folder/Posts.xml`, unpacked from the site's archive `path` (a .7z): the member named
    Posts.xml, refused when it is a link, has an unsafe path, or would inflate past `max_ratio`
    times the archive; a damaged archive is one InputError naming it."""
    try:
        with fsspec.open(path, "rb") as raw:
            archive_bytes = max(raw.seek(0, 2), 1)
            raw.seek(0)
            with py7zr.SevenZipFile(raw, "r") as archive:
                members = [m for m in archive.list() if m.filename.rsplit("/", 1)[-1].lower() == "posts.xml"]
                if not members:
                    raise InputError(path, "archive holds no Posts.xml")
                member, names = members[0], [members[0].filename]
                if member.is_symlink or member.is_directory or safe_member_path(member.filename) is None:
                    raise InputError(path, f"refused: Posts.xml is a link or has an unsafe path ({member.filename})")
                if (member.uncompressed or 0) > max_ratio * archive_bytes:
                    raise InputError(path, f"refused: Posts.xml would inflate to {member.uncompressed:,} bytes from "
                                           f"a {archive_bytes:,}-byte archive (over {max_ratio} times: a bomb)")
                unpacked = _UnpackedPosts(folder / "Posts.xml")
                try:
                    archive.extract(path=folder, targets=names, factory=unpacked)
                finally:
                    unpacked.close()
                    _release_decoders(archive)
    except UnicodeDecodeError as e:
        # 7z stores names as UTF-16: a lone surrogate in one makes py7zr refuse the whole header.
        raise InputError(path, f"a member's name is not valid UTF-16 ({e})") from None
    except py7zr.exceptions.PasswordRequired:  # no ArchiveError: an AES-encrypted archive or header
        raise InputError(path, "encrypted 7z archive: there is no password to read it with") from None
    except (py7zr.exceptions.ArchiveError, lzma.LZMAError, EOFError, KeyError, ValueError, OSError) as e:
        if isinstance(e, OSError) and e.errno in OUT_OF_SPACE:
            raise  # a full disk while unpacking is no fault of the archive
        if isinstance(e, (FileNotFoundError, PermissionError)):
            raise InputError(path, f"cannot open ({e.strerror})") from None
        raise InputError(path, f"truncated or corrupt 7z archive ({type(e).__name__}: {e})") from None
    extracted = folder / "Posts.xml"
    if not extracted.is_file():
        raise InputError(path, "truncated or corrupt 7z archive (Posts.xml could not be extracted)")
    return extracted


def _release_decoders(archive: py7zr.SevenZipFile) -> None:
    """Drop the LZMA decoders py7zr keeps on the archive's folders. They sit in reference cycles
    with the archive's file entries, each with its dictionary (16 MiB and more): the cyclic
    collector, which the document loop runs rarely (and a full collection per archive costs
    more than a small site's whole reading), would free them many archives later, so a task of
    300 sites grew by a dictionary per archive. Breaking the link frees each one now."""
    streams = getattr(getattr(archive, "header", None), "main_streams", None)
    for folder in getattr(getattr(streams, "unpackinfo", None), "folders", None) or []:
        folder.decompressor = None


class _UnpackedPosts(py7zr.io.WriterFactory):
    """Where py7zr unpacks the archive's Posts.xml: into `path`, with a heartbeat every megabyte.
    A second member of the same name (py7zr would write it beside the first) is not kept."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: _BeatingFile | None = None

    def create(self, filename: str) -> py7zr.io.Py7zIO:
        if self.file is not None:
            return py7zr.io.NullIO()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = _BeatingFile(open(self.path, "wb"))
        return self.file

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class _BeatingFile(py7zr.io.Py7zIO):
    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.written = 0
        self.next_beat = BEAT_BYTES

    def write(self, data: bytes | bytearray) -> int:
        self.file.write(data)
        self.written += len(data)
        if self.written >= self.next_beat:
            self.next_beat = self.written + BEAT_BYTES
            heartbeat(self.written, f"unpacked {megabytes(self.written)} of Posts.xml")
        return len(data)

    def read(self, size: int | None = None) -> bytes:
        return b""  # py7zr only writes

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0 if self.file.closed else self.file.seek(offset, whence)

    def flush(self) -> None:
        if not self.file.closed:
            self.file.flush()

    def size(self) -> int:
        return self.written

    def close(self) -> None:
        self.file.close()


def read_rows(path: str, stream: IO[bytes]) -> Iterator[Question | Answer | str]:
    """Every row of `stream` in file order: a Question, an Answer, or the reason it is skipped."""
    head = stream.read(PROLOGUE_BYTES)
    root_start = head.find(b"<posts")
    prologue = head if root_start < 0 else head[:root_start]
    if declares_dtd(prologue):
        raise InputError(path, "refused: the XML declares a DTD (Stack Exchange dumps have none; "
                               "entity definitions could expand without bound)")
    parsed = HeartbeatReader(PrefixedReader(head, stream), "Posts.xml", "loaded", BEAT_BYTES)
    parser = etree.iterparse(io.BufferedReader(parsed), events=("end",), tag="row", **SAFE_PARSER_OPTIONS)
    try:
        for _, row in parser:
            yield _post(row.attrib)
            # Free what was parsed so memory stays flat on multi-gigabyte files.
            row.clear(keep_tail=True)
            parent = row.getparent()
            while parent is not None and row.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as e:
        raise InputError(path, f"malformed XML ({e})") from None
    root = etree.QName(parser.root).localname
    if root != "posts":  # well-formed XML of another kind: a server's error page saved as Posts.xml
        raise InputError(path, f"not a Stack Exchange Posts.xml: its root element is <{root[:40]}>, not <posts>")


def _post(attrs) -> Question | Answer | str:
    kind = attrs.get("PostTypeId")
    try:
        post_id, score = int(attrs["Id"]), int(attrs.get("Score", "0"))
        if kind == QUESTION:
            if post_id in INT64 and score in INT64:
                return Question(post_id, score, attrs.get("Title", ""), attrs.get("Body", ""))
            return "number_out_of_range"
        if kind == ANSWER:
            parent_id = int(attrs["ParentId"])
            if post_id in INT64 and score in INT64 and parent_id in INT64:
                return Answer(post_id, parent_id, score, attrs.get("Body", ""))
            return "number_out_of_range"
        return "other_post_type"  # tag wikis, moderator nominations ...
    except (KeyError, ValueError):
        return "malformed_row"
