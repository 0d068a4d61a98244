"""The file a shard is written into: written and SHA-256-hashed from the buffers a pyarrow stream
writer hands over, on a thread beside the document loop where a core is left for it."""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from typing import Any

# Whether shard files of this process, and of the workers it forks next, are written and hashed
# on a thread beside the document loop (see `write_in_background`).
_background_writes = True


def write_in_background(enabled: bool) -> None:
    """Whether this process's shard files, and those of the workers it forks after this call, are
    written and hashed on a thread of their own. That thread is worth a core of its own: where
    every core already runs a worker's document loop it only competes with them (2 workers on 2
    cores took about 6% more CPU and wall time with it), so the supervisor turns it off there."""
    global _background_writes
    _background_writes = enabled


class HashingFile:
    """A file written and SHA-256-hashed from buffers handed over: the sink of a pyarrow stream
    writer (`write` and `closed` are all it asks of a Python file).

    Buffers go over a step (`STEP` bytes) at a time, one `writev` each, and are hashed while
    they are still in cache, instead of re-reading the file. `threaded` (by default the process's
    `write_in_background` setting, for a file with a checksum): the document loop only builds
    batches, and writing them (the copy into the page cache) and hashing them (about as much CPU
    again) run beside it on a background thread; at most one step waits, which bounds the memory
    held, and a write error is kept and raised at the writer's next call. Otherwise the loop
    writes each step itself.
    """

    STEP = 2 << 20
    MAX_BUFFERS_PER_WRITE = 512  # below every system's IOV_MAX

    def __init__(self, path: str, checksum: bool = True, threaded: bool | None = None) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)  # fails here if it can't
        self.closed = False
        self.size = 0
        self.error: BaseException | None = None
        self.digest = hashlib.sha256() if checksum else None
        self._step: list[Any] = []
        self._step_bytes = 0
        self._steps: queue.Queue[list[Any] | None] | None = None
        self._thread: threading.Thread | None = None
        # Without a checksum the thread would only move the copy into the page cache, and cost
        # more CPU in hand-overs than it takes off the loop (measured: 2.4 against 1.9 us per web page).
        if (_background_writes and checksum) if threaded is None else threaded:
            self._steps = queue.Queue(1)
            self._thread = threading.Thread(target=self._write_steps, name=f"write {path}", daemon=True)
            self._thread.start()

    def write(self, data: Any) -> int:
        """Take `data` (bytes or a pyarrow Buffer, which must not change afterwards) to write."""
        if self.error is not None:
            raise self.error
        size = len(data)
        self._step.append(data)
        self._step_bytes += size
        self.size += size
        if self._step_bytes >= self.STEP:
            self._hand_over()
        return size

    def close(self) -> tuple[int, str]:
        """Wait until everything is written; the file's size and SHA-256 ("" without a checksum)."""
        self._stop()
        self.closed = True
        os.close(self.fd)
        if self.error is not None:
            raise self.error
        return self.size, self.digest.hexdigest() if self.digest is not None else ""

    def abort(self) -> None:
        self._stop()
        self.closed = True
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def _hand_over(self) -> None:
        step, self._step, self._step_bytes = self._step, [], 0
        if self._steps is not None:
            self._steps.put(step)
        elif self.error is None:
            try:
                self._write_step(step)
            except BaseException as e:  # raised at the next call, as the thread's would be
                self.error = e

    def _stop(self) -> None:
        if self._thread is None:
            if not self.closed:
                self._hand_over()
            return
        if not self._thread.is_alive():
            return  # stopped already: an abort after a failed close
        self._hand_over()
        assert self._steps is not None
        self._steps.put(None)
        self._thread.join()

    def _write_steps(self) -> None:
        assert self._steps is not None
        while (step := self._steps.get()) is not None:
            if self.error is not None:
                continue  # after a failure only drain, so the writer never blocks
            try:
                self._write_step(step)
            except BaseException as e:  # kept for the writer to raise: this thread must not die
                self.error = e

    def _write_step(self, step: list[Any]) -> None:
        for first in range(0, len(step), self.MAX_BUFFERS_PER_WRITE):
            _write_all(self.fd, step[first : first + self.MAX_BUFFERS_PER_WRITE])
        if self.digest is not None:
            for data in step:
                self.digest.update(data)


def _write_all(fd: int, buffers: list[Any]) -> None:
    written = os.writev(fd, buffers)
    if written == sum(map(len, buffers)):
        return
    # A short write (the disk filling up): write the rest piece by piece, so that the
    # error that follows is raised with its errno.
    for data in buffers:
        view = memoryview(data)
        skip = min(written, view.nbytes)
        written -= skip
        view = view[skip:]
        while view:
            view = view[os.write(fd, view) :]
