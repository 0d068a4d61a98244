"""Fixtures for every trainer test."""

from __future__ import annotations

import signal
from typing import Iterator

import pytest


@pytest.fixture(autouse=True)
def signal_handlers_restored() -> Iterator[None]:
    """The `train` command installs its SIGTERM and SIGINT counters for the rest of its process
    (train/cli.py): run in this one, it would leave pytest counting Ctrl-C instead of stopping, and
    the next test starting with another handler than Python's."""
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in before.items():
        signal.signal(signum, handler)
