"""Stopping a run cleanly on SIGTERM, SIGINT or SIGHUP: SIGTERM is what Slurm, Kubernetes,
`docker stop` and `timeout` send before they kill a job; SIGINT is Ctrl-C; SIGHUP is the terminal
going away (an ssh session dropped, a terminal window closed), whose default would end the run
with nothing saved since its last checkpoint.

The handler only counts the signal: a Python signal handler runs between two bytecodes of the
main thread, anywhere in a step or in the middle of writing a checkpoint, so it must not raise
(as SIGINT's default KeyboardInterrupt does) or save anything itself. The loop reads the request at
the next step boundary, where the model and optimizer are consistent, saves a checkpoint and ends.
A KeyboardInterrupt raised wherever the main thread happens to be could land inside the optimizer's
update, between its parameter groups, and a checkpoint saved then would hold a half-applied step
under the previous step's number; under torchrun each rank would meet it at another point of its
collectives. A second SIGTERM while that checkpoint is being written is counted too and changes
nothing: the save runs to its end (and is atomic anyway, train/checkpoint.py). A second SIGINT is
someone at a terminal who will not wait: it raises KeyboardInterrupt, and the run ends without
that checkpoint (a half-written one is a temporary folder no resume reads).

Under torchrun the signal may reach the ranks at different moments (or only some of them):
the ranks combine their requests at every step boundary (`Parallel.any_rank`, one one-element
all-reduce) so that all of them stop after the same step. torchrun passes a SIGTERM it receives on
to every rank, waits `--shutdown-timeout` seconds (30 by default) and then kills them, and exits
non-zero itself even when the ranks saved and exited 0.

Before the first step there is nothing to save, and no step boundary may ever come: `train` may be
blocked in its setup (a rank waiting for peers that never join, a slow or stuck read). From its
start until training begins (`install(starting=True)`, then `started`), a SIGTERM or SIGINT ends the
command at once instead, as it would any command (Terminated, KeyboardInterrupt: the CLI's one line,
exit 143 or 130), saying that nothing was trained.

After SIGHUP, a standard stream on a terminal that hung up writes nowhere from then on
(/dev/null): every write to it fails (EIO), and one from the progress bar or the last line would
end the run before its checkpoint. A stream redirected to a file or a pipe is left as it is: the
log goes on.
"""

from __future__ import annotations

import os
import signal
import stat
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from pipeline.common.errors import Terminated
from train.config import env_world

# SIGHUP where the system has one (not on Windows).
HANDLED = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name))
# What the CLI's line says after "terminated (SIGTERM); " or "interrupted; " when a signal ends the
# command before training began: "--resume" would find no checkpoint of a new run.
NOT_STARTED = "training had not started (nothing trained or saved); rerun the same command"


class StopRequest:
    """Counts the SIGTERMs, SIGINTs and SIGHUPs this process receives between `install` and `restore`."""

    def __init__(self) -> None:
        self.signals = 0
        self.first = ""  # the name of the first signal counted ("SIGTERM", "SIGINT", "SIGHUP")
        self._acknowledges = False  # rank 0 says at once that it took the first signal (`install`)
        self._installed = False
        self._starting = False  # until `started`: SIGTERM and SIGINT end the command at once
        self._previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    @property
    def requested(self) -> bool:
        return self.signals > 0

    def _count(self, signum: int, frame: FrameType | None) -> None:
        if self._starting and signum in (signal.SIGTERM, signal.SIGINT):
            # Raised wherever the main thread is, as any command's: a blocking call it is in (a
            # sleep, a lock, a read) ends with it, where a count waited for a step that never came.
            raise (Terminated if signum == signal.SIGTERM else KeyboardInterrupt)(NOT_STARTED)
        if signum == signal.SIGINT and self.requested:
            raise KeyboardInterrupt  # Ctrl-C again: quit now, without waiting for the save
        if signum == getattr(signal, "SIGHUP", None):
            _leave_the_terminal()
        self.signals += 1
        if not self.first:
            self.first = signal.Signals(signum).name
            if self._acknowledges:
                _acknowledge(self.first)

    def install(self, starting: bool = False) -> None:
        """Count SIGTERM, SIGINT and SIGHUP instead of dying of them, until `restore`. Python delivers
        signals to the main thread only: from another thread nothing is installed. `starting`: until
        `started`, a SIGTERM or SIGINT ends the command at once instead (a SIGHUP is counted)."""
        self._starting = starting
        if threading.current_thread() is threading.main_thread():
            self._acknowledges = env_world()[0] == 0  # read here, not in the handler: every rank gets the signal
            self._previous = {signum: signal.signal(signum, self._count) for signum in HANDLED}
            self._installed = True

    def started(self) -> None:
        """Training begins: from here a signal is counted, and stops the run after the step in progress."""
        self._starting = False

    def restore(self) -> None:
        """The handlers from before `install` are back (a signal from now on does what it did)."""
        if self._installed:
            for signum, previous in self._previous.items():
                # None: the previous handler was not set from Python; the default is what it did.
                signal.signal(signum, signal.SIG_DFL if previous is None else previous)
            self._installed = False


def _acknowledge(name: str) -> None:
    """Say at once that the signal was taken: a step of a large model can take minutes, and
    someone who pressed Ctrl-C, or a log read while a job is being stopped, would otherwise see
    nothing until it ends. Written straight to the descriptor, not through `sys.stderr`: the
    handler may run in the middle of a write to that stream (the progress bar's), which a second
    write into its buffer would break."""
    again = " (Ctrl-C again quits without saving)" if name == "SIGINT" else ""
    try:
        os.write(2, f"\ntrain: {name} received: stopping after the step in progress, which is saved{again}\n".encode())
    except OSError:  # a terminal gone (SIGHUP), or no stderr: the run's last line says it anyway
        pass


def _leave_the_terminal() -> None:
    """Standard streams on a terminal that hung up now write to /dev/null (see the module's
    docstring). Such a terminal is a character device that no longer answers as a terminal
    (its ioctls fail with EIO too); one that still does, a SIGHUP sent by hand, keeps its output."""
    for fd in (0, 1, 2):
        try:
            if not stat.S_ISCHR(os.fstat(fd).st_mode) or os.isatty(fd):
                continue
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, fd)
            os.close(devnull)
        except OSError:  # a closed descriptor: nothing to write to, nothing to fail
            continue
