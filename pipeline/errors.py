"""Errors that end a command with one clear line and exit status 2."""

from __future__ import annotations


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
