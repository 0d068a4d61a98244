"""Seals (pipeline/common/files.py): what a check of a file established, kept on the file while it
stays as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipeline.common import files
from tests.conftest import xattrs_kept


def test_a_sha256_is_read_once_and_again_only_after_a_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not xattrs_kept(tmp_path):
        pytest.skip(f"{tmp_path}: the file system keeps no extended attributes (no seals)")
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    assert files.sha256_once(model) == hashlib.sha256(b"weights").hexdigest()
    hashed: list[Path] = []
    real = files.file_sha256
    monkeypatch.setattr(files, "file_sha256", lambda path: hashed.append(Path(path)) or real(path))
    assert files.sha256_once(model) == hashlib.sha256(b"weights").hexdigest() and hashed == []  # from the seal
    with open(model, "r+b") as f:  # written in place, as many bytes: the seal no longer fits
        f.write(b"W")
    assert files.sha256_once(model) == hashlib.sha256(b"Weights").hexdigest() and hashed == [model]
    assert files.seal_value(model) == f"sha256:{hashlib.sha256(b'Weights').hexdigest()}"


def test_a_seal_of_another_kind_is_no_sha256(tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    assert files.seal_value(model) is None
    files.seal(model, "listing-checksum:abc")  # a download's verification, say
    assert files.sha256_once(model) == hashlib.sha256(b"weights").hexdigest()
