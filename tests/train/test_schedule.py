"""Warmup then cosine to 10% of the peak, at the points the formula pins down."""

from __future__ import annotations

import math

import pytest

from train.schedule import learning_rate

PEAK, WARMUP, TOTAL = 3e-4, 2000, 250_000


def lr(step: int) -> float:
    return learning_rate(step, peak=PEAK, warmup_steps=WARMUP, total_steps=TOTAL, min_ratio=0.1)


def test_first_step_is_one_warmup_increment() -> None:
    assert lr(0) == pytest.approx(PEAK / WARMUP, rel=1e-12)
    assert lr(999) == pytest.approx(PEAK * 1000 / WARMUP, rel=1e-12)


def test_end_of_warmup_reaches_the_peak() -> None:
    assert lr(WARMUP - 1) == pytest.approx(PEAK, rel=1e-12)
    assert lr(WARMUP) == pytest.approx(PEAK, rel=1e-12)  # cosine starts at the peak


def test_halfway_through_the_decay_is_midway_between_peak_and_floor() -> None:
    halfway = WARMUP + (TOTAL - 1 - WARMUP) // 2  # (TOTAL - 1 - WARMUP) is odd: half a step off centre
    expected = 0.1 * PEAK + 0.9 * PEAK * 0.5 * (1 + math.cos(math.pi * (halfway - WARMUP) / (TOTAL - 1 - WARMUP)))
    assert lr(halfway) == pytest.approx(expected, rel=1e-12)
    assert lr(halfway) == pytest.approx(0.55 * PEAK, rel=1e-5)


def test_last_step_is_ten_percent_of_the_peak() -> None:
    assert lr(TOTAL - 1) == pytest.approx(0.1 * PEAK, rel=1e-12)


def test_schedule_never_rises_after_warmup() -> None:
    values = [learning_rate(s, peak=1.0, warmup_steps=5, total_steps=50, min_ratio=0.1) for s in range(50)]
    assert values[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert all(a >= b for a, b in zip(values[4:], values[5:]))
