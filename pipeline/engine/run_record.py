"""A run's record and the check of it against the disk and the inputs, before a rerun goes on.

The record of `pipeline run` in `ROOT/<source>/_work/`: the plan, one marker per task and pass
(what the task read, with each input's fingerprint, and the parts it wrote, with their size
and sha256), and `complete.json` once finalising has moved the parts to `shard-NNNNN.arrow`
and written `manifest.json`, `stats.json` and `timings.json`. A finished run keeps its plan
and markers, so that a rerun can tell whether it is still complete (the contract:
pipeline/engine/run_folder.py, "Completion").

`reconcile` makes the record true before the run goes on:
- a task whose input changed since it read it, or failed then and was touched since, runs
  again (run_folder.reread_reason);
- a task whose part or shard is missing or damaged runs again (run_folder.file_problem:
  size always, sha256 of small files);
- a finished run whose manifest.json or stats.json is missing or does not parse is finalised
  again from the markers, which rewrites both.
A task of a run with a dedup pass cannot run again alone once the dedup of all inputs is merged
(the merged artefact is deleted when the run finishes, and every shard depends on it); nor can
a run finished before markers were kept be redone in part. Those reruns are refused in one
line naming --restart. A finished run is never reported complete while a check fails.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.common.errors import UserError
from pipeline.common.files import file_sha256, read_json, write_json_atomic
from pipeline.common.warn import warn
from pipeline.engine import unique_ids
from pipeline.engine.run_folder import Recorded, file_problem, json_problem, read_marker, reread_reason
from pipeline.engine.runner import RunSpec, TaskResult

# What finalising writes beside the shards, and what a finished run must hold to be complete.
WRITTEN = ("manifest.json", "stats.json", "timings.json")
REQUIRED = ("manifest.json", "stats.json")
COMPLETE = "complete.json"  # in _work/: the run finished (its counts)
REOPEN = "reopen.json"  # in _work/: a finished run being taken apart to redo some of its tasks


@dataclass(frozen=True)
class Move:
    """One part a task wrote (`src`, in its task folder) and the shard it becomes (`dst`)."""

    task: int
    src: Path
    dst: Path
    info: dict  # as the task's marker records it: file, documents, bytes, sha256


def moves(spec: RunSpec) -> tuple[list[Move], list[Move]]:
    """The parts of the tasks with a marker, and the shards (then the dropped shards) they become,
    numbered in task order. The markers, not the folders, say which parts a task wrote: a finalise
    killed halfway has moved some of them already."""
    last = len(spec.passes()) - 1
    results = {(p, t): read_marker(spec.marker(p, t), TaskResult.from_json)
               for p in range(last + 1) for t in range(spec.tasks)}
    kept: list[Move] = []
    for t in range(spec.tasks):
        result = results[last, t]
        for part in result.parts if result else []:
            kept.append(Move(t, spec.task_dir(last, t) / part["file"], spec.output / f"shard-{len(kept):05d}.arrow",
                             part))
    dropped: list[Move] = []
    if spec.keep_dropped:
        for p in range(last + 1):
            for t in range(spec.tasks):
                result = results[p, t]
                for part in result.dropped_parts if result else []:
                    dropped.append(Move(t, spec.task_dir(p, t) / part["file"],
                                        spec.output / "dropped" / f"shard-{len(dropped):05d}.arrow", part))
    return kept, dropped


def dropped_sha256(spec: RunSpec) -> dict[str, str]:
    """Each dropped shard's sha256 as its task's marker records it, by its name in the corpus folder
    (`dropped/shard-NNNNN.arrow`): manifest.json lists dropped shards by name only, and a publish
    checks a staged copy against this before uploading it again (pipeline/commands/remote_output.py)."""
    return {m.dst.relative_to(spec.output).as_posix(): m.info.get("sha256", "") for m in moves(spec)[1]}


def reconcile(spec: RunSpec) -> None:
    """Make the markers and complete.json true (see the module's docstring): drop the markers of
    tasks to run again, reopen a finished run for them, or remove complete.json so that
    finalising rewrites damaged JSON; a UserError naming --restart where that cannot be done."""
    _finish_reopening(spec)
    unique_ids.replay(spec)  # a finalise killed while it rewrote parts without repeated ids
    last = len(spec.passes()) - 1
    finished = (spec.work / COMPLETE).exists()
    markers = [spec.marker(p, t) for p in range(last + 1) for t in range(spec.tasks)]
    if finished:
        _refuse_damaged_markers(markers)
    recorded = all(marker.exists() for marker in markers)
    if finished and not recorded:
        _check_unrecorded(spec)
        return
    changed = _changed_inputs(spec)
    kept, dropped = moves(spec)
    damaged: dict[int, tuple[str, str]] = {}  # task -> (file, what is wrong), its first damaged file
    for move in kept + dropped:
        problem = _part_problem(spec, move, finished)
        if problem and move.task not in damaged:
            damaged[move.task] = problem
    if last > 0:
        merged = spec.artefact(0).with_name(spec.artefact(0).name + ".done").exists()
        if changed and merged:
            path, why = next(iter(changed.values()))
            raise UserError(f"{path}: {why}, but {spec.output} has merged the dedup of all its inputs already; "
                            "pass --restart to read every input again")
        if damaged:
            name, problem = next(iter(damaged.values()))
            raise UserError(f"{spec.output}: {name} is {problem}, and a run with a dedup pass cannot redo one "
                            "task's shards; pass --restart to run it again")
    for path, why in changed.values():
        warn(f"warning: {path}: {why}; reading it again")
    if damaged:
        name, problem = next(iter(damaged.values()))
        more = f" (and files of {len(damaged) - 1} more task(s))" if len(damaged) > 1 else ""
        warn(f"warning: {spec.output}: {name} is {problem}{more}; running its task again")
    redo = set(changed) | set(damaged)
    if redo:
        # Parts rewritten without repeated ids depend on the other tasks' copies: redone too.
        _reopen(spec, redo | unique_ids.rewritten_tasks(spec), kept + dropped)
    elif finished:
        written = read_json(spec.work / COMPLETE).get("written", {})  # none: finished by an older herd
        broken = [(name, problem) for name in REQUIRED
                  if (problem := json_problem(spec.output / name) or _edited(spec.output / name, written.get(name)))]
        if broken:
            name, problem = broken[0]
            warn(f"warning: {spec.output}: {name} is {problem}; writing it again from the task records")
            (spec.work / COMPLETE).unlink()  # finalising again rewrites every JSON file from the markers


def _refuse_damaged_markers(markers: list[Path]) -> None:
    """A finished run's task markers say which shards each task wrote: with one that cannot be
    read, the shards can no longer be told apart (a rerun had blamed an intact shard, or called
    the run complete). One line naming it, pass --restart. (Unfinished, a damaged marker is
    removed and its task runs again: its parts are still its own.)"""
    for marker in markers:
        if not marker.exists():
            continue
        problem = json_problem(marker)
        if problem is None:
            try:
                TaskResult.from_json(read_json(marker))
            except (KeyError, TypeError, ValueError) as e:
                problem = f"damaged (no task record: {type(e).__name__} {e})"
        if problem:
            raise UserError(f"{marker}: {problem}; the finished run's shards cannot be checked without it; pass "
                            "--restart to run it again")


def published_sha256(output: Path) -> dict[str, str]:
    """The sha256 of the JSON files a finished run published (complete.json's "written"): whoever
    rewrites them (a finalise, `pipeline remove`) records them again, and a rerun finds an edit."""
    return {name: file_sha256(output / name) for name in REQUIRED}


def _edited(path: Path, sha256: str | None) -> str | None:
    """What is wrong with a JSON file the run published whose sha256 it recorded, or None."""
    if sha256 and file_sha256(path) != sha256:
        return "not as the run wrote it (edited since)"
    return None


def _changed_inputs(spec: RunSpec) -> dict[int, tuple[str, str]]:
    """Pass-0 tasks with an input to read again: task -> (input, why), its first such input."""
    changed: dict[int, tuple[str, str]] = {}
    for task in range(spec.tasks):
        result = read_marker(spec.marker(0, task), TaskResult.from_json)
        if result is None:
            continue
        failed = {f["path"] for f in result.files_failed}
        for path in spec.task_inputs(task):
            why = reread_reason(path, result.inputs.get(path), path in failed, result.failed_sha256.get(path))
            if why:
                changed[task] = (path, why)
                break
    return changed


def _part_problem(spec: RunSpec, move: Move, finished: bool) -> tuple[str, str] | None:
    """(file, what is wrong) when a part is neither in its task folder nor at its shard, intact.
    The file is named relative to the run folder."""
    # Unfinished, a part is in its task folder, or at its shard if a finalise was killed halfway.
    where = move.dst if finished or (not move.src.exists() and move.dst.exists()) else move.src
    problem = file_problem(Recorded(where, move.info["bytes"], move.info.get("sha256", ""), move.info.get("mtime_ns")))
    return (str(where.relative_to(spec.output)), problem) if problem else None


def _reopen(spec: RunSpec, redo: set[int], parts: list[Move]) -> None:
    """Undo finalising where it began, and drop the markers of the pass-0 tasks in `redo`.

    The other tasks' shards go back into their task folders, so that finalising numbers them
    anew around the redone tasks' new parts (whose count may differ). The steps are written
    down first (`_work/reopen.json`) and replayed by `_finish_reopening` after a kill."""
    steps = {"redo": sorted(redo),
             "moves": [[m.task, str(m.src.relative_to(spec.output)), str(m.dst.relative_to(spec.output))]
                       for m in parts]}
    write_json_atomic(spec.work / REOPEN, steps)
    _finish_reopening(spec)


def _finish_reopening(spec: RunSpec) -> None:
    record = spec.work / REOPEN
    if not record.exists():
        return
    steps = read_json(record)
    for name in WRITTEN:  # a reader must never find a manifest whose shards are being moved
        (spec.output / name).unlink(missing_ok=True)
    (spec.work / COMPLETE).unlink(missing_ok=True)
    unique_ids.forget(spec)  # resolved afresh over the redone tasks' parts
    redo = set(steps["redo"])
    for task in redo:
        spec.marker(0, task).unlink(missing_ok=True)
        shutil.rmtree(spec.task_dir(0, task), ignore_errors=True)
    for task, src_name, dst_name in steps["moves"]:
        src, dst = spec.output / src_name, spec.output / dst_name
        if task in redo:
            dst.unlink(missing_ok=True)
        elif dst.exists() and not src.exists():
            src.parent.mkdir(parents=True, exist_ok=True)
            os.replace(dst, src)
    record.unlink()


def _check_unrecorded(spec: RunSpec) -> None:
    """A run finished before markers were kept: its manifest is its only record. Nothing can be
    redone in part without the markers, so any damage is refused, naming --restart."""
    problems = [(name, problem) for name in REQUIRED if (problem := json_problem(spec.output / name))]
    if not problems:
        for shard in read_json(spec.output / "manifest.json").get("shards", []):
            problem = file_problem(Recorded(spec.output / shard["file"], shard["bytes"], shard.get("sha256", "")))
            if problem:
                problems.append((shard["file"], problem))
                break
    if problems:
        name, problem = problems[0]
        raise UserError(f"{spec.output}: {name} is {problem} (the run's task records predate this check, so it "
                        "cannot be redone in part); pass --restart to run it again")
