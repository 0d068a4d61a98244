"""`pipeline plan`: what a build will cost, projected from runs on a seeded sample of its inputs.

For each source, whole input files are drawn in a seeded order until `--sample-mb` is reached
and run three times in a temporary folder, on about a third, two thirds and all of the sample
(by bytes), each `pipeline run` in a child process with one worker and one task (`--repeats`
times each, keeping the run with the least CPU). Each cost is
then fitted as `fixed + per_byte x input bytes` through the points by least squares (the fixed
part: interpreter start, model loading, stage set-up; three points instead of two halve the
effect of one noisy run) and evaluated at the whole input:

- core-hours: user + system CPU of the run's process tree (os.wait4 of the child): the tasks'
  own CPU (timings.json `task_cpu_seconds`) per input byte, plus the rest of a run (`cpu_line`);
- peak memory per worker: the worker's peak resident size (timings.json) against the bytes of
  its task (`WorkerMemory`: the collectors' in-memory state, such as line-dedup keys, in step
  with them, the rest ever slower), evaluated at the bytes a task of the real run holds (the
  whole input over --tasks, at least the largest input);
- peak memory of each global merge (line dedup, exact and near dedup, perplexity percentiles),
  which the engine measures in the driver (timings.json `merges`): fitted and projected;
- output bytes (the shards) and temporary bytes (the run folder's peak size beyond the
  output, polled while the run works): fitted and projected;
- wall hours at N cores: the workers' share spread over N cores (never less than the longest
  single input), plus the merges, which run one after the other in the driver;
- download hours: the input's bytes at `--bandwidth`.

A sample holding one file, or the whole input, has no second point: the per-byte rate is the
measured cost over the measured bytes (fixed cost included, so an over-estimate).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import Field

from pipeline.commands.run import build_source
from pipeline.common.cli import path_arg
from pipeline.common.config import Positive, check_flags
from pipeline.common.errors import UserError, signals_deferred
from pipeline.common.files import tree_bytes
from pipeline.common.units import human_bytes
from pipeline.corpus.mixture import LLAMA1
from pipeline.engine.corpus_manifest import manifest_dropped_shards
from pipeline.engine.registry import source_class

HOUR = 3600.0
MEMORY_NOISE = 0.05  # peaks of sample runs this close are one peak (see Line.of_memory)
DEFAULT_BANDWIDTH = "1Gbit"


@dataclass(frozen=True)
class SampleRun:
    input_bytes: int
    cpu_seconds: float
    worker_peak_bytes: int
    merge_peak_bytes: dict[str, int]  # global stage -> the driver's peak during its merge
    merge_cpu_seconds: float
    task_cpu_seconds: float  # the tasks' own CPU (timings.json), 0 from an engine that did not say
    state_bytes: int  # the in-memory collectors' partials (one task: the run's)
    output_bytes: int
    temp_bytes: int


def least_squares(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """(intercept, slope) of the least-squares line through the points; None when all share one x."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    if len(set(xs)) < 2:
        return None
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x in xs)
    return mean_y - slope * mean_x, slope


@dataclass(frozen=True)
class Line:
    """cost = fixed + per_byte x bytes, through one or two measured points."""

    fixed: float
    per_byte: float

    @staticmethod
    def through(points: list[tuple[int, float]]) -> Line:
        """The least-squares line through the points; a falling or single-point fit (noise, or
        one sample run) is the proportional line through the largest point instead."""
        fit = least_squares([(float(x), float(y)) for x, y in points])
        if fit is not None and fit[1] >= 0:
            return Line(max(0.0, fit[0]), fit[1])
        x1, y1 = max(points)
        return Line(0.0, y1 / x1 if x1 else 0.0)  # proportional: the fixed cost counted per byte

    @staticmethod
    def of_memory(points: list[tuple[int, float]]) -> Line:
        """A peak's line: flat at the largest peak when the peaks of the sample runs lie within
        MEMORY_NOISE of each other (an interpreter's baseline moves that much from run to run,
        and over a few MB of sample a slope of noise would project gigabytes), else `through`."""
        peaks = [float(y) for _, y in points]
        if max(peaks) <= 0 or (max(peaks) - min(peaks)) / max(peaks) <= MEMORY_NOISE:
            return Line(max(peaks, default=0.0), 0.0)
        return Line.through(points)

    def at(self, x: float) -> float:
        return self.fixed + self.per_byte * x


