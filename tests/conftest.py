"""Shared fixtures: the repository root and the installed console scripts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

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
#
# The home folder and the XDG folders are redirected in pytest_configure, before any test module
# is imported: libraries fix their paths at import (Ray's `~/.ray`, caches under `~/.cache`), so a
# redirect made later, in a fixture, comes after they have already chosen the real home.

REDIRECTED = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME",
              "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")  # torch.compile's caches default to /tmp/<name>_<user>
_outside: dict[str, object] = {}


def file_states(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder`: its bytes and mtime_ns, by path inside it (a rerun that finds its
    work done must leave both as they were)."""
    return {str(f.relative_to(folder)): (f.read_bytes(), f.stat().st_mtime_ns)
            for f in sorted(folder.rglob("*")) if f.is_file()}


def xattrs_kept(folder: Path) -> bool:
    """Whether files in `folder` keep extended attributes (the seals of pipeline/common/files.py)."""
    probe = folder / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


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


def _home_entries(home: Path) -> set[str]:
    """The home folder's entries and those of its folders, one level down: a new ~/.ray shows, and
    so does a new ~/.cache/torch where ~/.cache was there before."""
    entries = set()
    for name in os.listdir(home):
        entries.add(name)
        # A checkout in the home folder (~/herd) is the working tree's, checked by git above: its
        # ignored caches (.pytest_cache, .hypothesis) are no write to the home.
        if (home / name).resolve() == REPO:
            continue
        if (home / name).is_dir() and not (home / name).is_symlink():
            try:
                entries.update(f"{name}/{child}" for child in os.listdir(home / name))
            except OSError:
                pass
    return entries


def _is_xdist_worker(config: pytest.Config) -> bool:
    """A pytest-xdist worker (the suite runs on every core, pyproject.toml's addopts): the
    controller that started it snapshots, redirects and checks, and the worker inherits its
    environment, HOME included."""
    return hasattr(config, "workerinput")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto` (pyproject.toml's addopts) runs a session of one test file, or of tests named in
    one file, in this process: `--dist loadfile` gives a file to one worker anyway, and starting
    workers would cost seconds and save none. Anything wider gets pytest-xdist's own count."""
    files = {arg.split("::", 1)[0] for arg in config.args}
    if len(files) == 1 and next(iter(files)).endswith(".py"):
        return 0
    return None


def pytest_configure(config: pytest.Config) -> None:
    """Snapshot the working tree and the real home (two levels), then point HOME, the XDG folders
    and torch.compile's caches into a fresh temporary folder so that CLIs and libraries write there."""
    if _is_xdist_worker(config):
        return
    home = Path.home()
    _outside.update(home=home, home_before=_home_entries(home), repo_before=_untracked_files(),
                    env={name: os.environ.get(name) for name in REDIRECTED})
    fake_home = Path(tempfile.mkdtemp(prefix="herd-test-home-"))
    _outside["fake_home"] = fake_home
    os.environ["HOME"] = str(fake_home)
    for name in REDIRECTED[1:]:
        os.environ[name] = str(fake_home / name.lower())


def pytest_unconfigure(config: pytest.Config) -> None:
    for name, value in _outside.get("env", {}).items():  # type: ignore[union-attr]
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if "fake_home" in _outside:
        shutil.rmtree(_outside["fake_home"], ignore_errors=True)  # type: ignore[arg-type]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session when a file appeared in the working tree or in the real home (two levels):
    checked once, by the process that took the snapshot, after every worker has finished."""
    if "home" not in _outside:  # an xdist worker: it took no snapshot (pytest_configure)
        return
    home: Path = _outside["home"]  # type: ignore[assignment]
    escaped = sorted(str(REPO / f) for f in _untracked_files() - _outside["repo_before"])  # type: ignore[operator]
    escaped += sorted(str(home / n) for n in _home_entries(home) - _outside["home_before"])  # type: ignore[operator]
    if escaped:
        message = "ERROR: tests wrote outside their temporary folders: " + ", ".join(escaped[:20])
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.line("")  # past the progress dots, which end in no newline under -q
            reporter.line(message, red=True, bold=True)
        else:
            print(message, file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
