"""The supervised worker pool on its own, with real forked workers that really die or stall:
results in job order, a dead or stalled worker's job run again and reported in one line, the
careful retry that finds the one document at fault and drops it with its reason (or cuts the
file it was being read from), the limits past which a task is given up, and a task's own error
ending the run with the same line in the parent."""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline.common.errors import InputError, Terminated, UserError, _raise_terminated
from pipeline.engine.heartbeat import heartbeat
from pipeline.engine.supervisor import (
    IDLE,
    PROCESSING,
    READING,
    Attempt,
    Failure,
    Tracker,
    check_budget,
    run_supervised,
)
from tests.conftest import REPO, subprocess_env

BUDGET_S = 0.3  # a stall test waits this long once or twice; no healthy test job comes near it


def _die(how: str) -> None:
    if how == "SIGKILL":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(int(how))


def _first_time(flag: Path) -> bool:
    """True the first time it is asked about `flag` in any process (a file left behind)."""
    try:
        flag.touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


# Work functions: module level, inherited by the forked workers. Each takes (job, attempt, tracker).


def square_after(job: tuple[int, float], attempt: Attempt, tracker: Tracker) -> int:
    number, sleep_s = job
    time.sleep(sleep_s)
    return number * number


def die_once(job: tuple[str, str, int], attempt: Attempt, tracker: Tracker) -> int:
    flag, how, number = job
    if _first_time(Path(flag)):
        _die(how)
    return number


def always_exit_3(job: Any, attempt: Attempt, tracker: Tracker) -> None:
    os._exit(3)


def stall_once(job: str, attempt: Attempt, tracker: Tracker) -> dict:
    if _first_time(Path(job)):
        tracker.at(PROCESSING, 0, 0, 5, 0)  # on records 0-4 of file 0, in stage 0
        time.sleep(60)
    return {"careful": attempt.careful, "poisoned": attempt.poisoned, "cut": attempt.cut}


def move_on_for_two_budgets(job: int, attempt: Attempt, tracker: Tracker) -> int:
    started, item = time.monotonic(), 0
    while time.monotonic() - started < 2 * BUDGET_S:
        tracker.at(PROCESSING, 0, item, 1, 0)  # a slow task, but one that keeps moving on
        item += 1
        time.sleep(BUDGET_S / 6)
    return job


def idle_for_two_budgets(job: int, attempt: Attempt, tracker: Tracker) -> int:
    time.sleep(2 * BUDGET_S)  # not on any document: set-up or closing work, never a stall
    return job


def process_records(job: dict, attempt: Attempt, tracker: Tracker) -> dict:
    """What a task does, in small: ten records of file 0 taken in chunks of four (as the runner
    takes CHUNK), each chunk published before it is read or processed. The record `job["bad"]`
    kills (or stalls) the worker while `job["phase"]` is on it, unless an earlier attempt said
    to drop it or to stop reading before it."""
    kept, dropped = [], []
    item, stop = 0, attempt.stop_at(0)
    while item < 10 and (stop is None or item < stop):
        size = min(attempt.chunk_size(0, item, 4), 10 - item, (stop if stop is not None else 10) - item)
        tracker.at(READING, 0, item, size)
        if job["phase"] == READING and item <= job["bad"] < item + size:
            _fail(job)
        tracker.at(PROCESSING, 0, item, size, 0)
        for record in range(item, item + size):
            poison = attempt.poisoned.get((0, record)) if size == 1 else None
            if poison is not None:
                dropped.append((record, *poison))
                continue
            tracker.stage(job["stage"])
            if job["phase"] == PROCESSING and record == job["bad"]:
                _fail(job)
            kept.append(record)
        item += size
    return {"kept": kept, "dropped": dropped, "cut": attempt.cut}


