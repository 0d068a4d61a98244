"""Runs one task of one pass: documents through a run of stages into Arrow parts.

Both executors (local processes and Ray) call `run_task`; everything it needs travels in
a picklable `RunSpec`, and everything it produces lands in the run's work folder with a
completion marker, so a task killed halfway is simply run again.
"""

from __future__ import annotations

import contextlib
import gc
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import pyarrow as pa

from pipeline.common.errors import OUT_OF_SPACE
from pipeline.common.files import with_path, write_json_atomic
from pipeline.common.warn import warn
from pipeline.engine.document import Document, Skipped, printable, storable
from pipeline.engine.run_folder import Fingerprint, failed_input_sha256, fingerprint
from pipeline.engine.resources import cpu_seconds
from pipeline.engine.shards import ShardWriter, build_schema, iter_shard
from pipeline.engine.source import Source
from pipeline.engine.stage import GlobalStage, Stage, StageStats
from pipeline.engine.stage_errors import StageErrors
from pipeline.engine.supervisor import IDLE, PROCESSING, READING, Attempt, Tracker
from pipeline.engine.unreadable import count_unreadable, cut_problem

CHUNK = 256  # documents handed to each stage's process_batch at once
DROP_FIELDS = [pa.field("drop_stage", pa.string()), pa.field("drop_reason", pa.string())]

Progress = Callable[[int, int], None]  # (documents, characters) read since the last call


@dataclass
class RunSpec:
    """Everything a task needs, fixed when the run is planned."""

    source: Source
    stages: list[Stage]
    inputs: list[str]
    tasks: int
    output: Path  # ROOT/<source>
    keep_dropped: bool = False
    shard_bytes: int = 256 << 20
    # Names this run's stage objects for per-process set-up; new for every RunSpec built.
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def work(self) -> Path:
        return self.output / "_work"

    def schema(self) -> pa.Schema:
        meta = list(self.source.fields())
        for stage in self.stages:
            meta.extend(stage.fields())
        return build_schema(meta)

    def dropped_schema(self) -> pa.Schema:
        return build_schema(list(self.schema())[3:] + DROP_FIELDS)

    def carried_fields(self) -> list[pa.Field]:
        """What global stages carry from their collecting pass to their own (GlobalStage.carried_fields)."""
        return [f for stage in self.stages if isinstance(stage, GlobalStage) for f in stage.carried_fields()]

    def part_schema(self, pass_index: int) -> pa.Schema:
        """The columns of a pass's parts: the shards' and, but in the last pass, the carried fields."""
        last_pass = pass_index == len(self.passes()) - 1
        return self.schema() if last_pass else build_schema(list(self.schema())[3:] + self.carried_fields())

    def task_inputs(self, task: int) -> list[str]:
        # Input i belongs to task i mod N: fixed by the plan, so reruns split identically.
        return self.inputs[task :: self.tasks]

    def passes(self) -> list[tuple[int, int]]:
        """(start, end) stage index ranges; every pass but the last ends in a global stage
        that collects, and every pass but the first begins with that stage's `process`."""
        cuts = [i for i, s in enumerate(self.stages) if isinstance(s, GlobalStage)]
        bounds, start = [], 0
        for cut in cuts:
            bounds.append((start, cut))
            start = cut
        bounds.append((start, len(self.stages)))
        return bounds

    def task_dir(self, pass_index: int, task: int) -> Path:
        return self.work / f"pass{pass_index}" / f"task-{task:05d}"

    def marker(self, pass_index: int, task: int) -> Path:
        return self.work / f"pass{pass_index}" / f"task-{task:05d}.done.json"

    def artefact(self, pass_index: int) -> Path:
        return self.work / f"artefact{pass_index}"


