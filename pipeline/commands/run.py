"""`pipeline run`: from arguments to a planned run on an executor, for one source or all."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from pipeline.commands.remote_output import is_remote, publish, staging_root
from pipeline.commands.remove import finish_removal, removal_summary
from pipeline.commands.stats import drop_warnings, format_stats
from pipeline.common.cli import add_renamed, path_arg
from pipeline.common.config import Positive, check_flags, override, read_toml, validate
from pipeline.common.errors import UserError
from pipeline.common.warn import warn
from pipeline.corpus.mixture import LLAMA1
from pipeline.engine.local_executor import LocalExecutor
from pipeline.engine.registry import source_class, source_names
from pipeline.engine.run_driver import RunReport, corpus_run_folder, plan_run
from pipeline.engine.run_folder import RunFolder
from pipeline.engine.run_record import dropped_sha256
from pipeline.engine.runner import RunSpec
from pipeline.engine.shards import skip_pandas_probe
from pipeline.engine.source import Source, filesystem
from pipeline.engine.supervisor import DEFAULT_DOCUMENT_BUDGET_S, check_budget

if TYPE_CHECKING:
    from pipeline.engine.ray_executor import RayExecutor  # imports ray: only when --executor ray


def build_source(name: str, config_file: str | None) -> Source:
    cls = source_class(name)
    config = cls.config_class()
    if config_file:
        # The file's shape, a table per source; each table is then its source's config schema.
        table = validate(dict[str, dict[str, Any]], read_toml(config_file), config_file, name=lambda key: f"[{key}]")
        unknown = set(table) - set(source_names())
        if unknown:
            raise UserError(f"{config_file}: unknown source table(s) {sorted(unknown)}")
        config = override(config, table.get(name, {}), f"{config_file} [{name}]")
    return cls(config)


@dataclass(frozen=True)
class RunOptions:
    """How `pipeline run` runs a source: its flags, checked when built. The field order is
    `run_source`'s positional order: new fields go last."""

    workers: int = 1
    tasks: int | None = None  # None: one task per worker (fixed by the plan at the first run)
    executor: str = "local"  # or "ray"
    address: str | None = None  # of the Ray cluster (None: start a local one)
    keep_dropped: bool = False
    restart: bool = False
    shard_mb: int = 256
    show_progress: bool | None = None  # None: only on a terminal
    document_budget_s: float = DEFAULT_DOCUMENT_BUDGET_S

    def __post_init__(self) -> None:
        if self.workers < 1 or (self.tasks is not None and self.tasks < 1) or self.shard_mb < 1:
            raise UserError("--workers, --tasks and --shard-mb must be at least 1")
        check_budget(self.document_budget_s)


def run_source(source: Source, input_root: str, output_root: str, *options: Any, **keywords: Any) -> RunReport:
    """Plan and execute one source's run; the library entry point behind `pipeline run`.
    The options are the fields of `RunOptions`, by name or in its order (workers, tasks, ...)."""
    return run_source_with(source, input_root, output_root, RunOptions(*options, **keywords))


def run_source_with(source: Source, input_root: str, output_root: str, options: RunOptions) -> RunReport:
    # A remote corpus root (s3://, gs://) is staged locally and published when the run is complete.
    remote = output_root if is_remote(output_root) else None
    output = (staging_root(output_root) if remote else Path(output_root.removeprefix("file://"))) / source.name
    folder = corpus_run_folder(output)
    # The run folder may not hold the inputs nor sit among them, on disk or in one bucket.
    if not is_remote(input_root):
        folder.refuse_overlap(Path(input_root.removeprefix("file://")), f"the input {input_root}",
                              "pick a --corpus outside the raw inputs")
    elif remote and _urls_overlap(input_root, f"{remote.rstrip('/')}/{source.name}"):
        raise UserError(f"{remote.rstrip('/')}/{source.name}: the run folder overlaps the input {input_root}; "
                        "pick a --corpus outside the raw inputs")
    with folder.lock():
        return _run_locked(source, input_root, folder, options, remote)