def process_files(job: dict, attempt: Attempt, tracker: Tracker) -> dict:
    """`process_records` over several files of `job["records"]` records each: a record listed in
    `job["bad"]` (file, record) kills the worker while processed."""
    kept, dropped = [], []
    for file in range(job["files"]):
        item, stop = 0, attempt.stop_at(file)
        end = job["records"] if stop is None else min(stop, job["records"])
        while item < end:
            size = min(attempt.chunk_size(file, item, 4), end - item)
            tracker.at(PROCESSING, file, item, size, 0)
            for record in range(item, item + size):
                if size == 1 and (file, record) in attempt.poisoned:
                    dropped.append((file, record))
                elif (file, record) in job["bad"]:
                    _die("SIGKILL")
                else:
                    kept.append((file, record))
            item += size
    return {"kept": kept, "dropped": dropped, "cut": attempt.cut, "given_up": attempt.given_up}


def _fail(job: dict) -> None:
    if job["how"] == "stall":
        time.sleep(60)
    _die(job["how"])


def prepare_then_read(job: dict, attempt: Attempt, tracker: Tracker) -> dict:
    """A reader that prepares for `job["prepare_s"]` before its first record of file 0 (as Stack
    Exchange loads a whole Posts.xml), sending `heartbeat(done, note)` every sixth of a budget
    while `job["beats"]` says how: "moving" (done goes up), "repeating" (the same done each
    time: a reader stuck in a loop), "none", or "from_a_stage" (the heartbeats come while the
    worker is on documents, not reading). With `job["then"] == "hang"` the preparation stops
    there for ever, after its heartbeats. Then it reads records 0-2, unless an earlier attempt
    cut the file before record 0 or dropped record 0."""
    if attempt.stop_at(0) == 0 or (0, 0) in attempt.poisoned:
        return {"kept": [], "cut": attempt.cut, "poisoned": attempt.poisoned}
    tracker.at(PROCESSING if job["beats"] == "from_a_stage" else READING, 0, 0, attempt.chunk_size(0, 0, 3), 0)
    started, done = time.monotonic(), 0
    while time.monotonic() - started < job["prepare_s"]:
        time.sleep(BUDGET_S / 6)
        if job["beats"] != "none":
            done += job["beats"] != "repeating"
            heartbeat(done, f"loaded {done} MB of Posts.xml")
    if job.get("then") == "hang":
        time.sleep(60)
    tracker.at(PROCESSING, 0, 0, 3, 0)
    return {"kept": [0, 1, 2], "cut": attempt.cut, "poisoned": attempt.poisoned}


def raise_error(job: str, attempt: Attempt, tracker: Tracker) -> None:
    if job == "user":
        raise UserError("--min-chars: must be positive")
    if job == "input":
        raise InputError("in.jsonl", "not JSON lines")
    raise ZeroDivisionError("the bug")


def report_progress(job: int, attempt: Attempt, tracker: Tracker) -> int:
    tracker.progress(job, 10 * job)
    return job


class Recorded:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.failures: list[Failure] = []

    def warn(self, line: str) -> None:
        self.lines.append(line)


def supervised(jobs: list, work: Any, recorded: Recorded, workers: int = 2, **kw: Any) -> list:
    return run_supervised(jobs, work, workers, failures=recorded.failures, warn=recorded.warn, **kw)


def test_results_come_back_in_job_order_whatever_order_the_workers_finish_in() -> None:
    recorded = Recorded()
    jobs = [(2, 0.3), (3, 0.0), (4, 0.1), (5, 0.0), (6, 0.0)]  # the first job finishes last
    assert supervised(jobs, square_after, recorded, workers=3) == [4, 9, 16, 25, 36]
    assert recorded.lines == [] and recorded.failures == []


@pytest.mark.parametrize("nth_fork", [1, 2])  # the first worker, or the second while the first waits
def test_a_sigterm_while_a_worker_is_forked_ends_the_run_and_leaves_no_worker(nth_fork: int) -> None:
    """Python runs the handler at the next bytecode, here inside os.fork's at-fork hooks, where an
    exception is swallowed ("Exception ignored"): the run went on to finish, or left a worker
    started and unknown, which the exit then waited for for ever."""
    forks = []

    def sigterm_at_the_nth_fork() -> None:
        forks.append(1)
        if len(forks) == nth_fork:
            os.kill(os.getpid(), signal.SIGTERM)

    armed = [True]
    os.register_at_fork(after_in_parent=lambda: armed[0] and sigterm_at_the_nth_fork())
    previous = signal.signal(signal.SIGTERM, _raise_terminated)  # as every command installs it
    try:
        with pytest.raises(Terminated):
            supervised([(2, 0.0)] * 4, square_after, Recorded(), workers=2)
    finally:
        armed[0] = False
        signal.signal(signal.SIGTERM, previous)
    assert multiprocessing.active_children() == []  # every worker started was stopped and joined


