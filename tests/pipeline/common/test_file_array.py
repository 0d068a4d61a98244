"""Arrays read from their files a slice at a time: the values numpy reads, and no descriptor held."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pipeline.common.file_array import FileArray


def _saved(tmp_path: Path, values: np.ndarray, header: bytes = b"") -> Path:
    path = tmp_path / "array.bin"
    path.write_bytes(header + values.tobytes())
    return path


def test_slices_items_and_the_whole_are_the_files_values(tmp_path: Path) -> None:
    values = np.arange(1000, dtype="<u2") * 7
    array = FileArray(_saved(tmp_path, values, header=b"H" * 13), np.dtype("<u2"), 1000, offset=13)
    assert len(array) == 1000
    assert array[10:20].tolist() == values[10:20].tolist()
    assert array[990:2000].tolist() == values[990:].tolist()  # clipped as a list slice is
    assert array[-3:].tolist() == values[-3:].tolist() and array[5:5].tolist() == []
    assert (array[0], array[999], array[-1]) == (0, 6993, 6993)
    assert np.asarray(array).tolist() == values.tolist()
    with pytest.raises(IndexError):
        array[1000]
    with pytest.raises(ValueError):
        array[::2]


@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted_is_numpys(tmp_path: Path, side: str) -> None:
    values = np.array([0, 3, 3, 3, 8, 20, 20, 41], dtype="<i8")
    array = FileArray(_saved(tmp_path, values), np.dtype("<i8"), len(values))
    for probe in [-1, 0, 1, 3, 4, 8, 19, 20, 41, 42]:
        assert array.searchsorted(probe, side=side) == int(np.searchsorted(values, probe, side=side)), probe


def test_no_descriptor_is_held_between_reads(tmp_path: Path) -> None:
    path = _saved(tmp_path, np.arange(100, dtype="<u4"))
    before = len(os.listdir("/proc/self/fd"))
    arrays = [FileArray(path, np.dtype("<u4"), 100) for _ in range(2000)]
    assert sum(int(a[50]) for a in arrays) == 50 * 2000
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_file_shorter_than_its_items_is_an_error_naming_it(tmp_path: Path) -> None:
    path = _saved(tmp_path, np.arange(10, dtype="<u4"))
    with pytest.raises(OSError, match="array.bin: ends before its 20 items"):
        FileArray(path, np.dtype("<u4"), 20)[5:15]
