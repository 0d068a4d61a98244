"""`tokenizer verify`: every token file checked against the sizes and sha256s in meta.json, the
files meta.json does not list, and folders from before the .bin and .idx sha256s were recorded.
Expected lines are written out in full."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tokenizer.cli import main
from tokenizer.token_shards import TokenShardWriter


def _encoded(root: Path, source: str = "c4") -> Path:
    """One train shard of two documents and its meta.json, as `tokenizer encode` writes them."""
    folder = root / source
    folder.mkdir(parents=True)
    writer = TokenShardWriter(folder, "train", 0, "uint16")
    writer.write(np.array([1, 5, 6, 2, 1, 7, 2]), [4, 3], ["doc-a", "doc-b"])
    entry = writer.close()
    meta = {"source": source, "tokenizer": "t.model", "tokenizer_sha256": "a" * 64, "vocab_size": 256,
            "dtype": "uint16", "bos_id": 1, "eos_id": 2,
            "splits": {"train": {"documents": 2, "tokens": 7, "shards": [entry]},
                       "heldout": {"documents": 0, "tokens": 0, "shards": []}}}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def _verify(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, list[str], list[str]]:
    try:
        main(["verify", *args])
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_an_intact_folder_passes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _encoded(tmp_path, "c4")
    _encoded(tmp_path, "wikipedia")
    assert _verify(["--tokens", str(tmp_path)], capsys) == (0, [
        "c4: 1 shard(s) checked against meta.json, sizes and sha256s, ok",
        "wikipedia: 1 shard(s) checked against meta.json, sizes and sha256s, ok"], [])


def test_each_damaged_missing_or_unlisted_file_is_one_line_and_exit_2(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    folder = _encoded(tmp_path)
    tokens = folder / "train-00000.bin"
    data = tokens.read_bytes()
    tokens.write_bytes(data[:2] + bytes([data[2] ^ 0x01]) + data[3:])  # token 5 becomes 4: the same size
    index = folder / "train-00000.idx"
    index.write_bytes(index.read_bytes()[:16])  # cut to two of its three offsets
    (folder / "train-00000.ids").unlink()
    (folder / "train-00001.bin").write_bytes(b"\0\0")  # left by something else
    code, out, err = _verify(["c4", "--tokens", str(tmp_path)], capsys)
    assert code == 2
    assert out == ["c4: 1 shard(s) checked against meta.json, sizes and sha256s, 4 bad"]
    assert err == [
        f"tokenizer: error: {tokens}: sha256 differs from meta.json's (damaged, or from another encode)",
        f"tokenizer: error: {index}: 16 bytes, meta.json's counts give 24 (cut, or from another encode)",
        f"tokenizer: error: {folder / 'train-00000.ids'}: listed in meta.json but missing",
        f"tokenizer: error: {folder / 'train-00001.bin'}: not listed in meta.json",
    ]


def test_a_folder_from_before_the_sha256s_is_checked_by_size_and_says_so(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    folder = _encoded(tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    for entry in meta["splits"]["train"]["shards"]:
        del entry["bin_sha256"], entry["index_sha256"]
    (folder / "meta.json").write_text(json.dumps(meta))
    assert _verify(["--tokens", str(tmp_path)], capsys) == (0, [
        "c4: 1 shard(s) checked against meta.json, sizes only (encoded before sha256s were recorded), ok"], [])


def test_no_token_folder_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = _verify(["--tokens", str(tmp_path)], capsys)
    assert (code, out) == (2, [])
    assert err == [f"tokenizer: error: {tmp_path}: no token shards found (no */meta.json; run `tokenizer encode` "
                   "first)"]