@dataclass(frozen=True)
class WorkerMemory:
    """A worker's peak against the bytes x of its task: base + growth x sqrt(x) + state x x.

    Two parts grow differently. What collectors hold until the task's last document (line-dedup
    keys, first ids, near-dedup signatures: about the size of the partial they write, which the
    engine records) grows in step with the task: `state` bytes per input byte, from the largest
    sample run. The rest (buffers, caches, the allocator keeping what it freed for reuse) grows
    ever slower: measured on every source at 1x, 4x and 16x of bench/scale.py, a line through
    three small sample runs overstates it 1.4 to 7 times at 16x, a square root fits it within
    a tenth or two. `growth` is the least-squares slope of the rest against sqrt(x), never negative.
    """

    base: float
    growth: float
    state: float

    @staticmethod
    def through(runs: list[tuple[int, float, float]]) -> WorkerMemory:
        """From (task bytes, worker peak, in-memory state bytes) of each sample run."""
        largest = max(runs)
        state = largest[2] / largest[0] if largest[0] else 0.0
        points = [(x ** 0.5, peak - state * x) for x, peak, _ in runs]
        fit = least_squares(points)
        if fit is not None and fit[1] > 0:
            return WorkerMemory(fit[0], fit[1], state)
        return WorkerMemory(max(y for _, y in points), 0.0, state)

    def at(self, x: float) -> float:
        return self.base + self.growth * x ** 0.5 + self.state * x


@dataclass
class SourcePlan:
    source: str
    input_files: int
    input_bytes: int
    sample_bytes: int
    core_hours: float
    wall_hours: float
    longest_task_hours: float
    peak_worker_bytes: int
    peak_merge_bytes: int
    merges: dict[str, int] = field(default_factory=dict)
    output_bytes: int = 0
    temp_bytes: int = 0
    download_hours: float = 0.0
    samples: list[dict] = field(default_factory=list)  # the sample runs the projection is fitted through

    def to_json(self) -> dict:
        return dict(self.__dict__)


