"""Plans a run, executes its passes with a pool of local worker processes, and finalises.

A run folder `ROOT/<source>/` holds, while running, `_work/plan.json` (the inputs and the
task split, fixed at the first run), per-task parts and completion markers, and the
artefacts of global stages. Finalising renames the parts to `shard-NNNNN.arrow` in task
order and writes `manifest.json`, `stats.json` and `timings.json`.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import shutil
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterable

from tqdm import tqdm

from pipeline.common.errors import UserError
from pipeline.common.files import with_path, write_json_atomic
from pipeline.engine.runner import Progress, RunSpec, TaskResult, run_task
from pipeline.engine.shards import repeated_ids
from pipeline.engine.stage import GlobalStage, StageStats

PLAN_VERSION = 1


def plan_run(spec_without_split: RunSpec, restart: bool = False) -> RunSpec:
    """Fix the task split at the first run; later runs must agree with it."""
    spec = spec_without_split
    output, work = spec.output, spec.work
    names = [s.name for s in spec.stages]
    if len(set(names)) != len(names) or "read" in names:
        raise ValueError(f"stage names must be unique and not 'read': {names}")
    if restart and output.exists():
        shutil.rmtree(output)
    plan_path = work / "plan.json"
    wanted = {
        "version": PLAN_VERSION,
        "source": spec.source.name,
        "inputs": spec.inputs,
        "tasks": spec.tasks,
        "stages": [s.name for s in spec.stages],
        "config": dataclasses.asdict(spec.source.config),
    }
    if plan_path.exists():
        plan = json.loads(plan_path.read_text())
        for key in ("source", "inputs", "stages", "config"):
            if plan.get(key) != wanted[key]:
                raise UserError(
                    f"{output}: the {key} differ from the run started there; "
                    "rerun with the same settings to resume, or pass --restart to start over"
                )
        # The split is fixed at the first run; a different --workers only changes parallelism.
        return dataclasses.replace(spec, tasks=plan["tasks"])
    if any(output.glob("shard-*.arrow")) or (output / "manifest.json").exists():
        raise UserError(f"{output}: holds shards of an earlier run; pass --restart to replace them")
    write_json_atomic(plan_path, wanted)
    return spec


@dataclasses.dataclass
class RunReport:
    output: Path
    documents_kept: int
    shards: int
    stats: dict
    seconds: float


class LocalExecutor:
    """Runs tasks in `workers` processes (in this process when workers == 1)."""

    def __init__(self, workers: int = 1, show_progress: bool | None = None) -> None:
        self.workers = max(1, workers)
        self.show_progress = show_progress

    def map_tasks(self, spec: RunSpec, pass_index: int, tasks: list[int], progress: Progress) -> list[TaskResult]:
        if self.workers == 1 or len(tasks) <= 1:
            return [run_task(spec, pass_index, t, progress) for t in tasks]
        ctx = multiprocessing.get_context("fork")
        queue = ctx.SimpleQueue()

        def drain() -> None:
            # Blocks on the queue until the sentinel: polling would add its interval to every run.
            while (report := queue.get()) is not None:
                progress(*report)

        pump = threading.Thread(target=drain, daemon=True)
        pump.start()
        try:
            with ctx.Pool(min(self.workers, len(tasks)), initializer=_init_worker, initargs=(spec, queue)) as pool:
                results = list(pool.imap_unordered(_worker_task, [(pass_index, t) for t in tasks]))
        finally:
            queue.put(None)  # after every worker's reports: the workers have finished or are gone
            pump.join()
        return results

    def run(self, spec: RunSpec) -> RunReport:
        return execute(spec, self.map_tasks, self.show_progress)


_worker_spec: RunSpec | None = None
_worker_queue = None


def _init_worker(spec: RunSpec, queue) -> None:
    global _worker_spec, _worker_queue
    _worker_spec, _worker_queue = spec, queue


def _worker_task(job: tuple[int, int]) -> TaskResult:
    assert _worker_spec is not None
    return run_task(_worker_spec, job[0], job[1], lambda d, c: _worker_queue.put((d, c)))


MapTasks = Callable[[RunSpec, int, list[int], Progress], list[TaskResult]]


def execute(spec: RunSpec, map_tasks: MapTasks, show_progress: bool | None = None) -> RunReport:
    """Run every pass of `spec` with `map_tasks`, merge global artefacts, finalise."""
    started = time.perf_counter()
    complete = spec.work / "complete.json"
    if complete.exists():
        report = json.loads(complete.read_text())
        return RunReport(spec.output, report["documents_kept"], report["shards"], _read_stats(spec), 0.0)
    passes = spec.passes()
    bar = tqdm(
        desc=f"{spec.source.name}",
        unit=" docs",
        unit_scale=True,
        disable=None if show_progress is None else not show_progress,  # None: only on a terminal
        mininterval=1.0,
    )
    chars = [0]

    def progress(docs: int, n_chars: int) -> None:
        chars[0] += n_chars
        bar.update(docs)
        elapsed = max(bar.format_dict["elapsed"], 1e-9)
        bar.set_postfix_str(f"{chars[0] / elapsed / 1e6:.1f} MB/s", refresh=False)

    results: list[TaskResult] = []
    try:
        for pass_index in range(len(passes)):
            if len(passes) > 1:
                bar.set_description(f"{spec.source.name} pass {pass_index + 1}/{len(passes)}")
            todo = list(range(spec.tasks))
            pass_results = map_tasks(spec, pass_index, todo, progress if pass_index == 0 else _no_progress)
            results.extend(pass_results)
            if pass_index < len(passes) - 1:
                _merge_artefact(spec, pass_index)
    finally:
        bar.close()
    return _finalise(spec, results, time.perf_counter() - started)


def _no_progress(docs: int, chars: int) -> None:
    pass


def _merge_artefact(spec: RunSpec, pass_index: int) -> None:
    artefact = spec.artefact(pass_index)
    done = artefact.with_name(artefact.name + ".done")
    if done.exists():
        return
    shutil.rmtree(artefact, ignore_errors=True)
    artefact.mkdir(parents=True)
    collector = spec.stages[spec.passes()[pass_index][1]]
    assert isinstance(collector, GlobalStage)
    partials = [spec.task_dir(pass_index, t) / "partial" for t in range(spec.tasks)]
    try:
        collector.merge(partials, artefact)
    except OSError as e:
        raise with_path(e, artefact) from e  # the stage's own writes name no file
    done.touch()


def _finalise(spec: RunSpec, results: list[TaskResult], seconds: float) -> RunReport:
    last = len(spec.passes()) - 1
    moves: list[tuple[Path, Path]] = []
    shards = []
    for t in range(spec.tasks):
        for part, info in _parts(spec, last, t, "part"):
            dst = spec.output / f"shard-{len(moves):05d}.arrow"
            moves.append((part, dst))
            shards.append(dict(info, file=dst.name))
    # Ids are unique in a source (the corpus contract): a repeat (the same record in two inputs,
    # or a reader's bug) is refused before anything is published, never kept twice. A finalise
    # killed halfway has moved some parts already.
    repeated = repeated_ids([src if src.exists() else dst for src, dst in moves])
    if repeated:
        raise UserError(f"{spec.output}: {len(repeated):,} id(s) are carried by more than one document, "
                        f"e.g. {', '.join(repeated[:3])}; ids must be unique in a source (a record given twice, "
                        "or a reader's bug): nothing was published")
    dropped_moves: list[tuple[Path, Path]] = []
    if spec.keep_dropped:
        for p in range(last + 1):
            for t in range(spec.tasks):
                for part, _ in _parts(spec, p, t, "dropped"):
                    dropped_moves.append((part, spec.output / "dropped" / f"shard-{len(dropped_moves):05d}.arrow"))
    if dropped_moves:
        (spec.output / "dropped").mkdir(exist_ok=True)
    for src, dst in moves + dropped_moves:
        if src.exists():  # idempotent: a finalise killed halfway has moved some already
            os.replace(src, dst)

    stats = merge_stats(spec, results)
    kept = sum(s["documents"] for s in shards)
    manifest = {
        "source": spec.source.name,
        "documents": kept,
        "bytes": sum(s["bytes"] for s in shards),
        "shards": shards,
        "schema": [{"name": f.name, "type": str(f.type)} for f in spec.schema()],
    }
    if dropped_moves:
        manifest["dropped_shards"] = [f"dropped/{dst.name}" for _, dst in dropped_moves]
    write_json_atomic(spec.output / "manifest.json", manifest)
    write_json_atomic(spec.output / "stats.json", stats)
    write_json_atomic(spec.output / "timings.json", _timings(results, seconds))
    write_json_atomic(spec.work / "complete.json", {"documents_kept": kept, "shards": len(shards)})
    # Intermediate parts and artefacts are no longer needed; the plan and markers stay.
    for entry in spec.work.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
    return RunReport(spec.output, kept, len(shards), stats, seconds)


def _parts(spec: RunSpec, pass_index: int, task: int, prefix: str) -> list[tuple[Path, dict]]:
    # The marker, not the folder, says which parts a task wrote (with their row counts and
    # checksums): a finalise killed halfway has already moved some of them.
    result = TaskResult.from_json(json.loads(spec.marker(pass_index, task).read_text()))
    parts = result.parts if prefix == "part" else result.dropped_parts
    return [(spec.task_dir(pass_index, task) / p["file"], p) for p in parts]


def merge_stats(spec: RunSpec, results: Iterable[TaskResult]) -> dict:
    merged: OrderedDict[str, StageStats] = OrderedDict((n, StageStats(n)) for n in ["read"] + [s.name for s in spec.stages])
    files_failed: list[dict] = []
    for result in sorted(results, key=lambda r: (r.pass_index, r.task)):
        for st in result.stats:
            merged[st.name].add(st)
        files_failed.extend(result.files_failed)
    stages = [s.to_json() for s in merged.values()]
    kept = stages[-1]["out"]
    return {
        "source": spec.source.name,
        "files": {"total": len(spec.inputs), "failed": sorted(files_failed, key=lambda f: f["path"])},
        "documents_read": stages[0]["in"],
        "documents_kept": kept,
        "stages": stages,
    }


def _timings(results: list[TaskResult], seconds: float) -> dict:
    per_stage: dict[str, float] = {}
    for r in results:
        for st in r.stats:
            per_stage[st.name] = per_stage.get(st.name, 0.0) + st.seconds
    return {"wall_seconds": round(seconds, 3), "stage_cpu_seconds": {k: round(v, 3) for k, v in per_stage.items()}}


def _read_stats(spec: RunSpec) -> dict:
    path = spec.output / "stats.json"
    return json.loads(path.read_text()) if path.exists() else {}
