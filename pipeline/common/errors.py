"""Errors that end a command with one clear line and exit status 2."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
from types import FrameType
from typing import Iterator

# A write that failed for lack of space: a full disk, a quota, or a file size limit (RLIMIT_FSIZE).
OUT_OF_SPACE = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


class UserError(Exception):
    """A problem the user can fix: a wrong argument, a missing path, an unusable input.

    The CLI prints `str(error)` on one line and exits with status 2, never a traceback.
    """


def shown(value: object, width: int = 60) -> str:
    """A value from outside (a server's, a file's first bytes) in a message: quoted, escaped
    (never a second line), cut to `width`."""
    text = repr(value) if not isinstance(value, bytes) else repr(value)[1:]
    return text if len(text) <= width else text[: width - 3] + "..."


class InputError(UserError):
    """A whole input file is unusable. Carries the path so the message always names it."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class CountedProblem(Exception):
    """A reader's reason to give up on an input (a whole archive, the rest of a dump): `reason`
    is the short label a run counts it under, `detail` says what was found."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail

    @property
    def problem(self) -> str:
        """What a run records for the input, and `pipeline audit --raw` prints: reason (detail)."""
        return f"{self.reason} ({self.detail})" if self.detail else self.reason


def out_of_space(error: BaseException) -> str | None:
    """The line a command prints when a write failed for lack of space, else None."""
    if not isinstance(error, OSError) or error.errno not in OUT_OF_SPACE:
        return None
    where = error.filename if error.filename is not None else "a file"
    return f"{where}: cannot write: {os.strerror(error.errno)} ({errno.errorcode[error.errno]})"


def os_error_line(error: OSError) -> str:
    """One line for a failed file operation, naming the file (or both, for a rename)."""
    where = error.filename if error.filename is not None else "a file"
    if error.filename2 is not None:
        where = f"{where} -> {error.filename2}"
    code = errno.errorcode.get(error.errno, "") if error.errno is not None else ""
    what = error.strerror or str(error) or type(error).__name__
    return f"{where}: {what}" + (f" ({code})" if code else "")


class Terminated(KeyboardInterrupt):
    """SIGTERM (what Slurm, Kubernetes, `docker stop` and `timeout` send), raised wherever the main
    thread is, as Ctrl-C raises KeyboardInterrupt: the same clean-ups run (workers ended, locks
    released, nothing left half-written under a final name), then the command's own line."""


# Whether a SIGTERM has been raised as Terminated in this process. A library that catches every
# KeyboardInterrupt in a blocking call and raises its own instead (Ray's ray.get/ray.wait: its
# signal check takes Terminated for one) would make a SIGTERM end the command as a Ctrl-C (130).
_sigterm_raised = False


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    global _sigterm_raised
    _sigterm_raised = True
    raise Terminated


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Around starting processes (a fork): a SIGINT or SIGTERM that comes meanwhile is held and
    handled as the block ends, by the handler the command set, not lost and not half-handled.

    Python runs a signal's handler in the main thread between two bytecodes, wherever that is; one
    that raises (Terminated, KeyboardInterrupt) inside os.fork's at-fork hooks is swallowed
    ("Exception ignored in ..."), and the run went on to finish as if never stopped. Raised in the
    middle of starting a pool of workers, it left a started worker nobody knew of, which the exit
    then waited for for ever. The caller records each process it starts before the block ends, so
    that the exception the held signal raises finds every one of them to stop."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers run in the main thread only: nothing to hold here
        return
    held: list[int] = []
    replaced = {}
    parent = os.getpid()

    def hold(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != parent:
            # A child forked meanwhile inherits this handler: it ends at once and quietly (no
            # traceback from its start-up code); its parent, which the signal reached too or which
            # sent it to stop it, ends the run.
            os._exit(128 + signum)
        held.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if callable(handler):
            replaced[signum] = handler
            signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in replaced.items():
            signal.signal(signum, handler)
        for signum in held:  # each one, in order: `train` counts them (train/preemption.py)
            replaced[signum](signum, None)


@contextlib.contextmanager
def sigterm_ends_at_once() -> Iterator[None]:
    """Around one long call into native code that returns only when done (SentencePiece's
    training): Python runs a signal handler only between two bytecodes, so a Terminated would
    wait for the call's end, minutes or hours; SIGTERM ends the process at once meanwhile, as it
    does any program that installs no handler. What the call writes is judged by the next run."""
    if signal.getsignal(signal.SIGTERM) is not _raise_terminated:
        yield
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, _raise_terminated)


@contextlib.contextmanager
def exit_on_errors(prog: str, rerun_hint: str) -> Iterator[None]:
    """The one-line endings every command shares: a user error or a full disk exits 2, Ctrl-C
    130, SIGTERM 143 (128 + its number, what a shell reports for a process it killed).

    `rerun_hint` says how to carry on ("rerun the same command to resume"): finished work keeps
    its markers and every file under a final name is whole, so rerunning is always safe. An
    interrupt raised with a message of its own (`train` before its first step) says that instead. A
    SIGTERM ignored when the command started (SIG_IGN inherited) stays ignored; `train` counts
    it instead, to save a checkpoint first (train/preemption.py).
    """
    global _sigterm_raised
    _sigterm_raised = False  # a command run in-process after another (tests) starts with none
    handle_sigterm = threading.current_thread() is threading.main_thread() and \
        signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    if handle_sigterm:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except UserError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:
        # `pipeline stats | head -1`: the reader stopped. Nothing more can go to stdout, and the
        # interpreter must not try again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"{prog}: error: standard output was closed (the reading end of the pipe stopped); "
              "output cut short", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        line = out_of_space(e)
        if line is not None:
            print(f"{prog}: error: {line}; free space and {rerun_hint}", file=sys.stderr)
        else:  # an unwritable or unreadable path, a name too long, a missing folder
            print(f"{prog}: error: {os_error_line(e)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as e:
        if isinstance(e, Terminated) or _sigterm_raised:  # a SIGTERM, whatever a library made of it
            print(f"{prog}: terminated (SIGTERM); {str(e) or rerun_hint}", file=sys.stderr)
            sys.exit(128 + signal.SIGTERM)
        print(f"{prog}: interrupted; {str(e) or rerun_hint}", file=sys.stderr)
        sys.exit(130)
    finally:
        if handle_sigterm and signal.getsignal(signal.SIGTERM) is _raise_terminated:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
