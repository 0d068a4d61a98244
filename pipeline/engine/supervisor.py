"""A pool of forked worker processes that the parent watches, shared by `pipeline run` and
`tokenizer encode`.

Each worker publishes where it is (which input file, which record, which stage) in a few
shared integers before every chunk of documents; the parent waits on the workers' pipes and
process sentinels, so a worker that dies is noticed at once, and a worker whose position has
not moved for the per-document budget is killed. A reader's heartbeats
(pipeline/engine/heartbeat.py) count as moving while the worker reads: a long preparation
before the first document (loading a whole Posts.xml) is timed by its heartbeats, not as one
stalled document. Either way its task is run again:

- the first failure marks the chunk in flight "careful": the next attempt goes through it one
  document at a time, so a second failure names the document exactly;
- a document that fails a worker twice is "poisoned": the next attempt drops it with the reason
  `worker_crash` or `timeout` (counted like any drop, and listed with its file and position) and
  goes on past it. A worker that dies while *reading* a record in careful mode has the rest of
  that file given up as a failed input instead: a reader cannot skip a record.

A stage's exception on a document is no worker lost: the worker drops that document as
`stage_error` itself and goes on (pipeline/engine/stage_errors.py).

A file whose documents fail the worker MAX_FAILURES_PER_FILE times is hostile rather than unlucky:
the rest of it, from the document of the last failure, is given up as a failed input (as a cut
while reading is), and the task goes on with its other files. What no input explains ends the run
with one line: failures outside any document (MAX_FAILURES_OUTSIDE_DOCUMENTS: set-up, a model that
does not load), MAX_FILES_GIVEN_UP files given up so in one task (a broken model or environment
fails on every file), or MAX_FAILURES_PER_TASK failures in all.

Task functions get an `Attempt` (what earlier failures taught) and a `Tracker` (to publish
positions and send progress); both executors' task code stays free of process handling.
"""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.common import warn as stderr  # a warning in one write: the workers' lines never interleave
from pipeline.common.errors import UserError, signals_deferred
from pipeline.engine.heartbeat import send_heartbeats_to
from pipeline.engine.hashing_file import write_in_background
from pipeline.engine.shards import skip_pandas_probe

# What a worker is doing, published in its slot.
IDLE, READING, PROCESSING = 0, 1, 2
# Slot layout: change counter, phase, file index, first item, item count, stage index, and how
# far the reader's last heartbeat said it was.
_SEQ, _PHASE, _FILE, _ITEM, _COUNT, _STAGE, _BEAT = range(7)
_SLOT_SIZE = 7
NOTE_BYTES = 160  # the last heartbeat's note, in a shared buffer: named when its worker is lost
DEFAULT_DOCUMENT_BUDGET_S = 300.0
# Failures of one task not tied to one document (during set-up, say) before the run gives up.
MAX_FAILURES_OUTSIDE_DOCUMENTS = 3
# Failures on the documents of one file (about half as many documents: each costs one or two)
# before the rest of that file is given up.
MAX_FAILURES_PER_FILE = 10
# Files of one task given up so before the run gives up.
MAX_FILES_GIVEN_UP = 3
# A backstop: every failure pins a chunk, drops a document or cuts a file, so a task ends anyway.
MAX_FAILURES_PER_TASK = 100


def check_budget(seconds: float) -> None:
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise UserError(f"--document-timeout {seconds}: must be a positive number of seconds")


@dataclass
class Attempt:
    """What earlier failed attempts of one task taught its next one."""

    # (file, first item, end item): read and processed one document at a time.
    careful: list[tuple[int, int, int]] = field(default_factory=list)
    # (file, item) -> (reason, stage index): dropped at that stage with that reason.
    poisoned: dict[tuple[int, int], tuple[str, int]] = field(default_factory=dict)
    # file -> (item, reason): the file is read only up to that item.
    cut: dict[int, tuple[int, str]] = field(default_factory=dict)
    # file -> failures on its documents, for a file cut because they were too many.
    given_up: dict[int, int] = field(default_factory=dict)

    def chunk_size(self, file: int, item: int, wanted: int) -> int:
        """How many items to take from `item` on: 1 inside a careful region, and never so many
        that a chunk runs into one."""
        for f, start, end in self.careful:
            if f != file or end <= item:
                continue
            if start <= item:
                return 1
            wanted = min(wanted, start - item)
        return wanted

    def stop_at(self, file: int) -> int | None:
        cut = self.cut.get(file)
        return None if cut is None else cut[0]


