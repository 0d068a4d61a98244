"""A function mapped over items on forked processes, its results handed back in order.

The merges of global stages (pipeline/dedup) fold the tasks' files bucket by bucket. Each
bucket is independent, so the driver runs as many at once as it has cores: processes forked
after the merge has opened (memory-mapped) its files, so that they find them where the driver
has them instead of receiving a pickled copy, the way the engine's workers are forked.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

Item = TypeVar("Item")
Out = TypeVar("Out")


@contextmanager
def forked_map(function: Callable[[Item], Out], items: list[Item], processes: int) -> Iterator[Iterable[Out]]:
    """`with forked_map(f, items, n) as results:` the results of f over `items`, in order, on up to
    `n` forked processes (in this process when one would do). `f` reads what it needs from
    module state set before the call, which the forked processes inherit. Leaving the block
    early (an error, Ctrl-C) stops the processes: the rest of the results are not wanted."""
    processes = min(processes, len(items))
    if processes <= 1:
        yield map(function, items)
        return
    pool = multiprocessing.get_context("fork").Pool(processes)
    try:
        yield pool.imap(function, items)
        pool.close()  # each process ends as it returns, none killed
        pool.join()
    finally:
        pool.terminate()
