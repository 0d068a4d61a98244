"""Set operations on sorted numpy arrays, without `np.unique` or `np.isin`.

Both of those call `np.ma.is_masked`, whose first use imports numpy's masked-array package:
40 ms of CPU in every process that calls them, the largest fixed cost of a small run. Arrays
already sorted (hashes sorted in place to find repeats) need neither's own sort either.
"""

from __future__ import annotations

import numpy as np


def distinct(ordered: np.ndarray) -> np.ndarray:
    """The values of a sorted 1-D array, each once (as `np.unique` gives them)."""
    if len(ordered) < 2:
        return ordered.copy()
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def find(needles: np.ndarray, haystack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of `needles`, whether the sorted `haystack` holds it, and where (an index into
    `haystack`, meaningful where it does)."""
    where = np.searchsorted(haystack, needles)
    if not len(haystack):
        return np.zeros(len(needles), dtype=bool), where
    clipped = np.minimum(where, len(haystack) - 1)
    return haystack[clipped] == needles, clipped