class Tracker:
    """The worker's side: where it is, its reader's heartbeats, and progress for the parent's bar."""

    def __init__(self, slot: Any = None, conn: Any = None, note: Any = None) -> None:
        self._slot = slot
        self._conn = conn
        self._note = note

    def at(self, phase: int, file: int = 0, item: int = 0, count: int = 0, stage: int = -1) -> None:
        slot = self._slot
        if slot is None:
            return
        slot[_PHASE], slot[_FILE], slot[_ITEM], slot[_COUNT], slot[_STAGE] = phase, file, item, count, stage
        if self._note is not None:
            self._note.value = b""  # a note describes the position it was sent at, no later one
        slot[_SEQ] += 1

    def beat(self, done: int, note: str) -> None:
        """A heartbeat (pipeline/engine/heartbeat.py): progress while reading when `done` moved."""
        slot = self._slot
        if slot is None:
            return
        if self._note is not None:
            self._note.value = note.encode("utf-8", "replace")[: NOTE_BYTES - 1]
        slot[_BEAT] = done % (1 << 63)  # the slot holds int64

    def stage(self, index: int) -> None:
        if self._slot is not None:
            self._slot[_STAGE] = index
            self._slot[_SEQ] += 1

    def progress(self, *values: int) -> None:
        if self._conn is not None:
            self._conn.send(("progress", values))


@dataclass
class Failure:
    """A worker that died or stalled on a task, and where it was."""

    task: int  # index into the jobs
    reason: str  # worker_crash | timeout
    how: str  # "killed by SIGKILL", "exit status 1", "no progress for 300 s"
    phase: int
    file: int
    item: int
    count: int
    stage: int
    note: str = ""  # the reader's last heartbeat at this position, if any

    @property
    def document(self) -> tuple[int, int] | None:
        """The one document it was on, when the worker was going one at a time."""
        return (self.file, self.item) if self.phase != IDLE and self.count == 1 else None


Work = Callable[[Any, Attempt, Tracker], Any]


class _Worker:
    def __init__(self, ctx: Any, work: Work, background_writes: bool) -> None:
        self.slot = ctx.RawArray("q", _SLOT_SIZE)
        self.note = ctx.RawArray("c", NOTE_BYTES)
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, self.slot, self.note, work, os.getpid(),
                                                              background_writes), daemon=True)
        self.process.start()
        child.close()
        self.job: int | None = None
        # The slot's counter and heartbeat as last seen, and when the worker was last seen moving.
        self.seen = (-1, -1, 0.0)
        self.timed_out = False

    def assign(self, job: int, payload: Any, attempt: Attempt) -> None:
        self.job = job
        self.slot[_PHASE] = IDLE
        self.seen = (self.slot[_SEQ], self.slot[_BEAT], time.monotonic())
        try:
            self.conn.send((job, payload, attempt))
        except OSError:
            pass  # it died meanwhile: its sentinel says so next, and the job is run again

    def stalled_for(self, now: float) -> float:
        """Seconds since the worker last moved on, counted only while it is on documents. Moving
        on is a new position, or, while reading, a heartbeat that says the reader got further."""
        seq, beat, phase = self.slot[_SEQ], self.slot[_BEAT], self.slot[_PHASE]
        last_seq, last_beat, moved_at = self.seen
        if seq != last_seq or (beat != last_beat and phase == READING):
            moved_at = now
        self.seen = (seq, beat, moved_at)
        if self.job is None or phase == IDLE:
            return 0.0
        return now - moved_at

    def kill(self) -> None:
        if self.process.is_alive():
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.join()
        self.conn.close()


