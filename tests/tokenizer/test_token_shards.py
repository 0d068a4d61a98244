"""meta.json, read in one place: the errors of a missing folder, a missing file and bad JSON, and
the refusal to mix sources of different tokenizers; token shards changed since they were written.
Expected lines are written out in full."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.common.errors import InputError, UserError
from tokenizer.token_shards import TokenShardWriter, check_same_tokenizer, is_encoded, open_shards, read_meta


def _meta(vocab_size: int = 256, dtype: str = "uint16", sha: str = "a" * 64) -> dict:
    return {"tokenizer": "t.model", "tokenizer_sha256": sha, "vocab_size": vocab_size, "dtype": dtype}


def test_read_meta_returns_the_file_as_written(tmp_path: Path) -> None:
    (tmp_path / "meta.json").write_text(json.dumps(_meta()))
    assert read_meta(tmp_path) == _meta() and is_encoded(tmp_path)


def test_read_meta_missing_folder_file_and_bad_json_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(InputError) as missing_folder:
        read_meta(tmp_path / "c4")
    assert str(missing_folder.value) == f"{tmp_path}/c4: no token shards here (run `tokenizer encode` first)"
    with pytest.raises(InputError) as named:
        read_meta(tmp_path / "c4", "c4", "do this")
    assert str(named.value) == f"{tmp_path}/c4: no token shards for source 'c4' (do this)"
    (tmp_path / "c4").mkdir()
    assert not is_encoded(tmp_path / "c4")
    with pytest.raises(InputError) as missing_file:
        read_meta(tmp_path / "c4")
    assert str(missing_file.value) == (f"{tmp_path}/c4/meta.json: missing: not a token-shard folder "
                                       "(run `tokenizer encode` first)")
    (tmp_path / "c4" / "meta.json").write_bytes(b"{\xff")
    with pytest.raises(InputError, match=r"c4/meta\.json: not valid JSON \("):
        read_meta(tmp_path / "c4")


def test_a_fifo_among_the_token_shards_or_as_meta_json_is_one_line_unopened(tmp_path: Path) -> None:
    # No writer: a reader that opened either would wait for ever.
    (tmp_path / "meta.json").write_text(json.dumps(_meta()))
    os.mkfifo(tmp_path / "train-00000.bin")
    with pytest.raises(UserError) as error:
        read_meta(tmp_path)
    assert str(error.value) == f"{tmp_path}/train-00000.bin: a FIFO, not a file a command wrote here; remove it and rerun"
    (tmp_path / "train-00000.bin").unlink()
    (tmp_path / "meta.json").unlink()
    os.mkfifo(tmp_path / "meta.json")
    with pytest.raises(UserError, match=r"meta\.json: a FIFO, not a file a command wrote here"):
        read_meta(tmp_path)


def test_sources_of_one_tokenizer_pass_and_any_difference_is_refused(tmp_path: Path) -> None:
    check_same_tokenizer({})
    check_same_tokenizer({tmp_path / "c4": _meta(), tmp_path / "arxiv": _meta()})
    for key, other in (("vocab_size", _meta(vocab_size=300)), ("dtype", _meta(dtype="uint32")),
                       ("tokenizer_sha256", _meta(sha="b" * 64))):
        with pytest.raises(InputError) as refused:
            check_same_tokenizer({tmp_path / "c4": _meta(), tmp_path / "wikipedia": _meta(), tmp_path / "arxiv": other})
        expected, found = _meta()[key], other[key]
        assert str(refused.value) == (
            f"{tmp_path}/arxiv/meta.json: {key} {found!r} differs from c4's {expected!r}: sources must share one "
            "tokenizer, refusing to mix them (re-encode with `tokenizer encode --restart`)")


def _one_shard(folder: Path) -> dict:
    """A folder of one train shard of two documents, written as `tokenizer encode` writes it."""
    writer = TokenShardWriter(folder, "train", 0, "uint16")
    writer.write(np.array([1, 5, 6, 2, 1, 7, 2]), [4, 3], ["doc-a", "doc-b"])
    entry = writer.close()
    assert entry is not None
    meta = {**_meta(), "splits": {"train": {"documents": 2, "tokens": 7, "shards": [entry]}}}
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


def test_the_writer_records_the_sha256_of_the_tokens_and_index_it_wrote(tmp_path: Path) -> None:
    entry = _one_shard(tmp_path)["splits"]["train"]["shards"][0]
    assert (tmp_path / "train-00000.bin").read_bytes() == np.array([1, 5, 6, 2, 1, 7, 2], "<u2").tobytes()
    assert entry["bin_sha256"] == hashlib.sha256((tmp_path / "train-00000.bin").read_bytes()).hexdigest()
    assert entry["index_sha256"] == hashlib.sha256(np.array([0, 4, 7], "<i8").tobytes()).hexdigest()


def test_shards_as_the_encode_sealed_them_open_without_being_read(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import tokenizer.token_shards as token_shards

    meta = _one_shard(tmp_path)
    hashed: list[Path] = []
    monkeypatch.setattr(token_shards, "file_sha256", lambda path: hashed.append(path) or "")
    assert len(open_shards(tmp_path, meta, "train")) == 1
    assert hashed == []


@pytest.mark.parametrize("name", ["train-00000.bin", "train-00000.idx"])
def test_a_shard_overwritten_in_place_since_the_encode_is_refused_by_its_readers(tmp_path: Path, name: str) -> None:
    meta = _one_shard(tmp_path)
    path = tmp_path / name
    data = path.read_bytes()
    path.write_bytes(data[:2] + bytes([data[2] ^ 0x01]) + data[3:])  # token 5 becomes 4, or the first offset 0 becomes 65536
    with pytest.raises(InputError) as refused:
        open_shards(tmp_path, meta, "train")
    assert str(refused.value) == (f"{path}: sha256 differs from meta.json's (damaged since `tokenizer encode` "
                                  "wrote it, or from another encode)")
    # A meta.json from before the sha256s were recorded: the sizes are all there is to check.
    for entry in meta["splits"]["train"]["shards"]:
        del entry["bin_sha256"], entry["index_sha256"]
    assert len(open_shards(tmp_path, meta, "train")) == 1


@pytest.mark.parametrize("name", ["train-00000.bin", "train-00000.idx"])
def test_a_small_shard_copied_without_its_seal_and_damaged_is_refused(tmp_path: Path, name: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.engine.run_folder as run_folder

    (tmp_path / "encoded").mkdir()
    meta = _one_shard(tmp_path / "encoded")
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "encoded", copy, copy_function=shutil.copyfile)  # bytes only: no extended attributes
    path = copy / name
    data = path.read_bytes()
    path.write_bytes(data[:2] + bytes([data[2] ^ 0x01]) + data[3:])
    os.utime(path, ns=((tmp_path / "encoded" / name).stat().st_atime_ns, (tmp_path / "encoded" / name).stat().st_mtime_ns))
    with pytest.raises(InputError, match=f"^{path}: sha256 differs from meta.json's"):
        open_shards(copy, meta, "train")
    path.write_bytes(data)  # the copy intact opens
    assert len(open_shards(copy, meta, "train")) == 1
    # A large shard that holds no seal is not read at each start: sizes only (`tokenizer verify` reads it).
    path.write_bytes(data[:2] + bytes([data[2] ^ 0x01]) + data[3:])
    monkeypatch.setattr(run_folder, "CHEAP_TO_HASH", 1)
    assert len(open_shards(copy, meta, "train")) == 1


@pytest.mark.parametrize(("key", "name"), [("bin", "/etc/passwd"), ("bin", "../../train-00000.bin"),
                                           ("index", "../other/train-00000.idx"), ("bin", "..")])
def test_a_shard_name_that_leaves_the_folder_is_refused_unread(tmp_path: Path, key: str, name: str) -> None:
    (tmp_path / "c4").mkdir()
    meta = _one_shard(tmp_path / "c4")
    meta["splits"]["train"]["shards"][0][key] = name
    with pytest.raises(InputError) as refused:
        open_shards(tmp_path / "c4", meta, "train")
    assert str(refused.value) == f"{tmp_path}/c4/meta.json: shard file {name!r} is not a file name in its folder"
