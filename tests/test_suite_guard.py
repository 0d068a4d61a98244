"""The suite's own guard (tests/conftest.py): a session in which a test wrote outside its temporary
folder fails and names the file, whether the tests ran in one process or on pytest-xdist workers
(the default, pyproject.toml's addopts), where only the controller can compare its snapshots."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

def inner_tree(tmp_path: Path, tests: dict[str, str]) -> Path:
    """A working tree of its own for an inner session: a git repository holding this suite's
    conftest and `tests` (file name: source), so what the inner session leaves is in no one's way."""
    tree = tmp_path / "tree"
    (tree / "tests").mkdir(parents=True)
    shutil.copy(REPO / "tests" / "conftest.py", tree / "tests" / "conftest.py")
    for name, source in tests.items():
        (tree / "tests" / name).write_text(source)
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    return tree


ESCAPING_TEST = '''
import os
from pathlib import Path

def test_writes_beside_the_tests():
    (Path(__file__).resolve().parents[1] / "escaped.txt").write_text("left behind")

def test_writes_into_the_home_it_was_started_with():
    # HOME points elsewhere by now (the redirect): the session's real one is named apart.
    (Path(os.environ["GUARD_REAL_HOME"]) / "escaped-home.txt").write_text("left behind")

def test_keeps_to_its_folder(tmp_path):
    (tmp_path / "fine.txt").write_text("in its own folder")
'''


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["0", "2"])
def test_files_written_into_the_working_tree_or_the_home_fail_the_session_and_are_named(tmp_path: Path,
                                                                                         workers: str) -> None:
    tree = inner_tree(tmp_path, {"test_escaping.py": ESCAPING_TEST})
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), GUARD_REAL_HOME=str(home))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-n", workers, "tests"], cwd=tree, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "3 passed" in done.stdout  # the tests themselves pass: the session fails for what they left
    lines = [line for line in done.stdout.splitlines() if "outside their temporary folders" in line]
    assert lines == [f"ERROR: tests wrote outside their temporary folders: {tree / 'escaped.txt'}, "
                     f"{home / 'escaped-home.txt'}"]


WHERE_TEST = '''
import os
from pathlib import Path

def test_says_where_it_ran():
    out = Path(os.environ["WHERE_OUT"]) / (Path(__file__).stem + ".txt")
    out.write_text(os.environ.get("PYTEST_XDIST_WORKER", "this process"))
'''


@pytest.mark.slow
@pytest.mark.parametrize("selection, on_workers", [
    (["tests/test_a.py"], False),
    (["tests/test_a.py::test_says_where_it_ran"], False),
    (["tests/test_a.py", "tests/test_b.py"], True),
    (["tests"], True),
])
def test_a_session_of_one_file_runs_in_its_own_process_and_a_wider_one_on_workers(
        tmp_path: Path, selection: list[str], on_workers: bool) -> None:
    # `-n auto --dist loadfile`, as pyproject.toml's addopts: one file would go to one worker
    # anyway, after seconds of starting them.
    tree, out = inner_tree(tmp_path, {"test_a.py": WHERE_TEST, "test_b.py": WHERE_TEST}), tmp_path / "out"
    out.mkdir()
    # Not the variables of this session's own xdist worker, if it runs on one: the inner tests read them.
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_XDIST")}
    env["WHERE_OUT"] = str(out)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "auto",
                           "--dist", "loadfile", *selection], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    where = {path.stem: path.read_text() for path in out.iterdir()}
    assert set(where) == ({"test_a", "test_b"} if on_workers else {"test_a"})
    assert all(w.startswith("gw") for w in where.values()) if on_workers else set(where.values()) == {"this process"}
