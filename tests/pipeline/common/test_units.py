"""Counts and sizes written for people."""

from __future__ import annotations

import pytest

from pipeline.common.units import human, human_bytes


@pytest.mark.parametrize("count, text", [(1.4e12, "1.40T"), (938e9, "938.00B"), (19_035, "19.04K"), (999, "999"),
                                         (-2e6, "-2.00M")])
def test_counts(count: float, text: str) -> None:
    assert human(count) == text


@pytest.mark.parametrize("size, text", [(184_400, "184.4 KB"), (3.2e9, "3.2 GB"), (999, "999 B"), (0, "0 B")])
def test_sizes(size: float, text: str) -> None:
    assert human_bytes(size) == text
