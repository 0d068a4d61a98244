"""Stopping a run cleanly on SIGTERM: what Slurm, Kubernetes, `docker stop` and `timeout` send
before they kill a job.

The handler only counts the signal: a Python signal handler runs between two bytecodes of the
main thread, anywhere in a step or in the middle of writing a checkpoint, so it must not raise
(as SIGINT's KeyboardInterrupt does) or save anything itself. The loop reads the request at the
next step boundary, where the model and optimizer are consistent, saves a checkpoint and ends.
A second SIGTERM while that checkpoint is being written is counted too and changes nothing: the
save runs to its end (and is atomic anyway, train/checkpoint.py).

Under torchrun the signal may reach the ranks at different moments (or only some of them):
the ranks combine their requests at every step boundary (`Parallel.any_rank`, one one-element
all-reduce) so that all of them stop after the same step. torchrun passes a SIGTERM it receives on
to every rank, waits `--shutdown-timeout` seconds (30 by default) and then kills them, and exits
non-zero itself even when the ranks saved and exited 0.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any


class StopRequest:
    """Counts the SIGTERMs this process receives between `install` and `restore`."""

    def __init__(self) -> None:
        self.signals = 0
        self._installed = False
        self._previous: Callable[[int, FrameType | None], Any] | int | None = None

    @property
    def requested(self) -> bool:
        return self.signals > 0

    def _count(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1

    def install(self) -> None:
        """Count SIGTERM instead of dying of it, until `restore`. Python delivers signals to the
        main thread only: from another thread nothing is installed."""
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._count)
            self._installed = True

    def restore(self) -> None:
        """The handler from before `install` is back (a SIGTERM from now on does what it did)."""
        if self._installed:
            # None: the previous handler was not set from Python; the default is what it did.
            signal.signal(signal.SIGTERM, signal.SIG_DFL if self._previous is None else self._previous)
            self._installed = False
