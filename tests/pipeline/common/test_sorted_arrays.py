import subprocess
import sys

import numpy as np
import pytest

from pipeline.common.sorted_arrays import distinct, find


@pytest.mark.parametrize("values", [[], [7], [3, 3], [1, 2, 2, 2, 5, 9, 9], [0, 2**64 - 1, 2**64 - 1]])
def test_distinct_gives_each_value_once_in_order(values: list[int]) -> None:
    got = distinct(np.array(values, dtype=np.uint64))
    assert got.dtype == np.uint64
    assert got.tolist() == sorted(set(values))


def test_distinct_returns_a_copy() -> None:
    ordered = np.array([4], dtype=np.uint64)
    distinct(ordered)[0] = 5
    assert ordered.tolist() == [4]


def test_find_says_which_needles_the_haystack_holds_and_where() -> None:
    haystack = np.array([2, 4, 4, 8, 2**64 - 1], dtype=np.uint64)
    needles = np.array([1, 2, 3, 4, 8, 9, 2**64 - 1, 2**64 - 2], dtype=np.uint64)
    found, where = find(needles, haystack)
    assert found.tolist() == [False, True, False, True, True, False, True, False]
    assert [int(haystack[w]) for w, f in zip(where, found) if f] == [2, 4, 8, 2**64 - 1]


def test_find_in_an_empty_haystack_finds_nothing() -> None:
    found, _ = find(np.array([1, 2], dtype=np.uint64), np.empty(0, dtype=np.uint64))
    assert found.tolist() == [False, False]


def test_a_run_does_not_import_numpys_masked_arrays_or_random(tmp_path) -> None:  # noqa: ANN001
    # Their first import is 50 ms of CPU in the parent of every run (the check for repeated ids).
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"id": "a", "text": "one"}\n{"id": "b", "text": "two"}\n')
    script = (
        "import sys\n"
        "from pipeline.commands.run import run_source\n"
        "from pipeline.engine.registry import source_class\n"
        f"run_source(source_class('jsonl')(), {str(folder)!r}, {str(tmp_path / 'out')!r}, workers=1,\n"
        "           show_progress=False)\n"
        "print(sorted(m for m in ('numpy.ma', 'numpy.random') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
