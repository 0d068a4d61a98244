"""The local executor: a run's tasks in a pool of forked worker processes on this machine.

`run_tasks_supervised` is the pool itself; the Ray executor runs it too, one task per Ray
task, so that a document is supervised the same way on either executor.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.engine.run_driver import RunReport, execute
from pipeline.engine.run_folder import read_marker
from pipeline.engine.runner import Progress, RunSpec, TaskResult, run_task
from pipeline.engine.stage_errors import STAGE_ERROR, dropped_line
from pipeline.engine.supervisor import (
    DEFAULT_DOCUMENT_BUDGET_S, IDLE, Attempt, Failure, Tracker, on_stderr, run_supervised,
)


class LocalExecutor:
    """Runs tasks in `workers` forked processes that the parent supervises (pipeline/engine/supervisor.py):
    a worker that dies is replaced and its task run again, and a document that kills or stalls a
    worker twice (`document_budget_s` without progress) is dropped with the reason and position."""

    def __init__(
        self, workers: int = 1, show_progress: bool | None = None, document_budget_s: float = DEFAULT_DOCUMENT_BUDGET_S
    ) -> None:
        self.workers = max(1, workers)
        self.show_progress = show_progress
        self.document_budget_s = document_budget_s
        self.failures: list[Failure] = []

    def map_tasks(self, spec: RunSpec, pass_index: int, tasks: list[int], progress: Progress | None) -> list[TaskResult]:
        return run_tasks_supervised(spec, pass_index, tasks, self.workers, self.document_budget_s, progress,
                                    self.failures)

    def run(self, spec: RunSpec) -> RunReport:
        return execute(spec, self.map_tasks, self.show_progress, self.failures)


def run_tasks_supervised(
    spec: RunSpec,
    pass_index: int,
    tasks: list[int],
    workers: int,
    budget_s: float,
    progress: Progress | None,
    failures: list[Failure],
    warn: Callable[[str], None] | None = None,
    background_writes: bool | None = None,
) -> list[TaskResult]:
    """Run the unfinished `tasks` of a pass in `workers` supervised forked processes (the local
    executor's pool; on Ray, one per Ray task); every task's result, in the order given.
    Workers lost are appended to `failures` and reported in one line each to `warn`. Without
    `progress` the workers count no characters for it. `background_writes`: see run_supervised."""
    finished = {t: read_marker(spec.marker(pass_index, t), TaskResult.from_json) for t in tasks}
    todo = [t for t in tasks if finished[t] is None]

    def work(task: int, attempt: Attempt, tracker: Tracker) -> TaskResult:
        return run_task(spec, pass_index, task, tracker.progress if progress else None, attempt, tracker)

    def describe(task: int, failure: Failure) -> str:
        where = f"task {task} of pass {pass_index}"
        if failure.phase == IDLE:
            return f"{where} (outside any document)"
        inputs = spec.task_inputs(task)
        name = inputs[failure.file] if pass_index == 0 and failure.file < len(inputs) else "its documents"
        last = failure.item + failure.count - 1
        span = f"record {failure.item}" if failure.count <= 1 else f"records {failure.item}-{last}"
        return f"{where}, {name} {span}"

    done = run_supervised(todo, work, workers, budget_s, progress, describe, failures, warn, background_writes)
    for task, result in zip(todo, done):  # the documents its stages raised on, dropped in the worker
        for failed in result.documents_failed:
            if failed["reason"] == STAGE_ERROR:  # a poisoned document is a worker_crash or timeout
                (warn or on_stderr)(dropped_line(f"task {task} of pass {pass_index}", failed))
    results = dict(zip(todo, done))
    return [finished[t] or results[t] for t in tasks]
