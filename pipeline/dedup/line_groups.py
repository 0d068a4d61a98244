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
are the group's, in order. A bucket holds about 16 MB (more where a group has so many files
that each file's slice of it would be under MIN_SLICE_KEYS); as many run at once as the driver
has cores (pipeline/common/forked.py), and the group's file is written as they come back, the
same bytes as one sort of the whole group gives.

A bucket reads its slice of each file with one `preadv` into its own array, opening the file
for that read only (pipeline/common/file_array.py): a group of 1,900 files held mapped would
hold 3,800 file descriptors (a `np.memmap` keeps one), past the usual limit of 1,024, and a
whole snapshot's 60,000 files past the kernel's 65,530 mappings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.common.file_array import FileArray
from pipeline.common.forked import bucket_bits, write_buckets
from pipeline.common.sorted_arrays import repeated, union

KEY = np.dtype("<u8")
# The most keys a bucket is meant to hold: 16 MB of keys, sorted in the caches' reach...
BUCKET_KEYS = 1 << 21
# ...unless that leaves each file's slice under this many keys (16 KB): the reads would then
# cost more than the sort.
MIN_SLICE_KEYS = 1 << 11
MAX_BUCKET_BITS = 16


@dataclass(frozen=True)
class KeyFile:
    """A saved sorted key array, and where each bucket of the merge starts among its keys, then
    how many it holds (the last bucket's end)."""

    keys: FileArray
    bounds: np.ndarray

    def read(self, bucket: int, into: np.ndarray) -> None:
        """Read the keys of `bucket` into `into` (exactly as many)."""
        self.keys.read_into(int(self.bounds[bucket]), into)


def write_group_duplicates(files: list[tuple[Path, int]], out: Path, processes: int = 1) -> int:
    """Writes to `out` (.npy) the sorted keys seen in two or more documents of the group's
    `files` (each a task's partial folder and the file's number there), up to `processes`
    buckets at once; returns how many."""
    global _MERGING
    keys = [partial / f"{number}-keys.npy" for partial, number in files]
    bits = bucket_bits(sum(_count(path) for path in keys), max(BUCKET_KEYS, MIN_SLICE_KEYS * len(files)),
                       MAX_BUCKET_BITS)
    starts = _bucket_starts(bits)
    inside = [partial / f"{number}-repeated.npy" for partial, number in files]
    _MERGING = ([f for f in (_key_file(path, starts) for path in keys) if f.bounds[-1]],
                [f for f in (_key_file(path, starts) for path in inside) if f.bounds[-1]])
    try:
        return write_buckets(out, _bucket_duplicates, 1 << bits, processes)
    finally:
        _MERGING = None


# The group being merged: its files' key arrays, then their repeated-inside arrays. A module
# global, so that the processes the merge forks inherit it instead of a pickled copy.
_MERGING: tuple[list[KeyFile], list[KeyFile]] | None = None


def _bucket_duplicates(bucket: int) -> np.ndarray:
    """The keys of one bucket of the group being merged that are in two or more documents."""
    assert _MERGING is not None
    keys, inside = _MERGING
    joined = _read_bucket(keys, bucket)
    joined.sort()
    across = repeated(joined)
    del joined
    repeated_inside = _read_bucket(inside, bucket)
    if not len(repeated_inside):
        return across
    return union(across, repeated_inside)


def _read_bucket(files: list[KeyFile], bucket: int) -> np.ndarray:
    """Each file's keys of `bucket`, one after another, in one new array."""
    sizes = [int(f.bounds[bucket + 1] - f.bounds[bucket]) for f in files]
    joined = np.empty(sum(sizes), dtype=KEY)
    offset = 0
    for f, size in zip(files, sizes):
        if size:
            f.read(bucket, joined[offset : offset + size])
            offset += size
    return joined


def _bucket_starts(bits: int) -> np.ndarray:
    """The smallest key of each of the 2^bits buckets."""
    return np.arange(1 << bits, dtype=KEY) << np.uint64(64 - bits) if bits else np.zeros(1, dtype=KEY)


def _count(path: Path) -> int:
    """How many keys a saved array holds, from its header."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, _ = header(f)
    return int(shape[0])


def _key_file(path: Path, starts: np.ndarray) -> KeyFile:
    """A saved sorted array and where each bucket starts in it, found with its mapping held for
    this call only."""
    mapped = np.load(path, mmap_mode="r")
    bounds = np.append(np.searchsorted(mapped, starts), len(mapped)).astype(np.int64)
    keys = FileArray(path, KEY, len(mapped), int(mapped.offset))
    del mapped  # its file descriptor and mapping go with it
    return KeyFile(keys, bounds)
