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