def _urls_overlap(a: str, b: str) -> bool:
    """Whether two URLs of one store name one folder or one holds the other (s3://b/x, s3://b/x/y)."""
    def parts(url: str) -> tuple[str, list[str]]:
        protocol, rest = url.split("://", 1)
        return protocol.lower(), [p for p in rest.split("/") if p not in ("", ".")]
    (protocol_a, a_parts), (protocol_b, b_parts) = parts(a), parts(b)
    shorter = min(len(a_parts), len(b_parts))
    return protocol_a == protocol_b and a_parts[:shorter] == b_parts[:shorter]


def _run_locked(source: Source, input_root: str, folder: RunFolder, options: RunOptions,
                remote: str | None) -> RunReport:
    # A `pipeline remove` killed midway is finished first: the shards it renamed differ from what
    # the run recorded, and a rerun judging them would run their tasks again and bring the
    # removed documents back. --restart deletes its journal with the rest of the run.
    finished = None if options.restart else finish_removal(folder.path)
    for line in removal_summary(source.name, folder.path, finished, finished=True) if finished else []:
        print(line)
    inputs = source.list_inputs(input_root)
    if not inputs:
        raise UserError(f"{input_root}: no input files for {source.name} (expected {', '.join(source.patterns)})")
    # A task reads whole inputs (RunSpec.task_inputs): tasks past the number of inputs would read
    # nothing and still cost a worker, a folder and markers each (--tasks 100000 wrote 100,000 files).
    tasks = min(options.tasks or options.workers, len(inputs))
    spec = RunSpec(
        source=source,
        stages=source.stages(),
        inputs=inputs,
        tasks=tasks,
        output=folder.path,
        keep_dropped=options.keep_dropped,
        shard_bytes=options.shard_mb << 20,
    )
    spec = plan_run(spec, restart=options.restart)
    report = _executor(options).run(spec)
    failed = report.stats.get("files", {}).get("failed", [])
    # Every input failed *and* none gave a document: a truncated file whose first records were
    # read and kept is a warning, not "nothing usable".
    read = report.stats.get("stages", [{}])[0]
    if failed and len(failed) == len(inputs) and not read.get("out"):
        # Not a finished run: what it wrote goes, so that a rerun once the input is fixed reads it again.
        folder.clear()
        first = failed[0]
        raise UserError(f"{first['path']}: {first['problem']} (no input of {source.name} was usable)")
    if remote:
        publish(folder.path, f"{remote.rstrip('/')}/{source.name}", dropped_sha256(spec))
    return report


