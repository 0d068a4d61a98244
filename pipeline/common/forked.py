"""A function mapped over items on forked processes, its results handed back in order.

The merges of global stages (pipeline/dedup) fold the tasks' files bucket by bucket. Each
bucket is independent, so the driver runs as many at once as it has cores: processes forked
after the merge has opened (memory-mapped) its files, so that they find them where the driver
has them instead of receiving a pickled copy, the way the engine's workers are forked.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np

from pipeline.common.errors import signals_deferred
from pipeline.common.sorted_arrays import write_uint64_pieces

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
    pool = None
    try:
        with signals_deferred():  # a Ctrl-C while forking is raised once `pool` holds them all
            pool = multiprocessing.get_context("fork").Pool(processes)
        yield pool.imap(function, items)
        pool.close()  # each process ends as it returns, none killed
        pool.join()
    finally:
        if pool is not None:
            pool.terminate()


def write_buckets(path: Path, bucket: Callable[[int], np.ndarray], buckets: int, processes: int) -> int:
    """The uint64 keys of each bucket (`bucket(b)`, sorted, for b = 0 .. buckets - 1), one bucket
    after another, as one .npy at `path`, up to `processes` buckets at once; how many keys. Written
    under a temporary name and renamed: a merge killed halfway leaves no array that looks whole."""
    tmp = path.with_name(path.name + ".tmp.npy")
    with forked_map(bucket, list(range(buckets)), processes) as keys:
        count = write_uint64_pieces(tmp, keys)
    tmp.replace(path)
    return count


def bucket_bits(keys: int, per_bucket: int, most: int) -> int:
    """How many top bits of a key pick its bucket, so that `keys` keys spread evenly make buckets of
    at most about `per_bucket` (0: one bucket), and never more than `most` bits."""
    return min(most, math.ceil(math.log2(keys / per_bucket))) if keys > per_bucket else 0
