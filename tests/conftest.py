"""Shared fixtures: the repository root and the installed console scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def repo() -> Path:
    return REPO


def script(name: str) -> str:
    """Path of an installed console script (pipeline, tokenizer, train) beside this Python."""
    path = BIN / name
    assert path.exists(), f"{path} missing: run ./install.sh"
    return str(path)


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ---------------------------------------------------------------------------------------
# No test writes outside its temporary folder: checked once for the whole session.

def _untracked_files() -> set[str]:
    """Files git neither tracks nor ignores, plus everything under the repository's data/ and
    runs/ (ignored by git, and exactly where a CLI run from the repository root writes)."""
    found = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    files = {f for f in found if f}
    for folder in ("data", "runs"):
        for parent, _, names in os.walk(REPO / folder):
            files.update(str(Path(parent, n).relative_to(REPO)) for n in names)
    return files


@pytest.fixture(scope="session", autouse=True)
def nothing_written_outside_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Snapshot the working tree and the home folder's top level around the session; fail the
    session when a file appeared there. HOME points into the session's temporary folder so that
    CLIs and libraries (caches, configs) write there, not into the user's home."""
    home = Path.home()
    repo_before, home_before = _untracked_files(), set(os.listdir(home))
    real_home = os.environ.get("HOME")
    os.environ["HOME"] = str(tmp_path_factory.mktemp("home"))
    try:
        yield
    finally:
        if real_home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = real_home
    escaped = sorted(str(REPO / f) for f in _untracked_files() - repo_before)
    escaped += sorted(str(home / n) for n in set(os.listdir(home)) - home_before)
    if escaped:
        pytest.fail("tests wrote outside their temporary folders: " + ", ".join(escaped[:20]), pytrace=False)
