"""Runs a planned run's tasks on a Ray cluster: one Ray task per task, same split, same shards.

The engine does the rest: `execute` drives the passes and merges global artefacts on the
driver, and `run_task` is idempotent (it clears a killed attempt's leftovers and writes a
completion marker), so the output is byte-for-byte what the local executor writes.

Inside each Ray task the task runs under the local executor's supervisor
(pipeline/engine/supervisor.py), in one forked child that the Ray worker watches: a document
that kills or stalls the child twice is dropped as `worker_crash` / `timeout` and listed in
`documents_failed`, exactly as locally, instead of failing the Ray task until its retries run
out (or hanging it for ever). Ray's own retries remain for a Ray worker or node that dies.

The cluster's nodes must see the run folder (a shared file system when there is more than
one node) and have herd installed; on the driver's node Ray puts the driver's `sys.path`
on the workers' path, so a checkout works there without installing.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from typing import Any

import ray
import ray.exceptions

from pipeline.common.errors import UserError
from pipeline.common.warn import warn
from pipeline.engine.local_executor import run_tasks_supervised
from pipeline.engine.run_driver import RunReport, execute
from pipeline.engine.runner import Progress, RunSpec, TaskResult, prepare_pass
from pipeline.engine.supervisor import DEFAULT_DOCUMENT_BUDGET_S, Failure

DEFAULT_MAX_RETRIES = 3  # retries of a task whose worker process or node died
CONNECT_TIMEOUT_S = 5.0
RAY_AUTH_SETTINGS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")  # what a user may have set
MAX_SESSION_PARENT = 40  # characters of the folder a local cluster's session folder is made in


class RayExecutor:
    """Runs tasks as Ray tasks on the cluster at `address` (None: start a local one)."""

    def __init__(
        self,
        address: str | None = None,
        show_progress: bool | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        document_budget_s: float = DEFAULT_DOCUMENT_BUDGET_S,
    ) -> None:
        self.address = address
        self.show_progress = show_progress
        self.max_retries = max_retries
        self.document_budget_s = document_budget_s
        self.failures: list[Failure] = []  # supervised workers lost on the way, for timings.json

    def run(self, spec: RunSpec) -> RunReport:
        disconnect = _connect(self.address)
        try:
            return execute(spec, self.map_tasks, self.show_progress, self.failures)
        finally:
            disconnect()

    def map_tasks(self, spec: RunSpec, pass_index: int, tasks: list[int], progress: Progress | None) -> list[TaskResult]:
        remote = ray.remote(num_cpus=1, max_retries=self.max_retries, retry_exceptions=False)(_run_one)
        spec_ref = ray.put(spec)  # shipped to the object store once, not once per task
        budget = self.document_budget_s
        counted = progress is not None
        pending: dict[Any, int] = {remote.remote(spec_ref, pass_index, t, budget, counted): t for t in tasks}
        results: dict[int, TaskResult] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            task = pending.pop(ref)
            try:
                result, docs, chars, failures, warnings = ray.get(ref)
            except ray.exceptions.RayTaskError as e:
                _cancel(pending)
                if isinstance(e.cause, UserError):
                    raise e.cause from None
                raise
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.RayError) as e:
                _cancel(pending)
                raise UserError(
                    f"task {task} of pass {pass_index} failed {self.max_retries + 1} times on the Ray cluster "
                    f"({type(e).__name__}); rerun the same command to resume"
                ) from None
            # Ray runs with log_to_driver=False: the worker's warnings are printed here, as the
            # local executor prints them.
            for line in warnings:
                warn(line)
            self.failures.extend(failures)
            if progress:
                progress(docs, chars)
            results[task] = result
        return [results[t] for t in tasks]


def _run_one(
    spec: RunSpec, pass_index: int, task: int, budget_s: float, counted: bool = True
) -> tuple[TaskResult, int, int, list[Failure], list[str]]:
    """The task supervised in a child forked from this Ray worker; with its progress, the
    child processes lost and their one-line warnings, for the driver to record and print."""
    # Forking a Ray worker, which is multi-threaded (gRPC, the core worker's event loops), is
    # safe for what the child does: only the forking thread lives on in it, and it touches the
    # task's own objects, files, pyarrow and the pipe to this process; never Ray, gRPC or a lock
    # held by Ray's threads (glibc's malloc and CPython's interpreter locks are made anew at
    # fork). Ray's SIGTERM handler is reset in the child, which ends with os._exit: no atexit
    # hook of Ray runs there. The supervisor's PR_SET_PDEATHSIG ends the child with this worker
    # (a cancelled or lost task); Ray runs tasks on the worker's main thread, whose exit is what
    # triggers that signal. Spawning a fresh interpreter instead would cost seconds of imports
    # per attempt and could not inherit set-up stages. The stages (models, a previous pass's
    # artefact) are set up here, once per Ray worker as before, so that every forked child
    # starts with them ready and shares their memory copy-on-write.
    if not spec.marker(pass_index, task).exists():
        prepare_pass(spec, pass_index)
    # Progress is summed on the worker and reported once the task returns: per-document
    # callbacks across processes would cost more than the counts are worth.
    totals = [0, 0]

    def count(docs: int, chars: int) -> None:
        totals[0] += docs
        totals[1] += chars

    failures: list[Failure] = []
    warnings: list[str] = []
    # Ray runs a task per CPU of the node: no core is left for a writer thread beside each.
    [result] = run_tasks_supervised(spec, pass_index, [task], 1, budget_s, count if counted else None, failures,
                                    warnings.append, background_writes=False)
    return result, totals[0], totals[1], failures, warnings


def _cancel(pending: dict[Any, int]) -> None:
    for ref in pending:
        ray.cancel(ref, force=True)


def _connect(address: str | None) -> Callable[[], None]:
    """Connect to the cluster; returns what undoes this call: nothing when Ray was connected
    already, a shutdown when this call connected, and for a cluster this call started on this
    machine also the removal of its session folder.

    A cluster started here is this run's alone: it keeps its session folder (logs, sockets; about
    200 KB a run, left in /tmp/ray by Ray for ever) in a temporary folder removed at the end, and
    it authenticates with a token made for it and handed over in the environment, unless one is
    configured (RAY_AUTH_MODE, RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH): Ray would otherwise write
    one into ~/.ray, and a read-only home folder (a cluster's shared one, a CI runner's) ended
    the run."""
    if ray.is_initialized():
        return lambda: None
    if address not in (None, "auto", "local"):
        _check_reachable(address)
    starts_here = address in (None, "local") and not os.environ.get("RAY_ADDRESS")
    temp_dir = _session_parent() if starts_here else None
    token_set = starts_here and not any(os.environ.get(name) for name in RAY_AUTH_SETTINGS)
    if token_set:
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    options = {"_temp_dir": temp_dir} if temp_dir else {}

    def disconnect() -> None:
        try:
            ray.shutdown()
        finally:
            if token_set:
                os.environ.pop("RAY_AUTH_TOKEN", None)
            if temp_dir:
                shutil.rmtree(temp_dir, ignore_errors=True)

    # Ray says on every start that it enabled token authentication: this run chose that for it.
    notice = logging.getLogger("ray._private.authentication.authentication_token_setup")
    level = notice.level
    if token_set:
        notice.setLevel(logging.ERROR)
    where = f"the Ray cluster at {address}" if address not in (None, "local") else "a local Ray cluster"
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        ray.init(address=address, log_to_driver=False, include_dashboard=False, configure_logging=False, **options)
    except ConnectionError as e:
        disconnect()
        raise UserError(f"no Ray cluster at {address}: {_first_line(e)}") from None
    except ray.exceptions.RayError as e:  # the cluster refused us (AuthenticationError, ...)
        disconnect()
        raise UserError(f"{where}: {type(e).__name__}: {_first_line(e)}") from None
    except Exception as e:  # a node that timed out starting (a full /tmp or /dev/shm, a file-size limit)
        disconnect()
        raise UserError(f"{where} did not start: {type(e).__name__}: {_first_line(e)}") from None
    except BaseException:  # Ctrl-C or SIGTERM while it starts: its session folder goes too
        disconnect()
        raise
    finally:
        notice.setLevel(level)
        # Ray's core installs its own handler of fatal signals, SIGTERM among them, over the run's:
        # a SIGTERM then printed a crash dump and exit 1 instead of the run's one line and 143.
        for signum, handler in handlers.items():
            if handler is not None:
                signal.signal(signum, handler)
    return disconnect


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else "(no message)"


def _session_parent() -> str:
    """A new folder for a local cluster's session folder: in the temporary folder, or in /tmp where
    that one's path is too long for Ray's sockets (`<folder>/session_<date>_<pid>/sockets/...`
    must stay under 108 bytes, about 64 of them Ray's)."""
    parent = tempfile.gettempdir()
    if len(parent) > MAX_SESSION_PARENT - len("/herd-ray-12345678") and os.access("/tmp", os.W_OK):
        parent = "/tmp"
    return tempfile.mkdtemp(prefix="herd-ray-", dir=parent)


def _check_reachable(address: str) -> None:
    # ray.init waits a long time on an address where nothing listens: fail fast instead.
    host_port = address.removeprefix("ray://")
    host, sep, port = host_port.rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(f"--address {address}: expected HOST:PORT of a Ray head (or 'auto')")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise UserError(f"no Ray cluster at {address}: {e.strerror or e}") from None