def _worker_main(conn: Any, slot: Any, note: Any, work: Work, parent: int, background_writes: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # A handler the parent installed (a Ray worker's raises SystemExit through Ray's code) is not
    # the child's: SIGTERM simply ends it, as in a process that installed none. First thing: one
    # that raised in the code below printed a traceback.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    write_in_background(background_writes)
    skip_pandas_probe()  # every worker writes Arrow (shards, token indexes)
    _die_with_parent(parent)
    tracker = Tracker(slot, conn, note)
    send_heartbeats_to(tracker.beat)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        job, payload, attempt = message
        try:
            result = work(payload, attempt, tracker)
        except BaseException as e:  # noqa: BLE001  (handed to the parent, which decides how the run ends)
            tracker.at(IDLE)
            conn.send(("error", job, _portable(e)))
        else:
            tracker.at(IDLE)
            conn.send(("done", job, result))


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system says)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _die_with_parent(parent: int) -> None:
    """A worker whose parent was killed must not go on writing into the run's folder: on Linux
    the kernel sends it SIGKILL when the parent dies (elsewhere it ends at its next task)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            return
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)


def _portable(error: BaseException) -> BaseException:
    """`error` as it can cross a pipe: exceptions whose constructors take other arguments than
    their message do not unpickle, and must still end the run with the same line. Anything but a
    user error or a file error is a bug: it carries the worker's traceback."""
    if isinstance(error, KeyboardInterrupt):
        return KeyboardInterrupt()
    if not isinstance(error, (UserError, OSError)):
        text = "".join(traceback.format_exception(error))
        return RuntimeError(f"a worker failed:\n{text}")
    try:
        return pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001, S110  (whatever does not survive the pipe is rebuilt below)
        pass
    if isinstance(error, UserError):
        return UserError(str(error))
    return OSError(error.errno, error.strerror, error.filename)


def run_supervised(
    jobs: Sequence[Any],
    work: Work,
    workers: int,
    budget_s: float = DEFAULT_DOCUMENT_BUDGET_S,
    on_progress: Callable[..., None] | None = None,
    describe: Callable[[Any, Failure], str] | None = None,
    failures: list[Failure] | None = None,
    warn: Callable[[str], None] | None = None,
    background_writes: bool | None = None,
) -> list[Any]:
    """`work(job, attempt, tracker)` for every job in forked workers; the results in job order.

    `background_writes`: whether the workers write and hash shard files on a thread of their own
    (pipeline/engine/hashing_file.py `write_in_background`); by default where a core is left for each
    such thread beside the workers (2 x workers <= the cores this process may use).

    A job's exception ends the run (the other workers are killed) and is raised here. Worker
    deaths and stalls are retried as the module says, each reported in one line (`describe`
    names the job and the position) to `warn`, by default on stderr, and appended to `failures`.
    """
    warn = warn or on_stderr
    if not jobs:
        return []
    ctx = multiprocessing.get_context("fork")
    attempts = [Attempt() for _ in jobs]
    failed: list[list[Failure]] = [[] for _ in jobs]
    results: dict[int, Any] = {}
    pending = deque(range(len(jobs)))
    pool: list[_Worker] = []
    try:
        size = min(max(1, workers), len(jobs))
        if background_writes is None:
            background_writes = 2 * size <= usable_cores()
        for _ in range(size):
            _start_worker(pool, ctx, work, background_writes)
        while len(results) < len(jobs):
            for worker in pool:
                if worker.job is None and pending:
                    job = pending.popleft()
                    worker.assign(job, jobs[job], attempts[job])
            waiting = {w.conn: w for w in pool if w.job is not None}
            if not waiting:  # every job handed out came back, yet results are missing
                raise RuntimeError(f"supervisor: {len(jobs) - len(results)} task(s) lost")
            sentinels = {w.process.sentinel: w for w in pool}
            ready = multiprocessing.connection.wait([*waiting, *sentinels], timeout=_next_check(budget_s))
            dead: list[_Worker] = []
            for handle in ready:
                worker = waiting.get(handle) or sentinels[handle]
                if not _drain(worker, results, on_progress) and worker not in dead:
                    dead.append(worker)
            now = time.monotonic()
            for worker in pool:
                if worker not in dead and worker.job is not None and worker.stalled_for(now) > budget_s:
                    worker.timed_out = True
                    os.kill(worker.process.pid, signal.SIGKILL)
                    worker.process.join()
                    _drain(worker, results, on_progress)
                    dead.append(worker)
            for worker in dead:
                job = worker.job
                worker.kill()
                pool.remove(worker)
                failure = _failure(worker, -1 if job is None else job, budget_s)
                if failures is not None:
                    failures.append(failure)
                if job is None:
                    warn(f"warning: a worker {failure.how} between tasks; it is replaced")
                else:
                    failed[job].append(failure)
                    where = describe(jobs[job], failure) if describe else f"task {job}"
                    warn(f"warning: a worker {failure.how} on {where}; the task is run again")
                    _learn(attempts[job], failed[job], where)
                    pending.appendleft(job)
                if pending or any(w.job is not None for w in pool):
                    _start_worker(pool, ctx, work, background_writes)
    finally:
        for worker in pool:
            if worker.process.is_alive() and worker.job is None:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
        for worker in pool:
            worker.process.join(timeout=0.2 if worker.job is None else 0)
            worker.kill()
    return [results[i] for i in range(len(jobs))]


