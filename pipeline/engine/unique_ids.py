"""Repeated ids in a finished run: the first copy in plan order is kept, later copies dropped.

Ids are unique in a source (the corpus contract), but inputs overlap: two dumps of one wiki and
one date, a record given twice in one file or in two. Finalising (pipeline/engine/run_driver.py)
resolves them once every task is done, before anything is published. Of the documents carrying
one id, the one read first in plan order is kept (the input listed first in the plan, then the
earlier row of that input: a task's parts hold its inputs' rows input after input, and each
marker says how many rows came from each, `TaskResult.input_rows`), whatever the number of tasks
or workers. The others are dropped as `duplicate_id`: counted in stats.json, each (id, input
that kept it, input that dropped it) listed there (the first PAIRS_LISTED, with the total), and
one warning line per pair of inputs names both.

Finding them costs 8 bytes per document (`repeated_id_rows`: hashes sorted, only repeats read
again). Only the parts holding a dropped row are rewritten, without it, and their task's marker
gets the part's new row count, size and sha256, so the run's record
(pipeline/engine/run_record.py) and `pipeline verify` check them like any other part. Under
--keep-dropped the dropped rows go to a dropped part of the same task, with their reason.

Resumable: the decision, with every rewritten file's entry, is written down first
(`_work/unique_ids.json`), each rewritten file beside its original as `NAME.unique.tmp`;
`replay` renames them into place and updates the markers, and runs again after a kill (the
rerun's check of the record calls it first). A task redone later (its input changed) takes
every task rewritten here with it (`rewritten_tasks`), so the ids are resolved afresh.
"""

from __future__ import annotations

import bisect
import os
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.common.files import file_sha256, read_json, write_json_atomic
from pipeline.common.warn import warn
from pipeline.engine.run_folder import read_marker
from pipeline.engine.runner import RunSpec, TaskResult
from pipeline.engine.shards import repeated_id_rows

REASON = "duplicate_id"
STAGE = "unique_ids"  # the name the drops are counted under in stats.json
RECORD = "unique_ids.json"  # in _work/
PAIRS_LISTED = 100  # pairs stats.json lists; the total is always there
WARNINGS = 10  # warning lines, one per pair of inputs; the rest are summed up in one more
DROPPED_PART = "dropped-duplicate_id.arrow"  # in the task's folder, under --keep-dropped


def drop_repeated_ids(spec: RunSpec, parts: list[tuple[int, Path, dict]]) -> dict:
    """Resolve the repeated ids among `parts` (task, where the part is now, its marker entry), in
    task order, as the run's shards will be numbered; the record of what was dropped (see
    the module's docstring). Done once: a finalise run again replays the record."""
    record_path = spec.work / RECORD
    if record_path.exists():
        replay(spec)
        return read_json(record_path)
    repeats = repeated_id_rows([path for _, path, _ in parts])
    record: dict = {"total": 0, "pairs": [], "inputs": [], "rewrites": []}
    if repeats:
        record = _decide(spec, parts, repeats)
        _warn(spec, record["inputs"])
    write_json_atomic(record_path, record)
    replay(spec)
    return record


def _decide(spec: RunSpec, parts: list[tuple[int, Path, dict]], repeats: list[tuple[str, int, int]]) -> dict:
    """Which copies go, and each affected part rewritten beside its original."""
    last = len(spec.passes()) - 1
    markers = {t: read_marker(spec.marker(last, t), TaskResult.from_json) for t in range(spec.tasks)}
    first_row = []  # per part: its first row's position in its task's rows
    rows_so_far: Counter[int] = Counter()
    for task, _, info in parts:
        first_row.append(rows_so_far[task])
        rows_so_far[task] += info["documents"]

    def plan_index(task: int, row: int) -> int:
        """The plan position of the input row `row` of `task`'s parts came from."""
        marker = markers[task]
        counts = marker.input_rows if marker is not None else None
        if not counts:  # a marker from before input rows were recorded: its task's first input
            return task
        ends = np.cumsum(counts).tolist()
        return task + bisect.bisect_right(ends, row) * spec.tasks  # RunSpec.task_inputs: input i is task i mod N

    copies: dict[str, list[tuple[int, int, int, int, int]]] = defaultdict(list)
    for doc_id, part, row in repeats:
        task = parts[part][0]
        in_task = first_row[part] + row
        copies[doc_id].append((plan_index(task, in_task), task, in_task, part, row))
    dropped_rows: dict[int, list[int]] = defaultdict(list)  # part -> rows to drop
    pairs, by_inputs = [], Counter()
    example: dict[tuple[str, str], str] = {}
    for doc_id in sorted(copies):
        keeper, *later = sorted(copies[doc_id])
        for plan, _, _, part, row in later:
            dropped_rows[part].append(row)
            kept_in, dropped_in = spec.inputs[keeper[0]], spec.inputs[plan]
            pairs.append({"id": doc_id, "kept_in": kept_in, "dropped_in": dropped_in})
            by_inputs[kept_in, dropped_in] += 1
            example.setdefault((kept_in, dropped_in), doc_id)
    rewrites = []
    dropped_by_task: dict[int, list[pa.RecordBatch]] = defaultdict(list)
    for part in sorted(dropped_rows):
        task, path, info = parts[part]
        tmp = path.with_name(path.name + ".unique.tmp")
        kept_info, removed = _without_rows(path, sorted(dropped_rows[part]), tmp)
        rewrites.append({"task": task, "path": str(path.relative_to(spec.output)), "file": info["file"],
                         "info": dict(info, **kept_info)})
        dropped_by_task[task].extend(removed)
    dropped_parts = []
    if spec.keep_dropped:
        for task, batches in sorted(dropped_by_task.items()):
            path = spec.task_dir(last, task) / DROPPED_PART
            dropped_parts.append({"task": task, "info": _write_dropped(spec, batches, path)})
    return {
        "total": len(pairs),
        "pairs": pairs[:PAIRS_LISTED],
        "inputs": [[kept_in, dropped_in, n, example[kept_in, dropped_in]]
                   for (kept_in, dropped_in), n in sorted(by_inputs.items())],
        "rewrites": rewrites,
        "dropped_parts": dropped_parts,
    }


