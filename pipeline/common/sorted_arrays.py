"""Set operations on sorted numpy arrays, without `np.unique` or `np.isin`.

Both of those call `np.ma.is_masked`, whose first use imports numpy's masked-array package:
40 ms of CPU in every process that calls them, the largest fixed cost of a small run. Arrays
already sorted (hashes sorted in place to find repeats) need neither's own sort either.
`write_uint64_pieces` writes a sorted array made in pieces (a merge's buckets) as one .npy.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np


def distinct(ordered: np.ndarray) -> np.ndarray:
    """The values of a sorted 1-D array, each once (as `np.unique` gives them)."""
    if len(ordered) < 2:
        return ordered.copy()
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def union(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The values of two arrays, sorted, each once."""
    both = np.concatenate([first, second])
    both.sort()
    return distinct(both)


def find(needles: np.ndarray, haystack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of `needles`, whether the sorted `haystack` holds it, and where (an index into
    `haystack`, meaningful where it does)."""
    where = np.searchsorted(haystack, needles)
    if not len(haystack):
        return np.zeros(len(needles), dtype=bool), where
    clipped = np.minimum(where, len(haystack) - 1)
    return haystack[clipped] == needles, clipped


def repeated(ordered: np.ndarray, block: int = 1 << 16) -> np.ndarray:
    """The values occurring at least twice in a sorted 1-D array, each once. Compared block by
    block, so that the comparison mask stays small beside a large array."""
    pieces: list[np.ndarray] = []
    last = None
    for start in range(0, max(len(ordered) - 1, 0), block):
        right = ordered[start + 1 : start + 1 + block]
        left = ordered[start : start + len(right)]
        twice = right[left == right]
        if len(twice) > 1:  # a value seen 3+ times appears more than once: keep one
            twice = twice[np.concatenate(([True], twice[1:] != twice[:-1]))]
        if len(twice) and last is not None and twice[0] == last:  # it spans two blocks
            twice = twice[1:]
        if len(twice):
            pieces.append(twice)
            last = twice[-1]
    return np.concatenate(pieces) if pieces else np.empty(0, dtype=ordered.dtype)


def load_mapped(path: Path) -> np.ndarray:
    """A saved array, memory-mapped read-only, as a plain array: the processes of a node that map
    it share one copy through the page cache, and slices of it cost what a plain array's do
    (several times less than a `np.memmap`'s)."""
    array = np.load(path, mmap_mode="r")
    return array.view(np.ndarray) if isinstance(array, np.memmap) else np.asarray(array)


NPY_HEADER_BYTES = 128  # numpy's version 1.0 header of a 1-D uint64 array, any length


def write_uint64_pieces(path: Path, pieces: Iterable[np.ndarray]) -> int:
    """The uint64 pieces one after another, written to `path` as one .npy array (the bytes
    `np.save` writes for their concatenation) without ever holding them together; returns the
    count. The header is written first with a count of 0 and again once the pieces are counted:
    it is 128 bytes for any count."""
    count = 0
    with open(path, "wb") as out:
        out.write(_npy_header(0))
        for piece in pieces:
            out.write(np.ascontiguousarray(piece, dtype="<u8").tobytes())
            count += len(piece)
        out.seek(0)
        out.write(_npy_header(count))
    return count


def _npy_header(count: int) -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<u8", "fortran_order": False, "shape": (count,)})
    assert len(header.getvalue()) == NPY_HEADER_BYTES
    return header.getvalue()