def test_no_jobs_start_no_workers() -> None:
    assert run_supervised([], always_exit_3, workers=4) == []


def test_progress_sent_by_workers_reaches_the_parent() -> None:
    seen: list[tuple[int, ...]] = []
    assert run_supervised([1, 2, 3], report_progress, 2, on_progress=lambda *v: seen.append(v)) == [1, 2, 3]
    assert sorted(seen) == [(1, 10), (2, 20), (3, 30)]


def writes_in_background(job: int, attempt: Attempt, tracker: Tracker) -> bool:
    """What a ShardWriter of this worker would do: write and hash on a thread of its own?"""
    import pipeline.engine.hashing_file

    return pipeline.engine.hashing_file._background_writes


@pytest.mark.parametrize("cores, workers, threaded", [(2, 2, False), (2, 1, True), (4, 2, True), (3, 2, False),
                                                      (8, 2, True)])
def test_workers_write_shards_on_a_thread_only_where_a_core_is_left_for_it(monkeypatch: pytest.MonkeyPatch,
                                                                         cores: int, workers: int,
                                                                         threaded: bool) -> None:
    import pipeline.engine.supervisor

    monkeypatch.setattr(pipeline.engine.supervisor, "usable_cores", lambda: cores)
    assert run_supervised([1, 2, 3, 4], writes_in_background, workers) == [threaded] * 4
    assert run_supervised([1, 2], writes_in_background, workers, background_writes=False) == [False] * 2


@pytest.mark.parametrize("how, said", [("SIGKILL", "was killed by SIGKILL"), ("7", "exited with status 7")])
def test_a_job_whose_worker_dies_is_run_again_and_reported_in_one_line(tmp_path: Path, how: str, said: str) -> None:
    recorded = Recorded()
    jobs = [(str(tmp_path / "never"), how, 1), (str(tmp_path / "flag"), how, 2), (str(tmp_path / "never"), how, 3)]
    (tmp_path / "never").touch()  # these two jobs have "died" already: they simply run

    assert supervised(jobs, die_once, recorded) == [1, 2, 3]
    assert recorded.lines == [f"warning: a worker {said} on task 1; the task is run again"]
    [failure] = recorded.failures
    assert (failure.task, failure.reason, failure.how, failure.phase) == (1, "worker_crash", said, IDLE)
    assert failure.document is None  # it was on no document: nothing to go carefully through


def test_describe_names_the_job_and_the_position_in_the_warning(tmp_path: Path) -> None:
    recorded = Recorded()
    job = {"bad": 6, "phase": PROCESSING, "how": "SIGKILL", "stage": 1}

    def describe(job: dict, failure: Failure) -> str:
        return f"in-00.jsonl record {failure.item} (stage {failure.stage})"

    supervised([job], process_records, recorded, describe=describe)
    assert recorded.lines == [
        "warning: a worker was killed by SIGKILL on in-00.jsonl record 4 (stage 1); the task is run again",
        "warning: a worker was killed by SIGKILL on in-00.jsonl record 6 (stage 1); the task is run again",
    ]
    assert all("\n" not in line for line in recorded.lines)


def test_a_document_that_kills_the_worker_twice_is_dropped_with_its_reason_and_stage() -> None:
    recorded = Recorded()
    job = {"bad": 6, "phase": PROCESSING, "how": "SIGKILL", "stage": 2}

    [result] = supervised([job], process_records, recorded)

    # First death: on the chunk of records 4-7, which the next attempt takes one at a time;
    # second death: on record 6 alone, which the third attempt drops at the stage it was in.
    assert [(f.item, f.count, f.stage, f.document) for f in recorded.failures] == [(4, 4, 2, None), (6, 1, 2, (0, 6))]
    assert result == {"kept": [0, 1, 2, 3, 4, 5, 7, 8, 9], "dropped": [(6, "worker_crash", 2)], "cut": {}}


