"""arXiv's source files: the paper id a file name carries, as arXiv's bulk source files spell it,
and the bounded reading of one paper's archive that every reader of them shares."""

from __future__ import annotations

import io
import re
import zlib

import fsspec

from pipeline.formats.archives import (
    ArchiveError,
    Extracted,
    Limits,
    PrefixedReader,
    decompressed,
    read_bounded,
    read_tar,
)

OLD_STYLE_ID = re.compile(r"^([a-z-]+(?:\.[A-Z]{2})?)(\d{7}(?:v\d+)?)$")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".gz", ".tex")


def arxiv_id(path: str) -> str:
    """`2101.00001v2.tar.gz` -> 2101.00001v2; `hep-th9901001.gz` -> hep-th/9901001."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    old = OLD_STYLE_ID.match(name)
    return f"{old.group(1)}/{old.group(2)}" if old else name


def is_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


def read_paper_archive(path: str, limits: Limits) -> Extracted:
    """The files of one paper's archive: a tar (plain or gzipped: sniffed) through `read_tar`'s
    path, link, member and size checks, or arXiv's single gzipped .tex as `main.tex`, at most
    `limits.max_member_bytes` of it. Everything decompressed is bounded by `limits.max_scan_bytes`
    (a decompression bomb), so memory stays bounded whatever the file. Raises ArchiveError."""
    try:
        with fsspec.open(path, "rb") as raw:
            stream = decompressed(raw, limits.max_scan_bytes)
            # The first tar header block, read whole (a peek may hand out less than asked for),
            # then put back in front of the rest.
            head = stream.read(512)
            if not head:  # a download that never started: no paper, not a paper without a main file
                raise ArchiveError("empty_file", "no bytes")
            stream = io.BufferedReader(PrefixedReader(head, stream))
            if is_tar(head):
                return read_tar(stream, limits)
            return Extracted({"main.tex": read_bounded(stream, limits.max_member_bytes)})
    except EOFError as e:
        raise ArchiveError("truncated_archive", str(e)) from None
    except (OSError, zlib.error) as e:
        raise ArchiveError("corrupt_archive", str(e)) from None
