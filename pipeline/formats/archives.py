"""Reading untrusted archives in memory: nothing is ever written to disk, so no member can
land outside the working folder, and every size is bounded.

Tar (plain or gzip) is read as a stream. A member is refused, with a counted reason, when
its path is absolute or climbs out with `..` (`unsafe_member_path`), when it is a symbolic
or hard link (`link_member`), a device, FIFO or other special file (`special_member`), or
larger than `max_member_bytes` (`member_too_large`, not even read). Past `max_total_bytes`
of kept content, or `max_scan_bytes` of decompressed data in all (a decompression bomb),
or `max_members` entries, the archive as a whole fails with `ArchiveError`.

A zip member flagged as encrypted is refused alone (`encrypted_member`: there is no password to
give); a member whose compressed data is corrupt, in any of zip's methods, fails the archive
(`corrupt_archive`).

Member names are text on the way out: a tar name that is not UTF-8 is read as Latin-1 (the
member is kept); a zip whose directory flags a name as UTF-8 that is not fails whole
(`member_name_not_utf8`), since zipfile cannot list any of its members.
"""

from __future__ import annotations

import gzip
import io
import lzma
import posixpath
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import IO

from pipeline.common.errors import CountedProblem
from pipeline.common.files import single_read

MiB = 1 << 20
ZIP_ENCRYPTED = 0x1  # bit 0 of a zip member's general-purpose flags


class ArchiveError(CountedProblem):
    """The archive as a whole is unusable; `reason` is a short counted label."""


@dataclass(frozen=True)
class Limits:
    max_member_bytes: int = 16 * MiB
    max_total_bytes: int = 64 * MiB
    max_scan_bytes: int = 256 * MiB
    max_members: int = 10_000


@dataclass
class Extracted:
    files: dict[str, bytes] = field(default_factory=dict)  # normalised relative path -> content
    refused: list[str] = field(default_factory=list)  # one reason per refused member


class BoundedReader(io.RawIOBase):
    """Passes reads through, raising ArchiveError once more than `limit` bytes have come out."""

    def __init__(self, inner: IO[bytes], limit: int) -> None:
        self.inner = inner
        self.limit = limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = single_read(self.inner)(len(buffer))
        self.count += len(data)
        if self.count > self.limit:
            raise ArchiveError("decompression_limit", f"more than {self.limit:,} bytes decompressed")
        buffer[: len(data)] = data
        return len(data)


def safe_member_path(name: str) -> str | None:
    """The member's normalised relative path, or None if it is absolute or leaves the root."""
    if not name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return None
    path = posixpath.normpath(name.replace("\\", "/"))
    if path == ".." or path.startswith("../") or "/../" in path or path.startswith("/"):
        return None
    return path


