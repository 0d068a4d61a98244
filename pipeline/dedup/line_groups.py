"""The merge of line dedup's hash pass: for one group of input files, the sorted line keys seen
in two or more of its documents (pipeline/dedup/line.py says what a group and a key are).

Each task wrote, per input file, the sorted distinct keys of each document (`<n>-keys.npy`)
and the keys already repeated inside that file (`<n>-repeated.npy`). A group's duplicates are
the keys found in two of its files' key arrays, and every key repeated inside one file.

CCNet's groups span about 1,900 WET files: some 4 billion keys, 34 GB joined and sorted at
once, about 2.6 minutes of one core per group and 6.4 hours for the 160 groups of the paper's
five snapshots, in series in the driver. So a group of more than BUCKET_KEYS keys is merged in
2^bits buckets by the keys' top bits (a key is 8 bytes of a SHA-1: its top bits are uniform).
Every copy of a key falls in the same bucket, and each file's keys are sorted, so a bucket is
one slice of each file's arrays, found once per file for all buckets by one `searchsorted`;
its duplicates are found as the group's were, and the buckets' duplicates one after another
are the group's, in order. A bucket holds about 16 MB; as many run at once as the driver has
cores (pipeline/common/forked.py), and the group's file is written as they come back, the same
bytes as one sort of the whole group gives.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pipeline.common.forked import forked_map
from pipeline.common.sorted_arrays import distinct, load_mapped, repeated, write_uint64_pieces

# The most keys a bucket is meant to hold: 16 MB of keys, sorted in the caches' reach.
BUCKET_KEYS = 1 << 21
MAX_BUCKET_BITS = 16


def write_group_duplicates(files: list[tuple[Path, int]], out: Path, processes: int = 1) -> int:
    """Writes to `out` (.npy) the sorted keys seen in two or more documents of the group's
    `files` (each a task's partial folder and the file's number there), up to `processes`
    buckets at once; returns how many."""
    global _MERGING
    keys = [load_mapped(partial / f"{number}-keys.npy") for partial, number in files]
    inside = [load_mapped(partial / f"{number}-repeated.npy") for partial, number in files]
    total = sum(len(array) for array in keys)
    bits = min(MAX_BUCKET_BITS, math.ceil(math.log2(total / BUCKET_KEYS))) if total > BUCKET_KEYS else 0
    starts = _bucket_starts(bits)
    _MERGING = ([_with_bounds(array, starts) for array in keys if len(array)],
                [_with_bounds(array, starts) for array in inside if len(array)])
    tmp = out.with_name(out.name + ".tmp.npy")
    try:
        with forked_map(_bucket_duplicates, list(range(1 << bits)), processes) as buckets:
            count = write_uint64_pieces(tmp, buckets)
    finally:
        _MERGING = None
    tmp.replace(out)
    return count


# The group being merged: its files' key arrays, then their repeated-inside arrays, each
# (memory-mapped) with the index where each bucket starts in it and its length last. A
# module global, so that the processes the merge forks inherit it instead of a pickled copy.
_MERGING: tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray, np.ndarray]]] | None = None


def _bucket_duplicates(bucket: int) -> np.ndarray:
    """The keys of one bucket of the group being merged that are in two or more documents."""
    assert _MERGING is not None
    keys, inside = _MERGING
    joined = _slices(keys, bucket)
    joined.sort()
    across = repeated(joined)
    del joined
    repeated_inside = _slices(inside, bucket)
    if not len(repeated_inside):
        return across
    both = np.concatenate([across, repeated_inside])
    both.sort()
    return distinct(both)


def _slices(arrays: list[tuple[np.ndarray, np.ndarray]], bucket: int) -> np.ndarray:
    """Each array's slice of `bucket`, joined in one new array."""
    pieces = [array[bounds[bucket] : bounds[bucket + 1]] for array, bounds in arrays]
    return np.concatenate(pieces) if pieces else np.empty(0, dtype="<u8")


def _bucket_starts(bits: int) -> np.ndarray:
    """The smallest key of each of the 2^bits buckets."""
    return np.arange(1 << bits, dtype="<u8") << np.uint64(64 - bits) if bits else np.zeros(1, dtype="<u8")


def _with_bounds(array: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A sorted array and where each bucket starts in it, then its length (the last one's end)."""
    return array, np.append(np.searchsorted(array, starts), len(array))