def test_a_document_that_stalls_the_worker_twice_is_killed_and_dropped_as_a_timeout() -> None:
    recorded = Recorded()
    job = {"bad": 2, "phase": PROCESSING, "how": "stall", "stage": 0}

    [result] = supervised([job], process_records, recorded, budget_s=BUDGET_S)

    stalled = f"made no progress for {BUDGET_S:g} s"
    assert [(f.reason, f.how, f.item, f.count) for f in recorded.failures] == [
        ("timeout", stalled, 0, 4), ("timeout", stalled, 2, 1)]
    assert result == {"kept": [0, 1, 3, 4, 5, 6, 7, 8, 9], "dropped": [(2, "timeout", 0)], "cut": {}}
    assert recorded.lines == [f"warning: a worker {stalled} on task 0; the task is run again"] * 2


def test_a_record_that_kills_the_worker_twice_while_read_cuts_the_file_there() -> None:
    recorded = Recorded()
    job = {"bad": 5, "phase": READING, "how": "SIGKILL", "stage": 0}

    [result] = supervised([job], process_records, recorded)

    # A reader cannot skip a record: the file is read up to the record at fault, and no further.
    assert [(f.phase, f.item, f.count) for f in recorded.failures] == [(READING, 4, 4), (READING, 5, 1)]
    assert result == {"kept": [0, 1, 2, 3, 4], "dropped": [], "cut": {0: (5, "worker_crash")}}


def test_a_stall_beyond_the_budget_is_killed_and_the_job_retried_carefully(tmp_path: Path) -> None:
    recorded = Recorded()
    started = time.monotonic()

    [taught] = supervised([str(tmp_path / "flag")], stall_once, recorded, budget_s=BUDGET_S)

    assert time.monotonic() - started < 30  # killed after the budget, not at the end of its sleep
    [failure] = recorded.failures
    assert (failure.reason, failure.how, failure.phase, failure.item, failure.count) == (
        "timeout", f"made no progress for {BUDGET_S:g} s", PROCESSING, 0, 5)
    assert taught == {"careful": [(0, 0, 5)], "poisoned": {}, "cut": {}}


def test_a_task_longer_than_the_budget_is_not_stalled_while_it_moves_on() -> None:
    recorded = Recorded()
    assert supervised([1], move_on_for_two_budgets, recorded, budget_s=BUDGET_S) == [1]
    assert recorded.failures == []


def test_a_worker_idle_between_documents_is_never_counted_as_stalled() -> None:
    recorded = Recorded()
    assert supervised([1, 2], idle_for_two_budgets, recorded, budget_s=BUDGET_S) == [1, 2]
    assert recorded.failures == []


def test_a_file_whose_documents_keep_killing_the_worker_is_given_up_and_the_task_goes_on() -> None:
    recorded = Recorded()
    job = {"files": 2, "records": 30, "bad": {(0, r) for r in range(2, 30)}}

    [result] = supervised([job], process_files, recorded)

    # The chunk [0, 4) once, then records 2 and 3 alone; the chunk [4, 8), then records 4 to 7
    # alone; the chunk [8, 12), then record 8 alone: failures 1 to 10. Records 2-7 are dropped;
    # the tenth failure, on record 8, cuts file 0 there instead; file 1 is kept whole.
    assert [(f.file, f.item, f.count) for f in recorded.failures] == [
        (0, 0, 4), (0, 2, 1), (0, 3, 1), (0, 4, 4), (0, 4, 1), (0, 5, 1), (0, 6, 1), (0, 7, 1), (0, 8, 4), (0, 8, 1)]
    assert result == {"kept": [(0, 0), (0, 1)] + [(1, r) for r in range(30)],
                      "dropped": [(0, r) for r in range(2, 8)], "cut": {0: (8, "worker_crash")}, "given_up": {0: 10}}


