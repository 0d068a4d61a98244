"""metrics.jsonl (and documents.jsonl) on resume: the rows of the steps a checkpoint holds are kept,
the rest dropped; a row a killed run left half-written does not stop the resume, damage elsewhere
in the file is one line naming it; rows of logged steps that are gone (cut, deleted) are one
warning naming the steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.common.errors import InputError
from train.metrics import LoggedSpan, MetricsLog, logged_steps, missing_rows


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


def _cut_inside_the_row_of(step: int, rows: str) -> str:
    """`rows` cut short halfway through the line of `step`, as `truncate -s` would."""
    start = rows.index(f'{{"step": {step},')
    return rows[:start + 8]


def test_a_log_cut_before_the_checkpoint_names_the_lost_steps_once_and_goes_on(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "metrics.jsonl"
    # A finished run of 20 steps, every step logged; the file then cut inside the row of step 9.
    path.write_text(_cut_inside_the_row_of(9, _rows(range(20))))
    log = MetricsLog(path, resume_from_step=20, expected=list(range(20)))
    log.write({"step": 20, "loss": -10.0})
    log.close()
    assert capsys.readouterr().err == (f"warning: {path}: the rows of steps 9-19 are missing (cut or deleted); "
                                       "they cannot be written again\n")
    assert path.read_text() == _rows(range(9)) + _rows(range(20, 21))


def test_a_deleted_log_names_every_step_it_held(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "metrics.jsonl"
    MetricsLog(path, resume_from_step=20, expected=list(range(20))).close()
    assert capsys.readouterr().err == (f"warning: {path}: the rows of steps 0-19 are missing (cut or deleted); "
                                       "they cannot be written again\n")
    assert path.read_text() == ""


def test_rows_deleted_in_the_middle_count_only_the_steps_that_were_logged(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "metrics.jsonl"
    # Logged every 5 steps of a 40-step run, and its last (39); the rows of 10, 15, 20 and 25 deleted.
    path.write_text(_rows([0, 5, 30, 35, 39]))
    MetricsLog(path, resume_from_step=40, expected=[0, 5, 10, 15, 20, 25, 30, 35, 39]).close()
    assert capsys.readouterr().err == (f"warning: {path}: the rows of steps 10, 15, ..., 25 are missing (cut or "
                                       "deleted); they cannot be written again\n")


def test_a_row_cut_after_the_checkpoint_by_a_kill_is_no_loss_and_says_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "metrics.jsonl"
    # Checkpointed after 4 steps, then killed while writing the row of step 6: rows 4-6 are trained again.
    path.write_text(_rows(range(6)) + '{"step": 6, "loss": 3.')
    MetricsLog(path, resume_from_step=4, expected=[0, 1, 2, 3]).close()
    assert capsys.readouterr().err == ""
    assert path.read_text() == _rows(range(4))


def test_one_missing_row_is_named_in_the_singular(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(_rows([0, 1, 3]))
    MetricsLog(path, resume_from_step=4, expected=[0, 1, 2, 3]).close()
    assert capsys.readouterr().err == (f"warning: {path}: the row of step 2 is missing (cut or deleted); it cannot "
                                       "be written again\n")


def test_missing_steps_are_written_as_ranges_spacings_and_a_count_past_eight_groups() -> None:
    assert missing_rows([0, 5, 10, 11, 12, 13]) == ("the rows of steps 0, 5, 10-13 are missing (cut or deleted); "
                                                    "they cannot be written again")
    assert missing_rows([9, 10, 20, 40, 60, 80, 99]) == ("the rows of steps 9, 10, 20, 40, ..., 80, 99 are missing "
                                                         "(cut or deleted); they cannot be written again")
    assert missing_rows([1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 66]) == (
        "the rows of steps 1, 3, 6, 10, 15, 21, 28, 36 and 3 more are missing (cut or deleted); they cannot be "
        "written again")


def test_logged_steps_follow_each_spans_settings_up_to_the_next() -> None:
    spans = [LoggedSpan(first=0, log_every=5, eval_every=0, steps=12),  # 0, 5, 10 and its last, 11
             LoggedSpan(first=12, log_every=4, eval_every=3, steps=30),  # every 4th, and before each 3rd's end
             LoggedSpan(first=20, log_every=10, eval_every=0, steps=40)]  # stopped at 24 before its end
    assert logged_steps(spans, end=24) == [0, 5, 10, 11, 12, 14, 16, 17, 20]