@dataclass
class TaskResult:
    pass_index: int
    task: int
    stats: list[StageStats]
    files_failed: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    # Per part written, in order: {"file", "documents", "bytes", "sha256"} (file in the task folder).
    parts: list[dict] = field(default_factory=list)
    dropped_parts: list[dict] = field(default_factory=list)
    # Documents that killed or stalled a worker twice, or that a stage raised on (pipeline/engine/
    # stage_errors.py; these add "how", the error): {"input", "record", "id", "stage", "reason"}.
    documents_failed: list[dict] = field(default_factory=list)
    # Pass 0: each input's fingerprint, taken before it was read (a rerun reads a changed one again).
    inputs: dict[str, Fingerprint | None] = field(default_factory=dict)
    # Rows of `parts` from each of the task's inputs, in order (`RunSpec.task_inputs`): the parts
    # hold them input after input, so row r's input is known (finalising keeps the first copy of
    # a repeated id in plan order). None in markers written before it was recorded.
    input_rows: list[int] | None = None
    # CPU seconds of this process (its writer thread included) from the stages' set-up to the
    # task's marker: what `pipeline plan` projects per input byte. 0 in older markers.
    cpu_seconds: float = 0.0
    # Pass 0: the sha256 of each local input that failed when read (run_folder.failed_input_sha256).
    failed_sha256: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "pass": self.pass_index,
            "task": self.task,
            "stats": [s.to_json() for s in self.stats],
            "seconds": {s.name: round(s.seconds, 4) for s in self.stats},
            "files_failed": self.files_failed,
            "parts": self.parts,
            "dropped_parts": self.dropped_parts,
            "documents_failed": self.documents_failed,
            "inputs": self.inputs,
            "input_rows": self.input_rows,
            "cpu_seconds": self.cpu_seconds,
            "failed_sha256": self.failed_sha256,
        }

    @classmethod
    def from_json(cls, data: dict) -> TaskResult:
        stats = [StageStats.from_json(s) for s in data["stats"]]
        for s in stats:
            s.seconds = data["seconds"].get(s.name, 0.0)
        return cls(
            data["pass"], data["task"], stats, data["files_failed"], 0.0, data["parts"], data["dropped_parts"],
            data.get("documents_failed", []), data.get("inputs", {}),  # older markers lack these
            data.get("input_rows"), data.get("cpu_seconds", 0.0), data.get("failed_sha256", {}),
        )


# Per-process memory of which stages were set up / loaded, so each happens once per worker.
# Keyed by the run's token and the stage's position, never by id(): ids of a finished run's
# stages are reused by the next run's objects in the same process. `_live` holds the one spec
# object per run whose stages were set up: Ray hands each task a fresh unpickled copy, and
# those copies must use the set-up stages, not start bare.
_ready: set[tuple[str, int, str]] = set()
_live: dict[str, RunSpec] = {}


def _live_spec(spec: RunSpec) -> RunSpec:
    live = _live.get(spec.token)
    if live is None:
        # One run at a time per process: forgetting the last one frees its loaded models.
        _live.clear()
        _ready.clear()
        _live[spec.token] = live = spec
    return live


def _prepare(spec: RunSpec, index: int, what: str, action: Callable[[], None]) -> None:
    key = (spec.token, index, what)
    if key not in _ready:
        action()
        _ready.add(key)


def prepare_pass(spec: RunSpec, pass_index: int) -> RunSpec:
    """Set up the stages of a pass (and load the artefact it starts from) once in this process;
    the spec object whose stages are ready, to run the pass's tasks with."""
    spec = _live_spec(spec)
    start, end = spec.passes()[pass_index]
    last_pass = pass_index == len(spec.passes()) - 1
    for index in range(start, end + (0 if last_pass else 1)):
        _prepare(spec, index, "setup", spec.stages[index].setup)
    if pass_index > 0:
        head = spec.stages[start]
        assert isinstance(head, GlobalStage)
        _prepare(spec, start, "load", lambda: head.load(spec.artefact(pass_index - 1)))
    return spec