def test_documents_killing_the_worker_spread_over_many_files_are_each_dropped() -> None:
    recorded = Recorded()
    job = {"files": 16, "records": 6, "bad": {(f, 3) for f in range(16)}}  # 32 failures: more than a file's limit

    [result] = supervised([job], process_files, recorded)

    assert len(recorded.failures) == 32
    assert result["dropped"] == [(f, 3) for f in range(16)] and result["cut"] == {}
    assert len(result["kept"]) == 16 * 5


def test_every_file_killing_the_worker_ends_the_run_in_one_line() -> None:
    recorded = Recorded()
    job = {"files": 5, "records": 40, "bad": {(f, r) for f in range(5) for r in range(40)}}  # a broken model
    with pytest.raises(UserError) as raised:
        supervised([job], process_files, recorded, describe=lambda job, failure: "input.jsonl")
    assert str(raised.value) == (
        "input.jsonl: the task's worker failed 30 times, on the documents of 3 of its files (was killed by SIGKILL): "
        "a model or this machine rather than the input; giving up (rerun the same command to try again)")


def test_a_task_failing_three_times_outside_documents_is_given_up() -> None:
    recorded = Recorded()
    with pytest.raises(UserError) as raised:
        supervised(["job"], always_exit_3, recorded, describe=lambda job, failure: "input.jsonl")
    assert str(raised.value) == ("input.jsonl: the task's worker failed 3 times (exited with status 3); "
                                 "giving up (rerun the same command to try again)")
    assert recorded.lines == ["warning: a worker exited with status 3 on input.jsonl; the task is run again"] * 3


def test_a_jobs_own_user_error_ends_the_run_with_its_line() -> None:
    with pytest.raises(UserError) as raised:
        run_supervised(["user"], raise_error, 1)
    assert str(raised.value) == "--min-chars: must be positive"


def test_an_error_that_cannot_cross_the_pipe_keeps_its_line() -> None:
    # InputError's constructor takes (path, problem): it does not unpickle from its message alone.
    with pytest.raises(UserError) as raised:
        run_supervised(["input"], raise_error, 1)
    assert str(raised.value) == "in.jsonl: not JSON lines"


def test_a_bug_in_a_job_carries_the_workers_traceback() -> None:
    with pytest.raises(RuntimeError) as raised:
        run_supervised(["bug"], raise_error, 1)
    message = str(raised.value)
    assert message.startswith("a worker failed:\nTraceback (most recent call last):\n")
    assert "in raise_error" in message and message.rstrip().endswith("ZeroDivisionError: the bug")


def test_careful_regions_are_taken_one_item_at_a_time_and_never_run_into() -> None:
    attempt = Attempt(careful=[(0, 10, 12), (1, 0, 3)])
    assert [attempt.chunk_size(0, item, 256) for item in (0, 4, 10, 11, 12, 500)] == [10, 6, 1, 1, 256, 256]
    assert [attempt.chunk_size(1, item, 256) for item in (0, 2, 3)] == [1, 1, 256]
    assert attempt.chunk_size(2, 0, 256) == 256
    assert Attempt(cut={1: (7, "timeout")}).stop_at(1) == 7 and Attempt().stop_at(1) is None


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf"), "5"])
def test_a_document_budget_must_be_a_positive_number_of_seconds(seconds: object) -> None:
    with pytest.raises(UserError, match=rf"^--document-timeout {seconds}: must be a positive number of seconds$"):
        check_budget(seconds)  # type: ignore[arg-type]


def test_a_preparation_longer_than_the_budget_that_sends_heartbeats_is_never_killed() -> None:
    recorded = Recorded()
    job = {"prepare_s": 4 * BUDGET_S, "beats": "moving"}
    assert supervised([job], prepare_then_read, recorded, budget_s=BUDGET_S) == [
        {"kept": [0, 1, 2], "cut": {}, "poisoned": {}}]
    assert recorded.failures == [] and recorded.lines == []


