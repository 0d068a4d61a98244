"""Heartbeats: how a reader with a long preparation tells the engine that it is still moving.

The per-document timeout (pipeline/engine/supervisor.py) times documents: a worker whose
position has not moved for the budget is killed. Some readers work for a long time before
their first document, or between two: Stack Exchange loads a whole Posts.xml into SQLite and
indexes it, and other readers unpack an archive, sort, or open a slow remote file. Such a
reader calls `heartbeat(done, note)` as it goes, every few megabytes or rows:

- `done` says how far it is (bytes parsed, rows inserted, steps taken): a heartbeat counts as
  progress only when `done` differs from the last one, so a reader stuck in a loop that
  repeats the same heartbeat is still a stall;
- `note` says it in words ("loaded 1.2 GB of Posts.xml"): a worker killed anyway names it.

While a worker is reading, each such heartbeat restarts its budget: a preparation that keeps
moving is never killed, and one that stops (no heartbeat for the budget) still is, like a stalled
document. A heartbeat sent while documents go through the stages does not count: the budget
times a stage's work on a document whatever the stage says.

Outside a supervised worker (a test or a library reading a file directly) a heartbeat does
nothing. The supervisor installs the receiver in each worker with `send_heartbeats_to`.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO

from pipeline.common.files import single_read

Receiver = Callable[[int, str], None]  # (done, note)

_receiver: Receiver | None = None


def heartbeat(done: int, note: str) -> None:
    """Tell the engine that this reader is still preparing, `done` far along (see the module)."""
    receiver = _receiver
    if receiver is not None:
        receiver(done, note)


def send_heartbeats_to(receiver: Receiver | None) -> None:
    """Where this process's heartbeats go from now on (None: nowhere)."""
    global _receiver
    _receiver = receiver


def megabytes(count: int) -> str:
    return f"{count / 1e9:.1f} GB" if count >= 1e9 else f"{count / 1e6:.1f} MB"


class HeartbeatReader(io.RawIOBase):
    """`inner`, read through, with a heartbeat every `every` bytes: "read 1.2 GB of Posts.xml"."""

    def __init__(self, inner: IO[bytes], what: str, verb: str = "read", every: int = 1 << 20) -> None:
        self.inner = inner
        self.what = what
        self.verb = verb
        self.every = every
        self.count = 0
        self._next_beat = every

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = single_read(self.inner)(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        if self.count >= self._next_beat:
            self._next_beat = self.count + self.every
            heartbeat(self.count, f"{self.verb} {megabytes(self.count)} of {self.what}")
        return n