def _without_rows(path: Path, rows: list[int], out: Path) -> tuple[dict, list[pa.RecordBatch]]:
    """Write `path` without `rows` (sorted) to `out`: (its documents, bytes and sha256; the
    removed rows as record batches)."""
    removed: list[pa.RecordBatch] = []
    kept = 0
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_stream(source)
        with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_stream(sink, reader.schema) as writer:
            start = 0
            for batch in reader:
                end = start + batch.num_rows
                keep = np.ones(batch.num_rows, dtype=bool)
                lo, hi = bisect.bisect_left(rows, start), bisect.bisect_left(rows, end)
                keep[np.asarray(rows[lo:hi], dtype=np.int64) - start] = False
                if keep.any():
                    writer.write_batch(batch if keep.all() else batch.filter(pa.array(keep)))
                if not keep.all():
                    removed.append(batch.filter(pa.array(~keep)))
                kept += int(keep.sum())
                start = end
    return {"documents": kept, "bytes": out.stat().st_size, "sha256": file_sha256(out)}, removed


def _write_dropped(spec: RunSpec, batches: list[pa.RecordBatch], path: Path) -> dict:
    """The dropped copies as a dropped part (--keep-dropped), with their stage and reason."""
    schema = spec.dropped_schema()
    tmp = path.with_name(path.name + ".unique.tmp")
    rows = 0
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for batch in batches:
            n = batch.num_rows
            columns = [batch.column(name) for name in schema.names[:-2]]
            columns += [pa.array([STAGE] * n, pa.string()), pa.array([REASON] * n, pa.string())]
            writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=schema))
            rows += n
    return {"file": path.name, "documents": rows, "bytes": tmp.stat().st_size, "sha256": file_sha256(tmp)}


def replay(spec: RunSpec) -> None:
    """Put the recorded rewrites in place and into the markers; nothing when there is no record,
    or all of it is done already (a finalise killed after it)."""
    record_path = spec.work / RECORD
    if not record_path.exists():
        return
    record = read_json(record_path)
    last = len(spec.passes()) - 1
    changed: dict[int, TaskResult] = {}
    as_read: dict[int, dict] = {}

    def marker_of(task: int) -> TaskResult:
        if task not in changed:
            result = read_marker(spec.marker(last, task), TaskResult.from_json)
            assert result is not None, f"{spec.marker(last, task)}: a task rewritten for unique ids has no marker"
            changed[task], as_read[task] = result, result.to_json()
        return changed[task]

    for rewrite in record["rewrites"]:
        path = spec.output / rewrite["path"]
        tmp = path.with_name(path.name + ".unique.tmp")
        if tmp.exists():
            os.replace(tmp, path)
        marker = marker_of(rewrite["task"])
        marker.parts = [rewrite["info"] if p["file"] == rewrite["file"] else p for p in marker.parts]
    for dropped in record.get("dropped_parts", []):
        path = spec.task_dir(last, dropped["task"]) / dropped["info"]["file"]
        tmp = path.with_name(path.name + ".unique.tmp")
        if tmp.exists():
            os.replace(tmp, path)
        marker = marker_of(dropped["task"])
        if all(p["file"] != dropped["info"]["file"] for p in marker.dropped_parts):
            marker.dropped_parts.append(dropped["info"])
    for task, result in changed.items():
        if result.to_json() != as_read[task]:  # a replay after a finished one writes nothing
            write_json_atomic(spec.marker(last, task), result.to_json())


def rewritten_tasks(spec: RunSpec) -> set[int]:
    """Tasks whose parts the recorded resolution changed."""
    record_path = spec.work / RECORD
    if not record_path.exists():
        return set()
    record = read_json(record_path)
    return {r["task"] for r in record["rewrites"]} | {d["task"] for d in record.get("dropped_parts", [])}


def forget(spec: RunSpec) -> None:
    """Drop the record: the next finalise resolves the ids afresh (after tasks were redone)."""
    (spec.work / RECORD).unlink(missing_ok=True)


def _warn(spec: RunSpec, inputs: list[list]) -> None:
    for kept_in, dropped_in, count, doc_id in inputs[:WARNINGS]:
        where = (f"repeated within {kept_in}" if kept_in == dropped_in
                 else f"of {dropped_in} already read from {kept_in}")
        warn(f"warning: {spec.output}: {count:,} document id(s) {where} (e.g. {doc_id}); the later copies are "
             f"dropped as {REASON}")
    if len(inputs) > WARNINGS:
        rest = sum(count for _, _, count, _ in inputs[WARNINGS:])
        warn(f"warning: {spec.output}: {rest:,} more repeated id(s) across {len(inputs) - WARNINGS} more pair(s) of "
             f"inputs, dropped as {REASON} (stats.json lists them)")


def stats_with_drops(stats: dict, record: dict) -> dict:
    """`stats` (as merged from the markers) with the duplicate_id drops as a last stage."""
    if not record["total"]:
        return stats
    kept = stats["documents_kept"]
    stage = {"name": STAGE, "in": kept, "out": kept - record["total"], "dropped": {REASON: record["total"]}}
    return dict(stats, documents_kept=stage["out"], stages=[*stats["stages"], stage],
                duplicate_ids={"total": record["total"], "listed": record["pairs"]})