@pytest.mark.parametrize("beats", ["none", "repeating", "from_a_stage"])
def test_heartbeats_that_do_not_move_or_come_from_a_stage_are_no_progress(beats: str) -> None:
    recorded = Recorded()
    job = {"prepare_s": 4 * BUDGET_S, "beats": beats}
    # Killed after one budget each time: the reader said nothing new (or was not the one speaking).
    [result] = supervised([job], prepare_then_read, recorded, budget_s=BUDGET_S)
    assert [f.reason for f in recorded.failures] == ["timeout", "timeout"]
    if beats == "from_a_stage":
        # A stage's heartbeats are neither counted nor named: the document is dropped as a timeout.
        assert [(f.phase, f.count, f.note) for f in recorded.failures] == [(PROCESSING, 3, ""), (PROCESSING, 1, "")]
        assert result == {"kept": [], "cut": {}, "poisoned": {(0, 0): ("timeout", 0)}}
    else:
        # The reader is given up before its first record, as a reader that dies there is.
        assert [(f.phase, f.item, f.count) for f in recorded.failures] == [(READING, 0, 3), (READING, 0, 1)]
        assert result == {"kept": [], "cut": {0: (0, "timeout")}, "poisoned": {}}
    if beats == "repeating":
        assert recorded.failures[0].note == "loaded 0 MB of Posts.xml"


def test_a_preparation_whose_heartbeats_stop_is_killed_a_budget_later_and_named_by_its_last_one() -> None:
    recorded = Recorded()
    job = {"prepare_s": 3 * BUDGET_S, "beats": "moving", "then": "hang"}
    started = time.monotonic()

    [result] = supervised([job], prepare_then_read, recorded, budget_s=BUDGET_S)

    assert time.monotonic() - started < 30  # each attempt killed a budget after its last heartbeat
    # Twice at the file's first record: the file is given up before it, as for a reader that dies.
    assert result == {"kept": [], "cut": {0: (0, "timeout")}, "poisoned": {}}
    last = recorded.failures[0].note
    assert last.startswith("loaded ") and last.endswith(" MB of Posts.xml") and int(last.split()[1]) >= 12
    assert [(f.reason, f.phase, f.item, f.count, f.note) for f in recorded.failures] == [
        ("timeout", READING, 0, 3, last), ("timeout", READING, 0, 1, recorded.failures[1].note)]
    assert recorded.lines[0] == (f"warning: a worker made no progress for {BUDGET_S:g} s (its reader's last "
                                 f"heartbeat: {last}) on task 0; the task is run again")


def test_a_heartbeat_outside_a_supervised_worker_does_nothing() -> None:
    heartbeat(1, "loaded 1 MB of Posts.xml")  # a library call or a test reading a file directly


# Run in a fresh interpreter: the test process has long imported pandas (datasets imports it).
FIRST_ARRAY_IN_WORKERS = """
import sys
import pyarrow as pa
from pipeline.engine.supervisor import run_supervised

def first_array(job, attempt, tracker):
    before = set(sys.modules)
    pa.array(["a"], pa.string())
    loaded = sorted(set(sys.modules) - before)
    frame = pa.table({"n": [job]}).to_pandas()  # pyarrow's own pandas functions still import it
    return [loaded, int(frame["n"][0])]

assert "pandas" not in sys.modules
print(run_supervised([0, 1, 2], first_array, 2), "pandas" in sys.modules)
"""

PANDAS_LOADED_BEFORE = """
import pandas as pd
import pyarrow as pa
from pipeline.engine.supervisor import run_supervised

def categorical(job, attempt, tracker):
    return str(pa.array(pd.Series(pd.Categorical(["x", "y", "x"]))).type)  # else: string

print(run_supervised([0], categorical, 1))
"""


def run_script(script: str) -> str:
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None,
                    reason="pyarrow imports pandas only where it is installed")
def test_no_process_of_a_run_imports_pandas_for_its_first_arrow_array() -> None:
    # pyarrow imports pandas (0.15-0.3 s of CPU) on a process's first pa.array; herd hands it no
    # pandas objects: neither the workers nor the process that started them pay that import,
    # and to_pandas still works in a worker.
    assert run_script(FIRST_ARRAY_IN_WORKERS) == "[[[], 0], [[], 1], [[], 2]] False"


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas is not installed")
def test_a_process_that_loaded_pandas_converts_pandas_objects_as_pyarrow_does() -> None:
    # A categorical Series becomes a dictionary array only where pyarrow knows pandas.
    assert run_script(PANDAS_LOADED_BEFORE).startswith("['dictionary<values=")
