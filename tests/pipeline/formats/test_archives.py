"""Untrusted archives: unsafe members refused with a reason, sizes bounded, nothing written."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import pytest

from pipeline.formats.archives import ArchiveError, Limits, read_tar, read_zip, safe_member_path
from sources.samples.arxiv import tar_gz


def test_member_paths() -> None:
    assert safe_member_path("a/./b.tex") == "a/b.tex"
    assert safe_member_path("a/../b.tex") == "b.tex"
    for bad in ["../x", "a/../../x", "/etc/passwd", "\\x", "C:\\x", ""]:
        assert safe_member_path(bad) is None


def test_tar_refuses_links_devices_and_escapes() -> None:
    sym = tarfile.TarInfo("s")
    sym.type, sym.linkname = tarfile.SYMTYPE, "../../etc/passwd"
    block = tarfile.TarInfo("b")
    block.type = tarfile.BLKTYPE
    data = tar_gz([("ok.tex", b"fine"), ("../up.tex", b"x"), sym, block, ("big.tex", bytes(2048))])
    out = read_tar(io.BytesIO(data), Limits(max_member_bytes=1024))
    assert out.files == {"ok.tex": b"fine"}
    assert sorted(out.refused) == ["link_member", "member_too_large", "special_member", "unsafe_member_path"]


def test_tar_decompression_bomb_stops_at_the_scan_limit() -> None:
    bomb = tar_gz([(f"z{i}.tex", bytes(1 << 20)) for i in range(8)])
    assert len(bomb) < 100_000
    with pytest.raises(ArchiveError) as caught:
        read_tar(io.BytesIO(bomb), Limits(max_member_bytes=2 << 20, max_total_bytes=64 << 20, max_scan_bytes=3 << 20))
    assert caught.value.reason == "decompression_limit"
    with pytest.raises(ArchiveError) as caught:
        read_tar(io.BytesIO(bomb), Limits(max_member_bytes=2 << 20, max_total_bytes=2 << 20))
    assert caught.value.reason == "archive_too_large"


def test_plain_tar_and_corrupt_data() -> None:
    plain = gzip.decompress(tar_gz([("a.tex", b"A")]))
    assert read_tar(io.BytesIO(plain)).files == {"a.tex": b"A"}
    with pytest.raises(ArchiveError):
        read_tar(io.BytesIO(b"\x1f\x8b\x08\x00" + b"junk" * 50))


def test_zip_checks_declared_and_real_sizes() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ok.txt", b"fine")
        archive.writestr("../up.txt", b"x")
        archive.writestr("/abs.txt", b"x")
        archive.writestr("big.txt", bytes(4096))
        link = zipfile.ZipInfo("link.txt")
        link.external_attr = (0o120777) << 16
        archive.writestr(link, "/etc/passwd")
    out = read_zip(io.BytesIO(buffer.getvalue()), Limits(max_member_bytes=1024))
    assert out.files == {"ok.txt": b"fine"}
    assert sorted(out.refused) == ["link_member", "member_too_large", "unsafe_member_path", "unsafe_member_path"]
    with pytest.raises(ArchiveError):
        read_zip(io.BytesIO(b"PK\x03\x04 broken"))


def _zip(members: dict[str, bytes], method: int) -> bytearray:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return bytearray(buffer.getvalue())


def test_an_encrypted_zip_member_is_refused_and_the_others_are_read() -> None:
    """zipfile raises RuntimeError (no password) for a member whose flags say encrypted: that
    member alone is refused, with a reason, as a hostile archive must never end the run."""
    data = _zip({"locked.txt": b"secret " * 50, "open.txt": b"a book " * 50}, zipfile.ZIP_DEFLATED)
    data[6] |= 1  # bit 0 of the first member's flags, in its local header ...
    data[data.find(b"PK\x01\x02") + 8] |= 1  # ... and in the central directory, which zipfile lists
    out = read_zip(io.BytesIO(bytes(data)))
    assert out.files == {"open.txt": b"a book " * 50}
    assert out.refused == ["encrypted_member"]


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_corrupt_compressed_zip_data_fails_the_archive_with_a_reason(method: int) -> None:
    """Corrupt data raises zlib.error, OSError or lzma.LZMAError (no OSError) depending on the
    member's method: each is the archive's counted failure, never a crash."""
    text = bytes(range(256)) * 8 + b"hello world " * 200  # enough compressed bytes to corrupt inside
    data = _zip({"a.txt": text}, method)
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("a.txt")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)  # the member's compressed data
    for i in range(start + info.compress_size // 3, start + 2 * info.compress_size // 3):
        data[i] ^= 0x5A
    with pytest.raises(ArchiveError) as caught:
        read_zip(io.BytesIO(bytes(data)))
    assert caught.value.reason == "corrupt_archive"
