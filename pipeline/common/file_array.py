"""A flat array stored in a file, read a slice at a time, holding no file descriptor or mapping.

A reader of many files at once (the trainer's token shards: two files per corpus shard, about
37,000 for the paper's corpus; a line-dedup group's 1,900 key files) cannot keep them open or
mapped: a `np.memmap` keeps a file descriptor, and the usual limit is 1,024 of them (the kernel's
limit on mappings is 65,530). A `FileArray` opens its file for each read only, and reads with one
`preadv` straight into the array it returns: a few microseconds a read, where a training window
or a merge's bucket takes far longer to use.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class FileArray:
    """`length` items of `dtype` from byte `offset` of the file at `path`: `len(a)`, `a[i]`, `a[i:j]`
    (a new array), `a.searchsorted(value)` on a sorted one. A file shorter than its items raises
    OSError naming it."""

    def __init__(self, path: Path, dtype: np.dtype, length: int, offset: int = 0) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.length = length
        self.offset = offset

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: int | slice) -> np.ndarray | int:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.length)
            if step != 1:
                raise ValueError("a FileArray is read in runs of items: no step")
            out = np.empty(max(stop - start, 0), dtype=self.dtype)
            self.read_into(start, out)
            return out
        index = key + self.length if key < 0 else key
        if not 0 <= index < self.length:
            raise IndexError(f"index {key} out of range for {self.length} items of {self.path}")
        return self[index : index + 1][0].item()

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        whole = self[:]
        assert isinstance(whole, np.ndarray)
        return whole if dtype is None else whole.astype(dtype)

    def read_into(self, start: int, out: np.ndarray) -> None:
        """Items [start, start + len(out)) into `out`, a contiguous array of this dtype."""
        view = memoryview(out).cast("B")
        position = self.offset + self.dtype.itemsize * start
        if not view:
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            while view:
                got = os.preadv(fd, [view], position)
                if not got:
                    raise OSError(f"{self.path}: ends before its {self.length} items of {self.dtype} do")
                view, position = view[got:], position + got
        finally:
            os.close(fd)

    def searchsorted(self, value: int, side: str = "left") -> int:
        """Where `value` goes in the sorted array (np.searchsorted's answer), by a binary search
        that reads one item a step."""
        low, high = 0, self.length
        while low < high:
            middle = (low + high) // 2
            item = self[middle]
            if item < value or (side == "right" and item == value):
                low = middle + 1
            else:
                high = middle
        return low