def run_task(
    spec: RunSpec,
    pass_index: int,
    task: int,
    progress: Progress | None = None,
    attempt: Attempt | None = None,
    tracker: Tracker | None = None,
) -> TaskResult:
    """Run one task; `attempt` says which documents earlier attempts' workers died on (see
    pipeline/engine/supervisor.py), `tracker` publishes where this one is."""
    marker = spec.marker(pass_index, task)
    if marker.exists():
        return TaskResult.from_json(json.loads(marker.read_text()))
    attempt = attempt or Attempt()
    tracker = tracker or Tracker()
    started = time.perf_counter()
    spec = prepare_pass(spec, pass_index)
    cpu_started = cpu_seconds()  # after the stages' set-up: the task's own work, which grows with its bytes
    out_dir = spec.task_dir(pass_index, task)
    shutil.rmtree(out_dir, ignore_errors=True)  # leftovers of a killed attempt
    out_dir.mkdir(parents=True)
    start, end = spec.passes()[pass_index]
    last_pass = pass_index == len(spec.passes()) - 1
    stages = spec.stages[start:end]
    collector = None if last_pass else spec.stages[end]
    assert collector is None or isinstance(collector, GlobalStage)

    files_failed: list[dict] = []
    documents_failed: list[dict] = []
    read_stats = StageStats("read")
    stats = [StageStats(s.name) for s in stages]
    inputs: dict[str, Fingerprint | None] = {}
    if pass_index == 0:
        paths = spec.task_inputs(task)
        inputs = {p: fingerprint(p) for p in paths}  # before reading: a change while reading shows later
        files = len(paths)
        chunks = _read_chunks([lambda p=p: spec.source.read(p) for p in paths], paths, attempt, tracker, files_failed)
    else:
        openers = _previous_parts_by_input(spec, pass_index, task)
        files = len(openers)
        chunks = _read_chunks(openers, [None] * files, attempt, tracker, files_failed)

    # An earlier pass's parts are read by the next pass of the same task and deleted: nothing
    # publishes or checks them, so they are not hashed (a third of writing them).
    writer = ShardWriter(out_dir, spec.part_schema(pass_index), "part", spec.shard_bytes, checksum=last_pass)
    # A document dropped before its global stage's `process` removed the carried fields (one that
    # failed its worker twice there) still holds them: they are no audit's business.
    dropped_writer = (
        ShardWriter(out_dir, spec.dropped_schema(), "dropped", spec.shard_bytes,
                    left_out=frozenset(f.name for f in spec.carried_fields()))
        if spec.keep_dropped else None
    )
    paths_of = spec.task_inputs(task) if pass_index == 0 else []
    errors = StageErrors(f"task {task} of pass {pass_index}", documents_failed)
    kept_by_file = _run_stages(chunks, stages, stats, read_stats, dropped_writer, progress, attempt, tracker,
                               paths_of, errors)
    rows_per_file: list[int] = []
    kept = _counted(kept_by_file, rows_per_file)
    if collector is not None:
        kept = _annotated(kept, collector)
    try:
        with _tuned_for_throughput(), _temporaries_in(out_dir / "tmp"):
            if collector is not None:
                stream = _tee(kept, writer)
                collector.collect(stream, out_dir / "partial")
                for _ in stream:  # a collector that stopped early still passes everything on
                    pass
            else:
                for docs in kept:
                    writer.write_many(docs)
        tracker.at(IDLE)
        writer.close()
        parts = writer.info
        # Known when each input was read in chunks of its own: always in pass 0, and in a later
        # pass when the previous one recorded its inputs' rows.
        input_rows = None
        if files == len(spec.task_inputs(task)):
            input_rows = rows_per_file + [0] * (files - len(rows_per_file))
        dropped_parts: list[dict] = []
        if dropped_writer:
            dropped_writer.close()
            dropped_parts = dropped_writer.info
    except BaseException as e:
        writer.abort()
        if dropped_writer:
            dropped_writer.abort()
        if isinstance(e, OSError) and (e.errno in OUT_OF_SPACE or e.errno is None):  # a stage's own files
            raise with_path(e, out_dir) from e
        raise
    result = TaskResult(
        pass_index,
        task,
        ([read_stats] if pass_index == 0 else []) + stats,
        files_failed,
        time.perf_counter() - started,
        parts,
        dropped_parts,
        documents_failed,
        inputs,
        input_rows,
        round(cpu_seconds() - cpu_started, 4),
        {f["path"]: digest for f in files_failed if pass_index == 0 and (digest := failed_input_sha256(f["path"]))},
    )
    write_json_atomic(marker, result.to_json())
    return result


@contextlib.contextmanager
def _temporaries_in(folder: Path) -> Iterator[None]:
    """Temporary files of readers and stages (tempfile's default folder) go into `folder`, in
    the task's folder under the run's output: a killed task leaves them where its next attempt
    removes them (the task folder is emptied first), never in $TMPDIR for ever."""
    folder.mkdir(parents=True, exist_ok=True)
    previous = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _tuned_for_throughput() -> Iterator[None]:
    """Interpreter settings for the document loop, restored afterwards.

    - The cyclic collector runs every 50k allocations instead of every 700: every document
      in flight is an object it tracks, and at the default it walks the same in-flight
      documents hundreds of times per 100k documents, a tenth of the engine's own time.
      Cycles a stage creates are still collected.
    - Threads switch every 0.2 ms instead of 5 ms: the shard writer's background thread
      needs the interpreter lock for a moment between each write and hash, and waiting
      5 ms for it each time starves it behind a busy document loop.
    """
    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    gc.set_threshold(50_000, *threshold[1:])
    sys.setswitchinterval(min(interval, 0.0002))
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        sys.setswitchinterval(interval)


Chunk = tuple[int, int, list]  # (file index, first item's index in that file, items)


