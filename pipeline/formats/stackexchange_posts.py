"""Stack Exchange's Posts.xml (plain, or inside the site's .7z) streamed into SQLite.

lxml reads the rows with entities never resolved and no network; a file that declares a DTD is
refused, so an entity-expansion bomb ends as one counted failure. Questions and answers go to
two tables of a SQLite file in a temporary folder, so that answers can be grouped under their
question (by ParentId) whatever their order in the file and however large the site. Rows whose
Id, Score or ParentId SQLite cannot hold (2^63 or more) and malformed rows are counted, not
stored; a 7z whose Posts.xml would inflate past a ratio of its size is refused as a bomb.

Unpacking, loading and indexing come before the site's first document and take hours on Stack
Overflow (a 100 GB Posts.xml): they send heartbeats (pipeline/engine/heartbeat.py) by bytes
unpacked and parsed and by SQLite's steps, so the per-document timeout never takes them for a
stalled document, while one that truly stops is still stopped.
"""

from __future__ import annotations

import contextlib
import io
import lzma
import sqlite3
from collections import Counter
from pathlib import Path
from typing import IO, Iterator

import fsspec
import py7zr
import py7zr.exceptions
import py7zr.io
from lxml import etree

from pipeline.common.errors import InputError
from pipeline.engine.heartbeat import HeartbeatReader, heartbeat, megabytes
from pipeline.formats.archives import PrefixedReader, safe_member_path
from pipeline.formats.files import open_binary
from pipeline.formats.xml import SAFE_PARSER_OPTIONS, declares_dtd

QUESTION, ANSWER = "1", "2"
INT64 = range(-(1 << 63), 1 << 63)  # what SQLite's INTEGER (and the int64 columns) can hold
PROLOGUE_BYTES = 1 << 16  # a DTD, if any, sits before the root element, near the start
INSERT_BATCH = 2000
INSERT_BATCH_BYTES = 8 << 20  # and no more bodies than this at once: each insert is short (and memory flat)
SQLITE_STEPS_PER_BEAT = 100_000  # SQLite virtual-machine steps between heartbeats: a few milliseconds
BEAT_BYTES = 1 << 20


@contextlib.contextmanager
def open_posts_xml(path: str, tmp: Path, max_ratio: int) -> Iterator[IO[bytes]]:
    """A binary stream of the site's Posts.xml, extracted to `tmp` first when archived."""
    if not path.endswith(".7z"):
        with open_binary(path) as stream:
            yield stream
        return
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
                unpacked = _UnpackedPosts(tmp / "extracted" / "Posts.xml")
                try:
                    archive.extract(path=tmp / "extracted", targets=names, factory=unpacked)
                finally:
                    unpacked.close()
    except UnicodeDecodeError as e:
        # 7z stores names as UTF-16: a lone surrogate in one makes py7zr refuse the whole header.
        raise InputError(path, f"a member's name is not valid UTF-16 ({e})") from None
    except (py7zr.exceptions.ArchiveError, lzma.LZMAError, EOFError, KeyError, ValueError, OSError) as e:
        if isinstance(e, (FileNotFoundError, PermissionError)):
            raise InputError(path, f"cannot open ({e.strerror})") from None
        raise InputError(path, f"truncated or corrupt 7z archive ({type(e).__name__}: {e})") from None
    extracted = tmp / "extracted" / "Posts.xml"
    if not extracted.is_file():
        raise InputError(path, "truncated or corrupt 7z archive (Posts.xml could not be extracted)")
    with open(extracted, "rb") as stream:
        yield stream


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


def load_posts(path: str, stream: IO[bytes], db: sqlite3.Connection) -> tuple[int, Counter[str]]:
    """Stream every row into SQLite; returns the number of rows and the rows skipped by reason."""
    head = stream.read(PROLOGUE_BYTES)
    root_start = head.find(b"<posts")
    prologue = head if root_start < 0 else head[:root_start]
    if declares_dtd(prologue):
        raise InputError(path, "refused: the XML declares a DTD (Stack Exchange dumps have none; "
                               "entity definitions could expand without bound)")
    db.executescript(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
        "CREATE TABLE questions (id INTEGER PRIMARY KEY, score INTEGER, title TEXT, body TEXT);"
        "CREATE TABLE answers (parent INTEGER, score INTEGER, id INTEGER, body TEXT);"
    )
    posts, skipped = 0, Counter[str]()
    questions: list[tuple] = []
    answers: list[tuple] = []
    batch_bytes = 0

    def flush() -> None:
        nonlocal batch_bytes
        batch_bytes = 0
        if questions:
            inserted = db.executemany("INSERT OR IGNORE INTO questions VALUES (?, ?, ?, ?)", questions).rowcount
            skipped["duplicate_post_id"] += len(questions) - inserted
            questions.clear()
        if answers:
            db.executemany("INSERT INTO answers VALUES (?, ?, ?, ?)", answers)
            answers.clear()

    parsed = HeartbeatReader(PrefixedReader(head, stream), "Posts.xml", "loaded", BEAT_BYTES)
    sqlite = _SqliteBeats(parsed)
    db.set_progress_handler(sqlite.step, SQLITE_STEPS_PER_BEAT)
    parser = etree.iterparse(io.BufferedReader(parsed), events=("end",), tag="row", **SAFE_PARSER_OPTIONS)
    try:
        for _, row in parser:
            posts += 1
            attrs = row.attrib
            kind = attrs.get("PostTypeId")
            try:
                post_id, score = int(attrs["Id"]), int(attrs.get("Score", "0"))
                if kind == QUESTION:
                    if post_id in INT64 and score in INT64:
                        questions.append((post_id, score, attrs.get("Title", ""), attrs.get("Body", "")))
                        batch_bytes += len(questions[-1][3])
                    else:
                        skipped["number_out_of_range"] += 1
                elif kind == ANSWER:
                    parent_id = int(attrs["ParentId"])
                    if post_id in INT64 and score in INT64 and parent_id in INT64:
                        answers.append((parent_id, score, post_id, attrs.get("Body", "")))
                        batch_bytes += len(answers[-1][3])
                    else:
                        skipped["number_out_of_range"] += 1
                else:
                    skipped["other_post_type"] += 1  # tag wikis, moderator nominations ...
            except (KeyError, ValueError):
                skipped["malformed_row"] += 1
            # Free what was parsed so memory stays flat on multi-gigabyte files.
            row.clear(keep_tail=True)
            parent = row.getparent()
            while parent is not None and row.getprevious() is not None:
                del parent[0]
            if len(questions) + len(answers) >= INSERT_BATCH or batch_bytes >= INSERT_BATCH_BYTES:
                flush()
    except etree.XMLSyntaxError as e:
        raise InputError(path, f"malformed XML ({e})") from None
    flush()
    sqlite.indexing = True
    db.execute("CREATE INDEX answers_by_question ON answers (parent, score DESC, id)")
    db.commit()
    db.set_progress_handler(None, 0)
    return posts, skipped


class _SqliteBeats:
    """Heartbeats while SQLite inserts a batch of rows or indexes the answers: long steps of the
    load in which no byte is parsed."""

    def __init__(self, parsed: HeartbeatReader) -> None:
        self.parsed = parsed
        self.steps = 0
        self.indexing = False

    def step(self) -> int:
        self.steps += 1
        loaded = megabytes(self.parsed.count)
        heartbeat(self.steps, f"indexing the answers of Posts.xml ({loaded} loaded)" if self.indexing
                  else f"loaded {loaded} of Posts.xml")
        return 0  # go on
