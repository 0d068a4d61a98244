"""Errors that end a command with one clear line and exit status 2."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from typing import Iterator

# A write that failed for lack of space: a full disk, a quota, or a file size limit (RLIMIT_FSIZE).
OUT_OF_SPACE = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


class UserError(Exception):
    """A problem the user can fix: a wrong argument, a missing path, an unusable input.

    The CLI prints `str(error)` on one line and exits with status 2, never a traceback.
    """


class InputError(UserError):
    """A whole input file is unusable. Carries the path so the message always names it."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def out_of_space(error: BaseException) -> str | None:
    """The line a command prints when a write failed for lack of space, else None."""
    if not isinstance(error, OSError) or error.errno not in OUT_OF_SPACE:
        return None
    where = error.filename if error.filename is not None else "a file"
    return f"{where}: cannot write: {os.strerror(error.errno)} ({errno.errorcode[error.errno]})"


@contextlib.contextmanager
def exit_on_errors(prog: str, rerun_hint: str) -> Iterator[None]:
    """The one-line endings every command shares: a user error or a full disk exits 2, Ctrl-C 130.

    `rerun_hint` says how to carry on ("rerun the same command to resume"): finished work keeps
    its markers and every file under a final name is whole, so rerunning is always safe.
    """
    try:
        yield
    except UserError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        line = out_of_space(e)
        if line is None:
            raise
        print(f"{prog}: error: {line}; free space and {rerun_hint}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; {rerun_hint}", file=sys.stderr)
        sys.exit(130)
