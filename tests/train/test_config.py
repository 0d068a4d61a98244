"""train/config.py: the warmup a resumed run keeps (`with_started_warmup`), the bounds and names a config is held to."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.common.errors import UserError
from train.config import TrainConfig, load_overrides, resolve, with_started_warmup

CHECKPOINT = Path("runs/x/checkpoints/step-00000020")


def test_the_default_warmup_of_a_longer_resume_is_the_one_the_run_started_with() -> None:
    # The debug preset's default: a tenth of a short run (3 steps of 30), at most its 10.
    longer = resolve(TrainConfig(model="debug", steps=30))
    assert longer.train.warmup_steps == 3 and longer.warmup_from_preset
    kept = with_started_warmup(longer, {"train": {"warmup_steps": 2, "steps": 20}}, CHECKPOINT)
    assert kept.train.warmup_steps == 2 and kept.train.steps == 30


def test_a_warmup_given_is_kept_as_given_for_the_resume_check_to_compare() -> None:
    given = resolve(TrainConfig(model="debug", steps=30, warmup_steps=3))
    assert not given.warmup_from_preset
    assert with_started_warmup(given, {"train": {"warmup_steps": 2}}, CHECKPOINT) == given


def test_a_started_warmup_longer_than_the_steps_asked_for_is_one_line() -> None:
    shorter = resolve(TrainConfig(model="debug", steps=5))
    with pytest.raises(UserError) as refused:
        with_started_warmup(shorter, {"train": {"warmup_steps": 10}}, CHECKPOINT)
    assert str(refused.value) == (f"{CHECKPOINT}: the run was started with warmup_steps=10, more than the 5 steps "
                                  "asked for; give --steps 10 or more")


def test_a_record_without_a_warmup_changes_nothing() -> None:
    longer = resolve(TrainConfig(model="debug", steps=30))
    for record in ({}, {"train": None}, {"train": {"warmup_steps": "2"}}, {"train": {"warmup_steps": True}}):
        assert with_started_warmup(longer, record, CHECKPOINT) == longer


@pytest.mark.parametrize(("changes", "message"), [
    # 2^40 tokens a step: a billion micro-batches, a step that never ends (a SIGTERM waits for it).
    ({"batch_tokens": 1 << 40}, "a batch of 1,099,511,627,776 tokens is 1,073,741,824 micro-batches of 1,024 tokens "
                                "a step, more than 65,536: a step would never end"),
    ({"steps": 1 << 60}, "1,152,921,504,606,846,976 steps of 1,024 tokens are more than 2^62 tokens"),
    # Past an int64, as every integer of a config (pipeline/common/config.py).
    ({"steps": 10**20}, "setting 'steps' must be at most 9223372036854775807, got 100000000000000000000"),
    ({"seq_len": 10**9}, "'seq_len' must be at most 1048576, got 1000000000"),  # was 64 GB asked of the allocator
    ({"micro_batch": 10**5}, "'micro_batch' must be at most 4096, got 100000"),
])
def test_shapes_past_their_bounds_are_one_line_before_any_work(changes: dict, message: str) -> None:
    with pytest.raises(UserError) as refused:
        resolve(TrainConfig(model="tiny", **changes))
    assert message in str(refused.value)


@pytest.mark.parametrize("setting", ["data", "mixture", "model"])
def test_an_empty_name_or_path_in_the_config_is_one_line(tmp_path: Path, setting: str) -> None:
    # "" as a path is the current folder: `data = ""` read token shards from wherever train ran.
    (tmp_path / "run.toml").write_text(f'{setting} = ""\n')
    with pytest.raises(UserError) as refused:
        load_overrides(str(tmp_path / "run.toml"), {})
    assert str(refused.value) == f"{tmp_path}/run.toml: setting '{setting}' string should have at least 1 character, got ''"