def _read_chunks(
    openers: list[Callable[[], Iterable[Document | Skipped]]],
    paths: list[str | None],
    attempt: Attempt,
    tracker: Tracker,
    files_failed: list[dict],
) -> Iterator[Chunk]:
    """Chunks of at most CHUNK items, never across files, each published before it is read:
    a worker that dies or stalls is known to have been on these items."""
    for file, (open_items, path) in enumerate(zip(openers, paths)):
        stop = attempt.stop_at(file)
        item = 0
        if path is not None and not storable(path):
            # Ids, metadata and every line that names the file must be UTF-8: such a file is
            # reported and counted, not a crash at the shard writer.
            shown = printable(path)
            files_failed.append({"path": shown, "problem": "file name is not valid UTF-8"})
            warn(f"warning: {shown}: file name is not valid UTF-8; skipped")
            continue
        items: Iterator[Document | Skipped] | None = None  # opened once its first chunk is published
        while True:
            size = attempt.chunk_size(file, item, CHUNK)
            if stop is not None:
                size = min(size, stop - item)
                if size <= 0:
                    if items is not None and hasattr(items, "close"):
                        items.close()
                    problem = cut_problem(attempt.cut[file][1], stop, attempt.given_up.get(file, 0))
                    files_failed.append({"path": path, "problem": problem})
                    warn(f"warning: {path}: {problem}")
                    break
            tracker.at(READING, file, item, size)
            chunk: list[Document | Skipped] = []
            unreadable = False
            try:
                if items is None:
                    items = iter(open_items())
                # At C speed, and straight from the reader (no generator around it, which would
                # cost a frame switch per document); an error keeps what was read before it.
                chunk.extend(islice(items, size))
            except Exception as e:  # noqa: BLE001  (sorted out by count_unreadable)
                count_unreadable(e, path, files_failed)
                unreadable = True
            if chunk:
                yield file, item, chunk
                item += len(chunk)
            if unreadable or not chunk:
                break


def _read_parts(folder: Path) -> Iterator[Document]:
    for part in sorted(folder.glob("part-*.arrow")):
        yield from iter_shard(part)


def _previous_parts_by_input(spec: RunSpec, pass_index: int, task: int) -> list[Callable[[], Iterable[Document]]]:
    """The previous pass's parts of `task` as one reader per task input (its rows, in order), so
    that this pass too counts what it keeps per input; one reader of everything when the
    previous marker does not say (written before input rows were recorded)."""
    documents = _read_parts(spec.task_dir(pass_index - 1, task))
    previous = json.loads(spec.marker(pass_index - 1, task).read_text()).get("input_rows")
    if previous is None:
        return [lambda: documents]
    starts = [sum(previous[:k]) for k in range(len(previous))]
    position = [0]  # rows of the shared iterator consumed so far

    def rows_of(start: int, rows: int) -> Iterator[Document]:
        # The readers are opened one after another; one stopped early (a document that failed
        # its worker twice) leaves rows behind, skipped here so each input starts where it does.
        for _ in islice(documents, start - position[0]):
            pass
        position[0] = start
        for doc in islice(documents, rows):
            position[0] += 1
            yield doc

    return [lambda start=start, rows=rows: rows_of(start, rows) for start, rows in zip(starts, previous)]


def _counted(chunks: Iterator[tuple[int, list[Document]]], rows_per_file: list[int]) -> Iterator[list[Document]]:
    """The kept documents of each chunk, counting them per input file into `rows_per_file`."""
    for file, docs in chunks:
        while len(rows_per_file) <= file:
            rows_per_file.append(0)
        rows_per_file[file] += len(docs)
        yield docs


