"""Drives a planned run: fixes its plan, runs its passes on an executor, merges the global
stages' artefacts between passes, and finalises.

A run folder `ROOT/<source>/` (its protocol: pipeline/engine/run_folder.py) holds, while
running, `_work/plan.json` (the inputs and the task split, fixed at the first run), per-task
parts and completion markers, and the artefacts of global stages. Finalising renames the parts
to `shard-NNNNN.arrow` in task order and writes `manifest.json`, `stats.json` and
`timings.json`, and keeps the plan and markers: they are the record a rerun checks the
finished run against first (pipeline/engine/run_record.py). The executors
(pipeline/engine/local_executor.py, ray_executor.py) only run the tasks of a pass.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

from tqdm import tqdm

from pipeline.common.errors import UserError
from pipeline.common.files import file_sha256, read_json, sha256_once, tree_bytes, with_path, write_json_atomic
from pipeline.common.warn import warn
from pipeline.engine.run_folder import NUMBERED, WORK, RunFolder
from pipeline.engine.run_record import COMPLETE, WRITTEN, moves, published_sha256, reconcile
from pipeline.engine.runner import Progress, RunSpec, TaskResult
from pipeline.engine.resources import children_peak_rss_bytes, measure_phase
from pipeline.engine.stage import GlobalStage, Stage, StageStats
from pipeline.engine.supervisor import Failure
from pipeline.engine.unique_ids import drop_repeated_ids, stats_with_drops

PLAN_VERSION = 1

# Plan entries a rerun must agree with, and the flag that sets each (None: not one flag).
PLANNED = {"source": None, "inputs": None, "stages": None, "config": None, "keep_dropped": "--keep-dropped",
           "shard_bytes": "--shard-mb"}
DEFAULTS = {"keep_dropped": False, "shard_bytes": 256 << 20}  # plans written before these were recorded
# Everything a run creates in its folder; --restart deletes these and nothing else.
# What a run (and `pipeline remove`, whose temporaries end in .removing) writes here, by the names it
# gives: shard-NNNNN.arrow (five digits or more), never a user's shard-old.arrow nor anything else
# a user keeps in dropped/; --restart deletes these only (a dropped/ left empty goes too).
SHARD_NAMES = (f"shard-{NUMBERED}.arrow", f"shard-{NUMBERED}.arrow.tmp", f"shard-{NUMBERED}.arrow.removing")
RUN_FILES = (WORK, "manifest.json", "stats.json", "timings.json", *SHARD_NAMES,
             *(f"dropped/{name}" for name in SHARD_NAMES))


PUBLISHED = "published.json"  # in _work/: the shards a finalise moves into place, written before it moves any


def corpus_run_folder(output: Path) -> RunFolder:
    """The run folder `ROOT/<source>/` of `pipeline run` (the protocol: pipeline/engine/run_folder.py)."""
    return RunFolder(output, activity="run", noun="run folder", created=RUN_FILES,
                     published=(SHARD_NAMES[0], "manifest.json"), published_noun="shards of an earlier run",
                     written=WRITTEN, recorded_only=(SHARD_NAMES[0], f"dropped/{SHARD_NAMES[0]}"),
                     records=recorded_shards)


def recorded_shards(output: Path) -> set[str]:
    """The shards (names under `output`) the run there recorded making: those its finalise was about
    to move into place (_work/published.json), and those its manifest lists (`pipeline remove`
    rewrites them under the same names). A damaged record counts for nothing."""
    names: set[str] = set()
    for path, keys in ((output / WORK / PUBLISHED, None), (output / "manifest.json", ("shards", "dropped_shards"))):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        lists = [record] if keys is None else [record.get(k) for k in keys] if isinstance(record, dict) else []
        for listed in lists:
            for entry in listed if isinstance(listed, list) else []:
                name = entry.get("file") if isinstance(entry, dict) else entry
                if isinstance(name, str):
                    names.add(name)
    return names


def plan_run(spec_without_split: RunSpec, restart: bool = False) -> RunSpec:
    """Fix the task split at the first run; later runs must agree with it."""
    spec = _as_first_spelled(spec_without_split, restart)
    names = [s.name for s in spec.stages]
    if len(set(names)) != len(names) or "read" in names:
        raise ValueError(f"stage names must be unique and not 'read': {names}")
    wanted = {
        "version": PLAN_VERSION,
        "source": spec.source.name,
        "inputs": spec.inputs,
        "tasks": spec.tasks,
        "stages": [s.name for s in spec.stages],
        "config": dataclasses.asdict(spec.source.config),
        # Settings that change what the tasks write: a resumed run must not mix two of them.
        "keep_dropped": spec.keep_dropped,
        "shard_bytes": spec.shard_bytes,
        # And the models the stages load (a classifier trained again keeps its path and name).
        "models": model_identities(spec.stages),
        # And the code that decides what is kept (an upgraded herd, or a filter edited, keeps every name).
        "code": code_identities([spec.source, *spec.stages]),
    }

    def refuse_change(plan: dict, changed: list[str]) -> UserError:
        key = changed[0]
        flag = PLANNED[key]
        earlier = plan.get(key, DEFAULTS.get(key))
        shown = f" (the run there has {_show(key, earlier)}, this one {_show(key, wanted[key])})" if flag else ""
        if key == "config" and isinstance(earlier, dict):
            shown = f" ({_config_changes(earlier, wanted['config'])})"
        if key == "inputs" and isinstance(earlier, list):
            shown = f" ({_input_changes(earlier, spec.inputs)})"
        what = flag or f"the {key}"
        return UserError(
            f"{spec.output}: {what} {'differ' if key in ('inputs', 'stages') else 'differs'} from the run started "
            f"there{shown}; rerun with the same settings to resume, or pass --restart to start over"
        )

    plan = corpus_run_folder(spec.output).fix_plan(wanted, list(PLANNED), refuse_change, restart=restart,
                                                    defaults=DEFAULTS)
    if plan.get("models") is not None and plan["models"] != wanted["models"]:  # a plan of an older herd has none
        raise UserError(_models_changed(spec.output, plan["models"], wanted["models"]))
    if plan.get("code") is not None and plan["code"] != wanted["code"]:  # a plan of an older herd has none
        warn(_code_changed(spec.output, plan["code"], wanted["code"]))
    # The split is fixed at the first run; a different --workers only changes parallelism.
    return dataclasses.replace(spec, tasks=plan["tasks"])


def model_identities(stages: list[Stage]) -> dict[str, dict[str, str]]:
    """The sha256 of every model file each stage loads, by stage and file name (one missing is
    left to its stage's own check, which names the command that writes it)."""
    return {stage.name: {path.name: sha256_once(path) for path in files if path.is_file()}
            for stage in stages if (files := stage.model_files())}


def code_identities(parts: list[object]) -> dict[str, str]:
    """The sha256 of the file of every module whose classes make up `parts` (the source and its
    stages, their base classes included), by module name; a class with no file (made at run
    time) is left out. Read at each run: a few small files."""
    modules: dict[str, str] = {}
    for cls in {klass for part in parts for klass in type(part).__mro__}:
        if cls.__module__ in modules or cls.__module__ == "builtins":
            continue
        try:
            path = inspect.getsourcefile(cls)
        except TypeError:  # a built-in class
            continue
        if path and Path(path).is_file():
            modules[cls.__module__] = file_sha256(path)
    return dict(sorted(modules.items()))


def _code_changed(output: Path, earlier: dict, now: dict) -> str:
    """The warning for a rerun whose code differs from the run it continues: not refused (a fix
    to a filter that crashed is how a stopped run is resumed), but said, since finished tasks
    keep what the earlier code wrote."""
    changed = sorted(name for name in set(earlier) | set(now) if earlier.get(name) != now.get(name))
    shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    return (f"warning: {output}: the code of {shown} changed since the run there started (another herd, or an "
            "edit); what it finished stays as that code wrote it: pass --restart to make all of it with this code")


def _models_changed(output: Path, earlier: dict, now: dict) -> str:
    """The one line for a rerun whose stages load other models than the run it continues."""
    for stage in sorted(set(earlier) | set(now)):
        before, after = earlier.get(stage, {}), now.get(stage, {})
        for name in sorted(set(before) | set(after)):
            if before.get(name) != after.get(name):
                was, is_now = (str(value)[:12] if value else "none" for value in (before.get(name), after.get(name)))
                return (f"{output}: the {stage} model {name} is not the one the run started there used (sha256 {was}, "
                        f"now {is_now}: trained again or replaced since); pass --restart to run with it, or put that "
                        f"model back to resume")
    return f"{output}: the models differ from the run started there; pass --restart to run with them"


def _same_file(path: str) -> str:
    """What names an input whatever the spelling of its path (`../raw/c4`, a symlinked folder):
    its real path; a URL as it is."""
    return path if "://" in path else os.path.realpath(path)


def _as_first_spelled(spec: RunSpec, restart: bool) -> RunSpec:
    """`spec` with its inputs spelled as the run in its folder first recorded them, where they are
    the same files under other paths (`--input ../base/raw/c4` then `--input /abs/base/raw/c4`):
    the same inputs, not other ones to start over for."""
    plan_path = corpus_run_folder(spec.output).plan_path
    if restart or not plan_path.is_file():
        return spec
    try:
        earlier = json.loads(plan_path.read_text()).get("inputs")
    except (OSError, ValueError, AttributeError):
        return spec  # a damaged plan is the run folder's to name
    if (isinstance(earlier, list) and earlier != spec.inputs and all(isinstance(p, str) for p in earlier)
            and list(map(_same_file, earlier)) == list(map(_same_file, spec.inputs))):
        return dataclasses.replace(spec, inputs=earlier)
    return spec


def _input_changes(earlier: list[str], now: list[str]) -> str:
    """Which inputs a rerun adds and lacks, the first of each: "1 new: a.json.gz; 1 gone: b.json.gz"."""
    before, after = set(map(_same_file, earlier)), set(map(_same_file, now))
    new = [p for p in now if _same_file(p) not in before]
    gone = [p for p in earlier if _same_file(p) not in after]
    parts = [f"{len(paths)} {what}: {paths[0]}" + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
             for what, paths in (("new", new), ("gone", gone)) if paths]
    return "; ".join(parts) or "the same files in another order"


def _config_changes(earlier: dict, now: dict) -> str:
    """The settings that differ between two runs' configs, the first three: "min_chars 300 -> 500"."""
    changed = [f"{name} {earlier.get(name)!r} -> {now.get(name)!r}" for name in sorted(set(earlier) | set(now))
               if earlier.get(name) != now.get(name)]
    return ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")


def _show(key: str, value: object) -> str:
    if key == "shard_bytes" and isinstance(value, int):
        return f"--shard-mb {value >> 20}"
    return ("--keep-dropped" if value else "no --keep-dropped") if key == "keep_dropped" else repr(value)


@dataclasses.dataclass
class RunReport:
    output: Path
    documents_kept: int
    shards: int
    stats: dict
    seconds: float


MapTasks = Callable[[RunSpec, int, list[int], Progress | None], list[TaskResult]]


def execute(
    spec: RunSpec, map_tasks: MapTasks, show_progress: bool | None = None, failures: list[Failure] | None = None
) -> RunReport:
    """Check the run's record (pipeline/engine/run_record.py), run every pass of `spec` with
    `map_tasks`, merge global artefacts, finalise."""
    started = time.perf_counter()
    reconcile(spec)
    complete = spec.work / COMPLETE
    if complete.exists():
        report = read_json(complete)
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
                bar.set_description_str(f"{spec.source.name} pass {pass_index + 1}/{len(passes)}")
            todo = list(range(spec.tasks))
            # No bar to feed (not a terminal, or --no-progress): the workers count nothing for it.
            shown = progress if pass_index == 0 and not bar.disable else None
            pass_results = map_tasks(spec, pass_index, todo, shown)
            results.extend(pass_results)
            if pass_index < len(passes) - 1:
                _merge_artefact(spec, pass_index)
    finally:
        bar.close()
    return _finalise(spec, results, time.perf_counter() - started, failures or [])


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
        with measure_phase() as phase:
            collector.merge(partials, artefact)
    except OSError as e:
        raise with_path(e, artefact) from e  # the stage's own writes name no file
    # What the merge cost, kept with its marker (a resumed run does not merge again): timings.json
    # lists it, and `pipeline plan` projects it.
    # The largest task's partial: what a collector holding its state in memory held at its
    # task's end, the part of a worker's peak that grows in step with its task.
    largest_partial = max((tree_bytes(p) for p in partials), default=0)
    write_json_atomic(done, {"stage": collector.name, **phase.to_json(), "largest_partial_bytes": largest_partial,
                             "state_in_memory": collector.state_in_memory})


def _finalise(spec: RunSpec, results: list[TaskResult], seconds: float, failures: list[Failure]) -> RunReport:
    # Ids are unique in a source (the corpus contract): of the documents carrying one id (the same
    # record in two inputs, or twice in one), the first in plan order is kept and the others are
    # dropped from their parts before anything is published (pipeline/engine/unique_ids.py). A
    # finalise killed halfway has moved some parts already.
    kept_moves, _ = moves(spec)
    unique = drop_repeated_ids(spec, [(m.task, m.src if m.src.exists() else m.dst, m.info) for m in kept_moves])
    kept_moves, dropped_moves = moves(spec)  # the markers now list the rewritten parts
    # The mtime a part was written with is the run's record (run_folder.file_problem), not the corpus's.
    shards = [{key: value for key, value in dict(m.info, file=m.dst.name).items() if key != "mtime_ns"}
              for m in kept_moves]
    if dropped_moves:
        (spec.output / "dropped").mkdir(exist_ok=True)
    # Recorded before the first move: a --restart after a finalise killed halfway deletes these,
    # and no other file of these names (recorded_shards).
    write_json_atomic(spec.output / WORK / PUBLISHED,
                      [m.dst.relative_to(spec.output).as_posix() for m in kept_moves + dropped_moves])
    for m in kept_moves + dropped_moves:
        if m.src.exists():  # idempotent: a finalise killed halfway has moved some already
            os.replace(m.src, m.dst)

    stats = stats_with_drops(merge_stats(spec, results), unique)
    kept = sum(s["documents"] for s in shards)
    # Fewer documents in the parts than the stages kept: `pipeline remove` took them out since (it
    # records the shards it rewrites in the task markers). Counted as it counts them, so that a
    # stats.json written again from the records still adds up (it said 72 kept of a 71-row shard).
    if kept < stats["documents_kept"]:
        stats["documents_kept"], stats["removed"] = kept, stats["documents_kept"] - kept
    manifest = {
        "source": spec.source.name,
        "documents": kept,
        "bytes": sum(s["bytes"] for s in shards),
        "shards": shards,
        "schema": [{"name": f.name, "type": str(f.type)} for f in spec.schema()],
    }
    if dropped_moves:
        manifest["dropped_shards"] = [f"dropped/{m.dst.name}" for m in dropped_moves]
    write_json_atomic(spec.output / "manifest.json", manifest)
    write_json_atomic(spec.output / "stats.json", stats)
    timings = _timings(spec, results, seconds)
    # Workers lost on the way: not in stats.json, which must not depend on them.
    timings["workers_lost"] = [{"reason": f.reason, "how": f.how} for f in failures]
    write_json_atomic(spec.output / "timings.json", timings)
    # The sha256 of what the run published: a rerun finds a manifest or stats edited since.
    write_json_atomic(spec.work / COMPLETE, {"documents_kept": kept, "shards": len(shards),
                                             "written": published_sha256(spec.output)})
    # Intermediate parts and artefacts are no longer needed. The plan and markers stay (the
    # record a rerun checks), and so does `artefactN.done`: it says the merge happened.
    for entry in spec.work.iterdir():
        if entry.is_dir() and entry.name.startswith("pass"):
            for task_dir in entry.iterdir():
                if task_dir.is_dir():
                    shutil.rmtree(task_dir)
        elif entry.is_dir():
            shutil.rmtree(entry)
    return RunReport(spec.output, kept, len(shards), stats, seconds)


def merge_stats(spec: RunSpec, results: Iterable[TaskResult]) -> dict:
    merged: OrderedDict[str, StageStats] = OrderedDict((n, StageStats(n)) for n in ["read"] + [s.name for s in spec.stages])
    files_failed: list[dict] = []
    documents_failed: list[dict] = []
    for result in sorted(results, key=lambda r: (r.pass_index, r.task)):
        for st in result.stats:
            merged[st.name].add(st)
        files_failed.extend(result.files_failed)
        documents_failed.extend(result.documents_failed)
    stages = [s.to_json() for s in merged.values()]
    for entry, stage in zip(stages[1:], spec.stages):
        if stage.merged_reasons:  # `pipeline stats` and the run's report do not warn of these
            entry["merged_reasons"] = sorted(stage.merged_reasons)
    kept = stages[-1]["out"]
    return {
        "source": spec.source.name,
        "files": {"total": len(spec.inputs), "failed": sorted(files_failed, key=lambda f: f["path"])},
        "documents_read": stages[0]["in"],
        "documents_kept": kept,
        "stages": stages,
        # Documents that killed or stalled a worker twice, or that a stage raised on, with where they
        # are (also counted as drops).
        "documents_failed": documents_failed,
    }


def _timings(spec: RunSpec, results: list[TaskResult], seconds: float) -> dict:
    per_stage: dict[str, float] = {}
    for r in results:
        for st in r.stats:
            per_stage[st.name] = per_stage.get(st.name, 0.0) + st.seconds
    merges = []
    for pass_index in range(len(spec.passes()) - 1):
        done = spec.artefact(pass_index).with_name(spec.artefact(pass_index).name + ".done")
        try:
            merges.append(read_json(done))
        except (OSError, ValueError):  # an empty marker of an earlier herd: no measurement
            continue
    return {"wall_seconds": round(seconds, 3), "stage_cpu_seconds": {k: round(v, 3) for k, v in per_stage.items()},
            # The local executor's workers are this process's children: the largest one's peak.
            "worker_peak_rss_bytes": children_peak_rss_bytes(), "merges": merges,
            # The tasks' own CPU (every pass, from their stages' set-up on): the part of a run's
            # cost that grows with its input, without the interpreter, imports and models.
            "task_cpu_seconds": round(sum(r.cpu_seconds for r in results), 3),
            # The same by pass (pass i runs the stages of RunSpec.passes()[i]): where a run's
            # CPU goes between its passes through the corpus.
            "task_cpu_seconds_by_pass": [round(sum(r.cpu_seconds for r in results if r.pass_index == p), 3)
                                         for p in range(len(spec.passes()))]}


def _read_stats(spec: RunSpec) -> dict:
    path = spec.output / "stats.json"
    return json.loads(path.read_text()) if path.exists() else {}
