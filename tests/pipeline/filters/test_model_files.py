"""A model file checked against the record `pipeline models` keeps of it: a cut or rewritten model
is refused in one line naming the command that writes it again; a model with no record is
loaded as it is."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from pipeline.common.errors import UserError
from pipeline.engine import run_folder
from pipeline.filters.model_files import check_model_file, recorded_files
from tests.conftest import xattrs_kept

COMMAND = "pipeline models classifier"


def _model(folder: Path, size: int) -> tuple[Path, Path]:
    model = folder / "classifier.bin"
    model.write_bytes(os.urandom(size))
    description = folder / "classifier.json"
    description.write_text(json.dumps({"kind": "classifier", "files": recorded_files(model)}))
    return model, description


def test_the_record_holds_each_files_bytes_and_sha256(tmp_path: Path) -> None:
    model, description = _model(tmp_path, 1000)
    assert json.loads(description.read_text())["files"] == {
        "classifier.bin": {"bytes": 1000, "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}}
    check_model_file(model, description, COMMAND)  # as recorded: nothing to say


def test_a_model_cut_short_is_refused_with_its_sizes_and_the_command(tmp_path: Path) -> None:
    model, description = _model(tmp_path, 3000)
    os.truncate(model, 1000)
    with pytest.raises(UserError) as error:
        check_model_file(model, description, COMMAND)
    assert str(error.value) == (f"{model}: 1,000 bytes, not the 3,000 written, as classifier.json records it: "
                                f"damaged or replaced since `{COMMAND}` wrote it; run that again")


@pytest.mark.parametrize("large", [False, True])  # hashed for being small / for no longer fitting its seal
def test_a_model_written_over_with_as_many_bytes_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            large: bool) -> None:
    if large:
        if not xattrs_kept(tmp_path):
            pytest.skip(f"{tmp_path}: the file system keeps no extended attributes (no seals: size only)")
        monkeypatch.setattr(run_folder, "CHEAP_TO_HASH", 16)  # the model counts as large
    size = 1000
    model, description = _model(tmp_path, size)
    with open(model, "r+b") as f:  # in place: the time moves, so a big file's seal no longer fits
        f.seek(size // 2)
        f.write(b"\0" * 8)
    with pytest.raises(UserError, match=r"classifier.bin: not as written \(its sha256 differs\), as classifier.json"):
        check_model_file(model, description, COMMAND)


def test_a_model_without_a_record_is_not_held_to_one(tmp_path: Path) -> None:
    model = tmp_path / "classifier.bin"
    model.write_bytes(b"a model from elsewhere")
    check_model_file(model, tmp_path / "classifier.json", COMMAND)  # no description
    (tmp_path / "classifier.json").write_text(json.dumps({"kind": "classifier"}))  # an older herd's: no "files"
    check_model_file(model, tmp_path / "classifier.json", COMMAND)
    (tmp_path / "classifier.json").write_text("{cut")
    check_model_file(model, tmp_path / "classifier.json", COMMAND)