def _run_stages(
    chunks: Iterable[Chunk],
    stages: list[Stage],
    stats: list[StageStats],
    read_stats: StageStats,
    dropped_writer: ShardWriter | None,
    progress: Progress | None,
    attempt: Attempt,
    tracker: Tracker,
    paths: list[str],
    errors: StageErrors,
) -> Iterator[tuple[int, list[Document]]]:
    """Chunks of documents that passed every stage, each with the index of the file it was read
    from. Per-document work here is kept to a minimum: this loop is the engine's overhead on top
    of the stages themselves."""
    skipped = read_stats.dropped
    unreported_docs, unreported_chars = 0, 0
    last_report = time.monotonic()
    for file, item, chunk in chunks:
        tracker.at(PROCESSING, file, item, len(chunk), 0)
        input_path = paths[file] if file < len(paths) else None
        errors.reading(input_path, item, chunk)
        if Skipped in set(map(type, chunk)):  # only chunks holding a Skipped are walked in Python
            docs = []
            for entry in chunk:
                if entry.__class__ is Skipped:
                    skipped[entry.reason] += 1
                    if dropped_writer is not None and entry.document is not None:
                        _write_dropped(dropped_writer, entry.document, read_stats.name, entry.reason)
                else:
                    docs.append(entry)
            chunk = docs
        read_stats.documents_out += len(chunk)
        if progress:
            unreported_docs += len(chunk)
            unreported_chars += sum([len(doc.text) for doc in chunk])
        poison = attempt.poisoned.get((file, item)) if len(chunk) == 1 else None
        if poison is not None:
            _drop_poisoned(chunk[0], poison, stages, stats, read_stats, dropped_writer, tracker, errors)
            errors.documents_failed.append({  # the task's list of failed documents, with the raising ones
                "input": input_path, "record": item, "id": chunk[0].id,
                "stage": stages[min(poison[1], len(stages) - 1)].name if stages else "read", "reason": poison[0],
            })
        elif chunk:
            kept = _process_chunk(chunk, stages, stats, dropped_writer, tracker, errors)
            tracker.stage(len(stages))  # past the stages: collecting or writing
            yield file, kept
        if progress and time.monotonic() - last_report > 0.5:
            progress(unreported_docs, unreported_chars)
            unreported_docs, unreported_chars = 0, 0
            last_report = time.monotonic()
    # Past the last document: a collector's own closing work (sorting, saving) is no document's.
    tracker.at(IDLE)
    if progress:
        progress(unreported_docs, unreported_chars)
    read_stats.documents_in = read_stats.documents_out + sum(skipped.values())


def _drop_poisoned(
    doc: Document,
    poison: tuple[str, int],
    stages: list[Stage],
    stats: list[StageStats],
    read_stats: StageStats,
    dropped_writer: ShardWriter | None,
    tracker: Tracker,
    errors: StageErrors,
) -> None:
    """A document that failed a worker twice: through the stages before the one it failed in,
    then dropped there with the reason (after the last stage: dropped by the last)."""
    reason, failed_in = poison
    if not stages:
        read_stats.documents_out -= 1
        read_stats.dropped[reason] += 1
        return
    at = max(0, min(failed_in, len(stages) - 1))
    survivors = _process_chunk([doc], stages[:at], stats[:at], dropped_writer, tracker, errors)
    if not survivors:
        return
    doc = survivors[0]
    stats[at].documents_in += 1
    stats[at].dropped[reason] += 1
    if dropped_writer is not None:
        _write_dropped(dropped_writer, doc, stages[at].name, reason)


def _process_chunk(
    docs: list[Document],
    stages: list[Stage],
    stats: list[StageStats],
    dropped_writer: ShardWriter | None,
    tracker: Tracker,
    errors: StageErrors,
) -> list[Document]:
    for index, (stage, st) in enumerate(zip(stages, stats)):
        if not docs:
            break
        tracker.stage(index)
        # CPU, not wall time (timings.json's stage_cpu_seconds): what a stage costs, whatever else
        # the machine runs meanwhile. The process's: a library's threads (SentencePiece encodes
        # on one) count with the stage that called it.
        started = time.process_time()
        # A document the stage raises on is dropped as `stage_error` here, in the worker; the
        # user's errors (a model missing) and the machine's (a full disk) end the task.
        results = errors.process(stage, docs)
        st.seconds += time.process_time() - started
        st.documents_in += len(docs)
        if len(results) != len(docs):
            raise RuntimeError(f"stage {stage.name} returned {len(results)} results for {len(docs)} documents")
        if str not in set(map(type, results)):  # nothing dropped: skip the per-document loop
            st.documents_out += len(results)
            docs = results  # type: ignore[assignment]
            continue
        kept = []
        for doc, result in zip(docs, results):
            if isinstance(result, str):
                st.dropped[result] += 1
                if dropped_writer is not None:
                    _write_dropped(dropped_writer, doc, stage.name, result)
            else:
                kept.append(result)
        st.documents_out += len(kept)
        docs = kept
    return docs


def _write_dropped(writer: ShardWriter, doc: Document, stage: str, reason: str) -> None:
    writer.write(Document(doc.id, doc.text, doc.source, dict(doc.meta, drop_stage=stage, drop_reason=reason)))


def _annotated(chunks: Iterator[list[Document]], collector: GlobalStage) -> Iterator[list[Document]]:
    """Each chunk after the collector's `annotate`: before the parts are written, as it carries
    its fields through them."""
    for docs in chunks:
        collector.annotate(docs)
        yield docs


def _tee(chunks: Iterator[list[Document]], writer: ShardWriter) -> Iterator[Document]:
    for docs in chunks:
        writer.write_many(docs)
        yield from docs