class PrefixedReader(io.RawIOBase):
    """`head` (bytes already read to sniff the format) followed by the rest of `inner`."""

    def __init__(self, head: bytes, inner: IO[bytes]) -> None:
        self.head = head
        self.inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n], self.head = self.head[:n], self.head[n:]
            return n
        data = single_read(self.inner)(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def decompressed(stream: IO[bytes], limit: int) -> IO[bytes]:
    """`stream` gunzipped when it is gzip data (sniffed), bounded to `limit` bytes out."""
    head = stream.read(2)
    raw: IO[bytes] = io.BufferedReader(PrefixedReader(head, stream))
    if head == b"\x1f\x8b":
        raw = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
    return io.BufferedReader(BoundedReader(raw, limit))


def tar_member_name(name: str) -> str:
    """A tar member's name as text. tarfile decodes the stored bytes as UTF-8 and keeps bytes it
    cannot decode as lone surrogates, which no UTF-8 shard can hold and no `\\input` written in
    the (UTF-8, else Latin-1) source text matches: such a name is decoded as Latin-1 instead."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("latin-1")


def read_tar(stream: IO[bytes], limits: Limits = Limits()) -> Extracted:
    """Regular files of a tar stream (plain, or gzip: sniffed), in memory."""
    out = Extracted()
    total = 0
    try:
        bounded = decompressed(stream, limits.max_scan_bytes)
        with tarfile.open(fileobj=bounded, mode="r|") as tar:
            for number, member in enumerate(tar):
                if number >= limits.max_members:
                    raise ArchiveError("too_many_members", f"more than {limits.max_members:,}")
                path = safe_member_path(tar_member_name(member.name))
                if member.isdir():
                    continue
                if path is None:
                    out.refused.append("unsafe_member_path")
                elif member.issym() or member.islnk():
                    out.refused.append("link_member")
                elif not member.isfile():
                    out.refused.append("special_member")
                elif member.size > limits.max_member_bytes:
                    out.refused.append("member_too_large")
                else:
                    handle = tar.extractfile(member)
                    data = handle.read(limits.max_member_bytes + 1) if handle else b""
                    total += len(data)
                    if total > limits.max_total_bytes:
                        raise ArchiveError("archive_too_large", f"more than {limits.max_total_bytes:,} bytes of files")
                    out.files[path] = data
    except tarfile.TarError as e:
        if "unexpected end of data" in str(e):  # a tar cut short: tarfile's only sign of it
            raise ArchiveError("truncated_archive", str(e)) from None
        raise ArchiveError("not_a_tar_archive", str(e)) from None
    except EOFError as e:
        raise ArchiveError("truncated_archive", str(e)) from None
    except (OSError, ValueError, zlib.error) as e:  # corrupt gzip data
        raise ArchiveError("corrupt_archive", str(e)) from None
    return out


def read_zip(stream: IO[bytes], limits: Limits = Limits()) -> Extracted:
    """Regular files of a zip archive, in memory, with the same checks (zip needs a seekable stream)."""
    out = Extracted()
    total = 0
    try:
        with zipfile.ZipFile(stream) as archive:
            infos = archive.infolist()
            if len(infos) > limits.max_members:
                raise ArchiveError("too_many_members", f"more than {limits.max_members:,}")
            for info in infos:
                if info.filename.endswith("/"):  # a folder (info.is_dir() fails on an empty name)
                    continue
                path = safe_member_path(info.filename)
                mode = info.external_attr >> 16
                if path is None:
                    out.refused.append("unsafe_member_path")
                elif mode and (mode & 0o170000) == 0o120000:
                    out.refused.append("link_member")
                elif mode and (mode & 0o170000) not in (0, 0o100000):
                    out.refused.append("special_member")
                elif info.file_size > limits.max_member_bytes:
                    out.refused.append("member_too_large")
                elif info.flag_bits & ZIP_ENCRYPTED:  # zipfile would raise RuntimeError for its password
                    out.refused.append("encrypted_member")
                else:
                    with archive.open(info) as handle:
                        # The declared size can lie: read at most one byte past the limit.
                        data = handle.read(limits.max_member_bytes + 1)
                    if len(data) > limits.max_member_bytes:
                        out.refused.append("member_too_large")
                        continue
                    total += len(data)
                    if total > limits.max_total_bytes:
                        raise ArchiveError("archive_too_large", f"more than {limits.max_total_bytes:,} bytes of files")
                    out.files[path] = data
    except zipfile.BadZipFile as e:
        raise ArchiveError("not_a_zip_archive", str(e)) from None
    except UnicodeDecodeError as e:
        # The member's header flags its name as UTF-8 and it is not: zipfile reads the whole
        # directory at once, so no member of this archive can be listed.
        raise ArchiveError("member_name_not_utf8", str(e)) from None
    except NotImplementedError as e:  # a zip version or compression method zipfile cannot read
        raise ArchiveError("unsupported_zip", str(e)) from None
    # A member's compressed data is corrupt: deflate (zlib.error), bzip2 (OSError), LZMA
    # (LZMAError, no OSError), or a header field that reads past its record (struct.error,
    # ValueError).
    except (EOFError, OSError, ValueError, zlib.error, lzma.LZMAError, struct.error) as e:
        raise ArchiveError("corrupt_archive", str(e)) from None
    return out


def read_bounded(stream: IO[bytes], limit: int) -> bytes:
    """All of `stream`, or ArchiveError("decompression_limit") past `limit` bytes."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ArchiveError("decompression_limit", f"more than {limit:,} bytes decompressed")
    return data
