"""meta.json, read in one place: the errors of a missing folder, a missing file and bad JSON, and
the refusal to mix sources of different tokenizers. Expected lines are written out in full."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.common.errors import InputError
from tokenizer.token_shards import check_same_tokenizer, is_encoded, read_meta


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