def parse_bandwidth(text: str) -> float:
    """'1Gbit', '100 Mbit/s', '500MB/s', '2e9' (bits per second) -> bits per second."""
    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([kKmMgGtT]?)(bit|b|B|Byte)?(?:/s|ps)?\s*", text)
    scale = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
    try:
        if not match:
            raise ValueError
        value = float(match.group(1)) * scale[match.group(2).lower()] * (8 if match.group(3) in ("B", "Byte") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a bandwidth: {text!r} (examples: 1Gbit, 100Mbit, 500MB/s)") from None
    if not 0 < value < 1e15:
        raise argparse.ArgumentTypeError(f"the bandwidth must be positive, got {text!r}")
    return value


def draw_sample(files: list[tuple[str, int]], limit_bytes: int, seed: int) -> list[tuple[str, int]]:
    """Whole files in a seeded order until `limit_bytes` (at least one file), each kind of input
    (`input_kind`) up to its share of the input's bytes: a Stack Exchange sample drawn at random
    can be mostly 7z archives (each byte of which is several of XML to read) or mostly plain
    folders, and cost another price per byte than the whole input."""
    order = sorted(files)
    random.Random(seed).shuffle(order)
    kinds = {path: input_kind(path) for path, _ in files}  # one look at the disk per input
    shares: Counter[str] = Counter()
    for path, size in files:
        shares[kinds[path]] += size
    whole = sum(shares.values()) or 1
    taken: Counter[str] = Counter()
    chosen, total = [], 0
    for path, size in order:
        kind = kinds[path]
        if chosen and (total + size > limit_bytes or taken[kind] + size > limit_bytes * shares[kind] / whole):
            continue
        chosen.append((path, size))
        total += size
        taken[kind] += size
    return chosen


def input_kind(path: str) -> str:
    """`folder`, or a file's last suffix (`.7z`, `.gz`, `.bz2`, `.xml`)."""
    return "folder" if os.path.isdir(path) else os.path.splitext(path)[1].lower()


def input_files(name: str, root: str) -> list[tuple[str, int]]:
    source = source_class(name)()
    paths = source.list_inputs(root)
    if not paths:
        raise UserError(f"{root}: no {name} inputs found")
    found = []
    for path in paths:
        if "://" in path:
            raise UserError(f"{path}: `pipeline plan` samples local inputs only; copy a few files here first")
        found.append((path, tree_bytes(Path(path))))  # a file, or a folder's files (a GitHub repository)
    return found


def link_or_copy(source: str, target: str | Path) -> None:
    """A hard link: no bytes copied; a copy across filesystems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def run_sample(name: str, root: str, files: list[tuple[str, int]], work: Path, config: str | None) -> SampleRun:
    """`pipeline run` over `files` (linked into a fresh input folder) in a child process."""
    raw, corpus = work / "raw", work / "corpus"
    for path, _ in files:
        target = raw / os.path.relpath(path, root) if os.path.isdir(root) else raw / os.path.basename(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.path.isdir(path):  # an input that is a folder (a GitHub repository)
            shutil.copytree(path, target, copy_function=link_or_copy, symlinks=True)
        else:
            link_or_copy(path, target)
    command = [sys.executable, "-c", "import sys; from pipeline.cli import main; main(sys.argv[1:])", "run", name, "--input", str(raw), "--corpus", str(corpus),
               "--workers", "1", "--no-progress"] + (["--config", config] if config else [])
    peak_disk = [0]
    stop = threading.Event()

    def poll_disk() -> None:
        while not stop.wait(0.2):
            peak_disk[0] = max(peak_disk[0], tree_bytes(corpus))

    with open(work / "run.log", "w+") as log:
        child = None
        poller = threading.Thread(target=poll_disk, daemon=True)
        try:
            with signals_deferred():  # a SIGTERM while it starts is raised here, once `child` names it
                child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            poller.start()
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:
            # Stopped meanwhile (SIGTERM, Ctrl-C): the sample run is ended and waited for, or it
            # went on writing into the temporary folder while it was removed (ENOTEMPTY, the
            # folder left behind) and outlived the plan.
            if child is not None:
                end_child(child)
            raise
        finally:
            stop.set()
            if poller.ident is not None:  # started
                poller.join()
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            log.seek(0)
            last = [line for line in log.read().splitlines() if line.strip()][-1:] or ["no output"]
            raise UserError(f"{name}: the sample run failed (exit {child.returncode}): {last[0]}")
    output = corpus / name
    timings = json.loads((output / "timings.json").read_text())
    manifest = json.loads((output / "manifest.json").read_text())
    merges = timings.get("merges", [])
    final = tree_bytes(corpus)
    dropped_bytes = sum(os.path.getsize(output / name) for name in manifest_dropped_shards(output / "manifest.json"))
    return SampleRun(
        input_bytes=sum(size for _, size in files),
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        worker_peak_bytes=int(timings.get("worker_peak_rss_bytes", 0)),
        merge_peak_bytes={m["stage"]: int(m["peak_rss_bytes"]) for m in merges},
        merge_cpu_seconds=sum(float(m["cpu_seconds"]) for m in merges),
        task_cpu_seconds=float(timings.get("task_cpu_seconds", 0.0)),
        state_bytes=sum(int(m.get("largest_partial_bytes", 0)) for m in merges if m.get("state_in_memory", True)),
        output_bytes=int(manifest["bytes"]) + dropped_bytes,
        temp_bytes=max(0, max(peak_disk[0], final) - int(manifest["bytes"])),
    )


def end_child(child: subprocess.Popen) -> None:
    """Stop a sample run: SIGTERM, which its `pipeline run` answers by stopping its workers, and
    SIGKILL after 30 s."""
    child.terminate()
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def cpu_line(runs: list[SampleRun]) -> Line:
    """CPU seconds against input bytes, merges aside. The part that grows with the input is
    what the tasks themselves spent (the engine measures it from their stages' set-up on): a
    least-squares line through the origin, which the largest run weighs most. The rest (the
    interpreter, imports, models, the driver) is the same whatever the input: the median of
    the runs'. Fitting a line through whole runs instead made the slope out of differences of
    a few hundredths of a second between second-long runs, and a sample drawn again could
    project half or twice the cost at 16 times its size."""
    if any(r.task_cpu_seconds <= 0 for r in runs):  # timings without the tasks' CPU
        return Line.through([(r.input_bytes, r.cpu_seconds - r.merge_cpu_seconds) for r in runs])
    per_byte = sum(r.input_bytes * r.task_cpu_seconds for r in runs) / sum(r.input_bytes ** 2 for r in runs)
    fixed = statistics.median(max(0.0, r.cpu_seconds - r.merge_cpu_seconds - r.task_cpu_seconds) for r in runs)
    return Line(fixed, per_byte)


def fit_subsets(sample: list[tuple[str, int]]) -> list[list[tuple[str, int]]]:
    """The prefixes of the sample holding about a third, two thirds and all of its bytes: the
    fit's points (fewer when the sample has fewer files)."""
    total, cuts, acc = sum(size for _, size in sample), [], 0
    for count, (_, size) in enumerate(sample[:-1], 1):
        acc += size
        if len(cuts) < 2 and acc >= (len(cuts) + 1) * total / 3:
            cuts.append(count)
    return [sample[:count] for count in cuts] + [sample]


def plan_source(name: str, root: str, sample_mb: float, cores: int, bandwidth_bps: float, seed: int,
                config: str | None, tasks: int | None = None, repeats: int = 1) -> SourcePlan:
    files = input_files(name, root)
    total = sum(size for _, size in files)
    tasks = tasks or cores  # `pipeline run`'s default: as many tasks as workers
    sample = draw_sample(files, int(sample_mb * 1e6), seed)
    runs = []
    with tempfile.TemporaryDirectory(prefix=f"herd-plan-{name}-") as scratch:
        for i, subset in enumerate(fit_subsets(sample) if len(sample) < len(files) else [sample]):
            print(f"plan: {name}: running {len(subset)} of {len(files)} input(s), "
                  f"{sum(s for _, s in subset) / 1e6:,.1f} MB", file=sys.stderr)
            # A run's CPU only grows with what else the machine does: of repeated runs of one
            # subset, the one with the least CPU is the closest to its cost.
            tries = [run_sample(name, root, subset, Path(scratch) / f"run{i}-{r}", config) for r in range(repeats)]
            runs.append(min(tries, key=lambda run: run.cpu_seconds))

    def project(value: callable) -> float:
        return Line.through([(r.input_bytes, float(value(r))) for r in runs]).at(total)

    cpu = cpu_line(runs)
    merge_seconds = project(lambda r: r.merge_cpu_seconds)
    worker_seconds = cpu.at(total)
    # A task holds input i, i + tasks, ...: about total / tasks bytes, and never less than one input.
    per_task = max(max(size for _, size in files), total / tasks)
    longest = cpu.at(per_task)
    merges = {stage: round(Line.of_memory([(r.input_bytes, r.merge_peak_bytes.get(stage, 0)) for r in runs]).at(total))
              for stage in runs[-1].merge_peak_bytes}
    return SourcePlan(
        source=name, input_files=len(files), input_bytes=total, sample_bytes=runs[-1].input_bytes,
        core_hours=(worker_seconds + merge_seconds) / HOUR,
        wall_hours=(max(worker_seconds / cores, longest) + merge_seconds) / HOUR,
        longest_task_hours=longest / HOUR,
        # Each sample run is one task: its worker's peak as a function of the task's bytes.
        peak_worker_bytes=round(WorkerMemory.through(
            [(r.input_bytes, float(r.worker_peak_bytes), float(r.state_bytes)) for r in runs]).at(per_task)),
        peak_merge_bytes=max(merges.values(), default=0), merges=merges,
        output_bytes=round(project(lambda r: r.output_bytes)), temp_bytes=round(project(lambda r: r.temp_bytes)),
        download_hours=total * 8 / bandwidth_bps / HOUR,
        samples=[dataclasses.asdict(r) for r in runs])


def format_plans(plans: list[SourcePlan], cores: int) -> str:
    header = ["source", "input", "sampled", "core-hours", f"wall h ({cores} cores)", "longest task h",
              "peak worker", "peak merge", "output", "temporary", "download h"]
    rows = [[p.source, f"{human_bytes(p.input_bytes)} ({p.input_files:,} files)", human_bytes(p.sample_bytes),
             f"{p.core_hours:.3g}", f"{p.wall_hours:.3g}", f"{p.longest_task_hours:.3g}",
             human_bytes(p.peak_worker_bytes), human_bytes(p.peak_merge_bytes), human_bytes(p.output_bytes),
             human_bytes(p.temp_bytes), f"{p.download_hours:.3g}"] for p in plans]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header, *rows]]
    for p in plans:
        if p.merges:
            lines.append(f"{p.source}: merges " + ", ".join(f"{s} {human_bytes(b)}" for s, b in p.merges.items()))
    return "\n".join(lines)


