"""warn: a warning is one whole line on stderr, however many processes write there at once."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO, subprocess_env

# Two forked workers, as the engine's, each writing 3,000 warnings to the stderr they share.
TWO_WORKERS = """
import os
from pipeline.common.warn import warn

children = []
for tag in ("a", "b"):
    pid = os.fork()
    if pid == 0:
        for i in range(3000):
            warn(f"warning: worker {tag}: input {i}: " + tag * 300)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""


def test_two_workers_warnings_on_one_pipe_are_every_one_a_whole_line() -> None:
    """Unbuffered (PYTHONUNBUFFERED, as Docker images and CI runners set it), print() wrote the text
    and its newline in two writes: about one line in thirty came out with the other worker's glued
    into it. The pipe is the test's own, read to its end."""
    done = subprocess.run([sys.executable, "-c", TWO_WORKERS], cwd=REPO, capture_output=True, text=True,
                          env={**subprocess_env(), "PYTHONUNBUFFERED": "1"}, timeout=120)
    assert done.returncode == 0
    lines = done.stderr.split("\n")
    assert lines.pop() == ""  # the last line ends with its newline too
    whole = re.compile(r"warning: worker ([ab]): input (\d+): (\1{300})")
    matches = [whole.fullmatch(line) for line in lines]
    assert [line for line, match in zip(lines, matches) if match is None] == []
    for tag in "ab":  # each worker's in its own order, none lost
        assert [int(m.group(2)) for m in matches if m and m.group(1) == tag] == list(range(3000))


def test_a_stderr_without_a_descriptor_gets_the_line_too(capsys: pytest.CaptureFixture) -> None:
    from pipeline.common.warn import warn

    print("before", file=sys.stderr, end=" ")  # flushed first: the warning comes after it
    warn("warning: x.json: not a number (\udcff)")
    assert capsys.readouterr().err == "before warning: x.json: not a number (\\udcff)\n"


def test_a_line_goes_whole_to_the_descriptor_after_what_was_printed(capfd: pytest.CaptureFixture) -> None:
    from pipeline.common.warn import warn

    print("before", file=sys.stderr, end=" ")
    warn("warning: x.json: not a number (\udcff)")  # a lone surrogate: escaped, never an error of its own
    assert capfd.readouterr().err == "before warning: x.json: not a number (\\udcff)\n"