def _start_worker(pool: list[_Worker], ctx: Any, work: Work, background_writes: bool) -> None:
    """A new worker, in `pool` before a SIGINT or SIGTERM that came while it was forked is handled:
    the run's clean-up then stops it with the others (signals_deferred)."""
    with signals_deferred():
        pool.append(_Worker(ctx, work, background_writes))


def on_stderr(line: str) -> None:
    stderr.warn(line)


def _next_check(budget_s: float) -> float:
    return min(max(budget_s / 10, 0.05), 1.0)


def _drain(worker: _Worker, results: dict[int, Any], on_progress: Callable[..., None] | None) -> bool:
    """Take every message the worker sent; False when it is gone."""
    while True:
        try:
            if not worker.conn.poll():
                break
            kind, *rest = worker.conn.recv()
        except (EOFError, OSError):
            return False
        if kind == "progress":
            if on_progress is not None:
                on_progress(*rest[0])
        elif kind == "done":
            results[rest[0]] = rest[1]
            worker.job = None
        else:
            worker.job = None
            raise rest[1]  # the task's own error ends the run
    return worker.process.is_alive()


def _failure(worker: _Worker, job: int, budget_s: float) -> Failure:
    slot = worker.slot
    if worker.timed_out:
        reason, how = "timeout", f"made no progress for {budget_s:g} s"
    else:
        code = worker.process.exitcode
        reason = "worker_crash"
        if code is not None and code < 0:
            how = f"was killed by {signal.Signals(-code).name}"
        else:
            how = f"exited with status {code}"
    # Read once the worker is gone: it no longer writes the note. Only a reader's note says
    # where a worker was lost (a stage's heartbeats are not counted, nor named).
    note = worker.note.value.decode("utf-8", "ignore") if slot[_PHASE] == READING else ""
    if note:
        how += f" (its reader's last heartbeat: {note})"
    return Failure(job, reason, how, slot[_PHASE], slot[_FILE], slot[_ITEM], slot[_COUNT], slot[_STAGE], note)


def _learn(attempt: Attempt, history: list[Failure], where: str) -> None:
    """Turn the latest failure of a task into what its next attempt does differently."""
    latest = history[-1]
    outside = [f for f in history if f.phase == IDLE]
    if latest.phase != IDLE and latest.file not in attempt.cut:
        in_file = sum(1 for f in history if f.phase != IDLE and f.file == latest.file)
        if in_file >= MAX_FAILURES_PER_FILE:
            attempt.cut[latest.file] = (latest.item, latest.reason)
            attempt.given_up[latest.file] = in_file
            if len(attempt.given_up) >= MAX_FILES_GIVEN_UP:
                raise UserError(f"{where}: the task's worker failed {len(history)} times, on the documents of "
                                f"{len(attempt.given_up)} of its files ({latest.how}): a model or this machine "
                                "rather than the input; giving up (rerun the same command to try again)")
            return
    if len(outside) >= MAX_FAILURES_OUTSIDE_DOCUMENTS or len(history) > MAX_FAILURES_PER_TASK:
        raise UserError(f"{where}: the task's worker failed {len(history)} times ({latest.how}); "
                        "giving up (rerun the same command to try again)")
    if latest.phase == IDLE:
        return
    document = latest.document
    inside = document is not None and any(
        f == latest.file and start <= latest.item < end for f, start, end in attempt.careful)
    if document is not None and inside:
        if latest.phase == READING:
            attempt.cut[latest.file] = (latest.item, latest.reason)
        else:
            attempt.poisoned[document] = (latest.reason, latest.stage)
        return
    attempt.careful.append((latest.file, latest.item, latest.item + max(1, latest.count)))
