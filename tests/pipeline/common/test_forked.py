"""forked_map: results in order from forked processes, and a SIGTERM while they are forked."""

from __future__ import annotations

import multiprocessing
import os
import signal

import pytest

from pipeline.common.errors import Terminated, _raise_terminated
from pipeline.common.forked import forked_map


def _square(n: int) -> int:
    return n * n


def test_results_come_in_the_order_of_the_items() -> None:
    with forked_map(_square, list(range(20)), 3) as results:
        assert list(results) == [n * n for n in range(20)]
    assert multiprocessing.active_children() == []


def test_a_sigterm_while_the_processes_are_forked_is_raised_and_stops_them_all() -> None:
    # The handler runs inside os.fork's at-fork hook, where an exception is swallowed: the map
    # went on as if never stopped.
    forks = []
    armed = [True]

    def sigterm_at_the_second_fork() -> None:
        forks.append(1)
        if len(forks) == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    os.register_at_fork(after_in_parent=lambda: armed[0] and sigterm_at_the_second_fork())
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with pytest.raises(Terminated):
            with forked_map(_square, list(range(20)), 3) as results:
                list(results)
    finally:
        armed[0] = False
        signal.signal(signal.SIGTERM, previous)
    assert multiprocessing.active_children() == []
