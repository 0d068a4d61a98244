"""metrics.jsonl (and documents.jsonl) on resume: the rows of the steps a checkpoint holds are kept,
the rest dropped; a row a killed run left half-written does not stop the resume, damage elsewhere
in the file is one line naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.common.errors import InputError
from train.metrics import MetricsLog


def _rows(steps: range) -> str:
    return "".join(json.dumps({"step": step, "loss": 10.0 - step}) + "\n" for step in steps)


def test_resume_keeps_the_rows_before_the_checkpoint_and_drops_a_row_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    # A run checkpointed after step 3 (4 steps done), then killed while writing the row of step 5.
    path.write_text(_rows(range(6)) + '{"step": 6, "loss": 3.')
    log = MetricsLog(path, resume_from_step=4)
    log.write({"step": 4, "loss": 6.0})
    log.close()
    assert path.read_text() == _rows(range(5))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]  # no temporary left


def test_a_damaged_row_before_the_last_is_one_error_naming_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    damaged = _rows(range(2)) + '{"step": 2, "lo\n' + _rows(range(3, 5))
    path.write_text(damaged)
    with pytest.raises(InputError) as raised:
        MetricsLog(path, resume_from_step=4)
    assert str(raised.value) == (f"{path}: line 3 is not a row of a step (damaged); move the file aside to resume "
                                 "without the earlier rows")
    assert path.read_text() == damaged  # nothing dropped from a file the resume refused


def test_a_new_run_starts_an_empty_log(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(_rows(range(3)))
    MetricsLog(path, resume_from_step=None).close()
    assert path.read_text() == ""