# Said when Ctrl-C, SIGTERM or a full disk ends a plan (pipeline/common/cli.py): nothing of it is
# kept to resume from, the CLI's "rerun ... to resume" would be untrue.
RERUN_HINT = ("rerun the same command to plan again (a plan keeps nothing: its sample runs were in a temporary "
              "folder, now removed)")

DESCRIPTION = """\
Project what a build costs before running it: runs the source on a seeded sample of its
input files (whole files, up to --sample-mb) in a temporary folder, three times (a third, two
thirds and all of the sample), fits fixed + per-byte costs, and projects for the whole input: CPU core-hours,
wall hours at --cores, peak memory per worker and of each global merge, output and temporary
bytes, and download hours at --bandwidth. Nothing is written outside the temporary folder.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a source, or `all` for every source with a folder under --input")
    p.add_argument("--input", type=path_arg, metavar="DIR",
                   help="raw inputs (default data/raw/<source>; with `all`, the root "
                   "holding one folder per source, default data/raw)")
    p.add_argument("--sample-mb", type=float, default=64.0, help="input MB to run (default %(default)g)")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores of the wall-time projection "
                   "(default: this machine's, %(default)s)")
    p.add_argument("--bandwidth", type=parse_bandwidth, default=parse_bandwidth(DEFAULT_BANDWIDTH),
                   help=f"download bandwidth, e.g. 1Gbit, 100Mbit, 500MB/s (default {DEFAULT_BANDWIDTH})")
    p.add_argument("--tasks", type=int, help="tasks the run will split its inputs into (default: --cores, as "
                   "`pipeline run` does with one worker a core): a worker's peak grows with its task's bytes")
    p.add_argument("--repeats", type=int, default=1, help="runs of each sample subset; the one with the least "
                   "CPU counts (default %(default)s; more on a busy machine, or for samples of seconds)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample's files (default %(default)s)")
    p.add_argument("--config", type=path_arg, help="TOML file with [<source>] settings, as for `pipeline run`")
    p.add_argument("--json", action="store_true", help="print JSON: one object per source")


# The numeric flags' bounds, checked before any sample runs (pipeline/common/config.py check_flags).
# A sample of a petabyte is the whole of any input (1e308 MB was an OverflowError in its byte count);
# each repeat is a whole run of each sample subset, and 10^20 of them ran for ever.
FLAGS = {
    "sample_mb": Annotated[float, Field(gt=0, le=1e9)],
    "cores": Positive,
    "tasks": Positive,
    "repeats": Annotated[int, Field(ge=1, le=100)],
    "seed": int,
}


def run(args: argparse.Namespace) -> None:
    check_flags(args, FLAGS)
    if args.source == "all":
        root = args.input or "data/raw"
        roots = {n: os.path.join(root, n) for n in LLAMA1.sources() if os.path.isdir(os.path.join(root, n))}
        if not roots:
            raise UserError(f"{root}: no source folders found")
    else:
        roots = {args.source: args.input or f"data/raw/{args.source}"}
    for name in roots:  # a bad --config is its own line now, not a failed sample run's minutes later
        build_source(name, args.config)
    plans = [plan_source(name, root, args.sample_mb, args.cores, args.bandwidth, args.seed, args.config, args.tasks,
                         args.repeats)
             for name, root in roots.items()]
    if args.json:
        print(json.dumps({p.source: p.to_json() for p in plans}, indent=1))
    else:
        print(format_plans(plans, args.cores))
