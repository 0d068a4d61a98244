"""What a task reports of an input it could not read to the end: the line each such file gets on
stderr and in `files_failed`, for the error its reader raised, or for the record it was cut at
after its reader failed a worker twice (pipeline/engine/supervisor.py); and any error in one line
with where it was raised (`described`), as a stage's error on its documents is reported too."""

from __future__ import annotations

import traceback
from pathlib import Path

from pipeline.common.errors import OUT_OF_SPACE, InputError
from pipeline.common.warn import warn


def cut_problem(reason: str, stop: int, failures: int = 0) -> str:
    """Why a file is read only up to record `stop`: the reader failed its worker twice there, or
    its documents failed it `failures` times in all (supervisor.MAX_FAILURES_PER_FILE)."""
    if failures:
        return (f"{reason}: its documents failed the worker {failures} times, the last at record {stop} "
                "(the rest of the file is skipped)")
    if stop > 0:
        return f"{reason} while reading record {stop} (the rest of the file is skipped)"
    # Before the first record: the reader's preparation (loading, unpacking, indexing) or its
    # first record; a preparation that sent heartbeats stopped sending them.
    how = ("its reader made no progress for --document-timeout seconds, twice" if reason == "timeout"
           else "its worker died twice while reading it")
    return f"{reason} before its first record ({how}; the whole file is skipped)"


# What a reader raises on a damaged file: anything else is an error it did not expect.
EXPECTED_READ_ERRORS = (InputError, OSError, EOFError, ValueError, UnicodeError)


def count_unreadable(error: Exception, path: str | None, files_failed: list[dict]) -> None:
    """An unreadable file, or its unreadable rest, reported and counted (after the items read
    before the damage); raised again when it is no bad input.

    An error of another type (a library's own, such as py7zr's PasswordRequired for an encrypted
    archive) is counted the same way, saying where it was raised: one hostile file must not end a
    long run, and the line says enough to report it if the reader is at fault."""
    if isinstance(error, InputError):
        files_failed.append({"path": path, "problem": error.problem})
        warn(f"warning: {error}")
        return
    if isinstance(error, OSError) and error.errno in OUT_OF_SPACE or path is None:
        raise error  # a full disk (a reader unpacking an archive), or herd's own parts: no bad input
    # One unreadable file must not end a long run: it is reported and counted.
    problem = (f"{type(error).__name__}: {error}" if isinstance(error, EXPECTED_READ_ERRORS)
               else described(error, before_where="an error its reader did not expect, raised at"))
    files_failed.append({"path": path, "problem": problem})
    warn(f"warning: {path}: {problem}")


def described(error: BaseException, context: str = "", before_where: str = "at") -> str:
    """`error` in one line for a warning and the run's record: its type, its message (200
    characters at most), `context`, and where it was raised, "(at engine/runner.py:12)", to
    report it by."""
    message = str(error)
    message = message if len(message) <= 200 else message[:200] + "..."
    frames = traceback.extract_tb(error.__traceback__)
    where = f" {'/'.join(Path(frames[-1].filename).parts[-2:])}:{frames[-1].lineno}" if frames else ""
    return f"{type(error).__name__}: {message}{context} ({before_where}{where})"