def _executor(options: RunOptions) -> LocalExecutor | RayExecutor:
    if options.executor != "ray":
        return LocalExecutor(options.workers, show_progress=options.show_progress,
                             document_budget_s=options.document_budget_s)
    try:
        from pipeline.engine.ray_executor import RayExecutor
    except ModuleNotFoundError as e:
        raise UserError(f"the Ray executor is not available ({e.name} is not installed)") from None
    return RayExecutor(address=options.address, show_progress=options.show_progress,
                       document_budget_s=options.document_budget_s)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a source name (commoncrawl, c4, github, wikipedia, books, arxiv, "
                   "stackexchange, jsonl) or 'all' for every source with raw input present (a warning names each "
                   "of the seven with no folder)")
    p.add_argument("--input", type=path_arg, help="raw input folder, file or URL (default data/raw/<source>; "
                   "with 'all', the root holding one folder per source, default data/raw)")
    corpus = p.add_argument("--corpus", type=path_arg, default="data/corpus", metavar="DIR",
                            help="corpus root; shards land in DIR/<source>/ (default %(default)s)")
    add_renamed(p, corpus, "--output")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes (default: the number of cores, %(default)s)")
    p.add_argument("--tasks", type=int, help="number of tasks the inputs are split into; fixed at the first "
                   "run (default: the number of workers; at most one per input file or range, as a task reads whole inputs)")
    p.add_argument("--executor", choices=["local", "ray"], default="local", help="where tasks run (default local)")
    p.add_argument("--address", help="Ray cluster address for --executor ray (default: start a local one)")
    p.add_argument("--config", type=path_arg,
                   help="TOML file with a [<source>] table of settings overriding the defaults")
    p.add_argument("--keep-dropped", action="store_true",
                   help="also write dropped documents with their stage and reason to DIR/<source>/dropped/")
    p.add_argument("--restart", action="store_true", help="discard an earlier or unfinished run and start over")
    p.add_argument("--shard-mb", type=int, default=256, help="roll shards over at this many MB (default 256)")
    p.add_argument("--document-timeout", type=float, default=DEFAULT_DOCUMENT_BUDGET_S, metavar="SECONDS",
                   help="a worker that makes no progress on a chunk of documents for this long is killed; a "
                   "document that stalls or kills a worker twice is dropped with reason timeout / worker_crash "
                   "(default %(default)g)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


# The numeric flags' bounds, checked once before any source runs (pipeline/common/config.py
# check_flags); a shard past 2^40 MB would be past what a file holds.
FLAGS = {"workers": Positive, "tasks": Positive, "shard_mb": Annotated[int, Field(ge=1, le=1 << 40)]}


def run(args: argparse.Namespace) -> None:
    skip_pandas_probe()  # this process is the command's own: nothing in it converts pandas objects
    check_flags(args, FLAGS)
    if args.source == "all":
        raw_root = args.input or "data/raw"
        names = [n for n in LLAMA1.sources() if _exists(f"{raw_root.rstrip('/')}/{n}")]
        if not names:
            raise UserError(f"{raw_root}: no source folders found (run `pipeline sample` for sample data)")
        for name in LLAMA1.sources():
            if name not in names:  # said, not passed over: a corpus short of a paper source is no small thing
                warn(f"warning: {name}: no folder {raw_root.rstrip('/')}/{name}; not run (`pipeline download "
                     f"{name}` fetches its raw inputs)")
        inputs = {n: f"{raw_root.rstrip('/')}/{n}" for n in names}
    else:
        inputs = {args.source: args.input or f"data/raw/{args.source}"}
    failed: list[str] = []
    given_up: list[dict] = []
    for name, input_root in inputs.items():
        try:
            source = build_source(name, args.config)
            # The config is checked with each source: with `all`, every source reports its own
            # errors and the others still run.
            report = run_source_with(source, input_root, args.corpus, _options(args))
        except UserError as e:
            if len(inputs) == 1:
                raise
            # With `all`, one source that cannot run must not stop the others.
            print(f"pipeline: error: {name}: {e}", file=sys.stderr)
            failed.append(name)
            continue
        _print_report(report)
        given_up.extend(report.stats.get("files", {}).get("failed", []))
    _warn_given_up(given_up)
    if failed:
        raise UserError(f"{len(failed)} of {len(inputs)} sources failed: {', '.join(failed)} (errors above)")


def _options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(
        workers=args.workers,
        tasks=args.tasks,
        executor=args.executor,
        address=args.address,
        keep_dropped=args.keep_dropped,
        restart=args.restart,
        shard_mb=args.shard_mb,
        show_progress=False if args.no_progress else None,
        document_budget_s=args.document_timeout,
    )


def _exists(path: str) -> bool:
    fs, base = filesystem(path)
    try:
        return fs.exists(base)
    except Exception as e:  # noqa: BLE001  (remote stores raise their own kinds: no credentials, ...)
        raise UserError(f"{path}: cannot look it up ({type(e).__name__}: {e})") from None


def _print_report(report: RunReport) -> None:
    stats = report.stats
    timing = f" in {report.seconds:.1f} s" if report.seconds else " (already complete)"
    print(
        f"{stats['source']}: kept {stats['documents_kept']:,} of {stats['documents_read']:,} documents "
        f"in {report.shards} shard(s) -> {report.output}{timing}"
    )
    print(format_stats(stats))
    for warning in drop_warnings(stats):
        print(f"  {warning}")


def _warn_given_up(failed: list[dict]) -> None:
    """Every input given up or cut short, with why, last of all (after every source's report):
    a run that lost a whole site (its reader stalled or died twice) must not end as if nothing
    was lost. The exit status stays 0, as for any input that fails among usable ones (only a
    source with nothing usable is an error); stats.json lists them under files.failed."""
    if not failed:
        return
    noun, pronoun = ("input was", "it") if len(failed) == 1 else ("inputs were", "they")
    warn(f"warning: {len(failed)} {noun} given up or cut short; what {pronoun} did not yield is not in the "
         "corpus (stats.json: files.failed):")
    for failure in failed:
        print(f"  unreadable input: {failure['path']}: {failure['problem']}", file=sys.stderr)
