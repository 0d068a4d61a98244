"""`pipeline run`: from arguments to a planned run on an executor, for one source or all."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.commands.remote_output import is_remote, publish, staging_root
from pipeline.commands.stats import drop_warnings, format_stats
from pipeline.common.config import override, read_toml
from pipeline.common.errors import UserError
from pipeline.common.files import overlapping
from pipeline.common.lock import folder_lock
from pipeline.engine.local_executor import LocalExecutor
from pipeline.engine.run_driver import RunReport, clear_run, plan_run
from pipeline.engine.runner import RunSpec
from pipeline.engine.source import Source, filesystem
from pipeline.engine.supervisor import DEFAULT_DOCUMENT_BUDGET_S, check_budget
from sources import PAPER_SOURCES, REGISTRY, source_class


def build_source(name: str, config_file: str | None) -> Source:
    cls = source_class(name)
    config = cls.config_class()
    if config_file:
        table = read_toml(config_file)
        unknown = set(table) - set(REGISTRY)
        if unknown:
            raise UserError(f"{config_file}: unknown source table(s) {sorted(unknown)}")
        config = override(config, table.get(name, {}), f"{config_file} [{name}]")
    return cls(config)


def run_source(
    source: Source,
    input_root: str,
    output_root: str,
    workers: int = 1,
    tasks: int | None = None,
    executor: str = "local",
    address: str | None = None,
    keep_dropped: bool = False,
    restart: bool = False,
    shard_mb: int = 256,
    show_progress: bool | None = None,
    document_budget_s: float = DEFAULT_DOCUMENT_BUDGET_S,
) -> RunReport:
    """Plan and execute one source's run; the library entry point behind `pipeline run`."""
    if workers < 1 or (tasks is not None and tasks < 1) or shard_mb < 1:
        raise UserError("--workers, --tasks and --shard-mb must be at least 1")
    check_budget(document_budget_s)
    # A remote corpus root (s3://, gs://) is staged locally and published when the run is complete.
    remote = output_root if is_remote(output_root) else None
    output = (staging_root(output_root) if remote else Path(output_root.removeprefix("file://"))) / source.name
    _refuse_overlap(input_root, output)
    with folder_lock(output):
        return _run_locked(source, input_root, output, workers, tasks, executor, address, keep_dropped, restart,
                           shard_mb, show_progress, document_budget_s, remote)


def _refuse_overlap(input_root: str, output: Path) -> None:
    """The run folder may not hold the inputs nor sit among them: --restart would delete the raw
    data, and the run's own files would become inputs of the next run."""
    if "://" in input_root and not input_root.startswith("file://"):
        return
    if overlapping(Path(input_root.removeprefix("file://")), output):
        raise UserError(f"{output}: the run folder overlaps the input {input_root}; "
                        "pick an --output outside the raw inputs")


def _run_locked(
    source: Source,
    input_root: str,
    output: Path,
    workers: int,
    tasks: int | None,
    executor: str,
    address: str | None,
    keep_dropped: bool,
    restart: bool,
    shard_mb: int,
    show_progress: bool | None,
    document_budget_s: float,
    remote: str | None,
) -> RunReport:
    inputs = source.list_inputs(input_root)
    if not inputs:
        raise UserError(f"{input_root}: no input files for {source.name} (expected {', '.join(source.patterns)})")
    spec = RunSpec(
        source=source,
        stages=source.stages(),
        inputs=inputs,
        tasks=tasks or workers,
        output=output,
        keep_dropped=keep_dropped,
        shard_bytes=shard_mb << 20,
    )
    spec = plan_run(spec, restart=restart)
    if executor == "ray":
        try:
            from pipeline.engine.ray_executor import RayExecutor
        except ModuleNotFoundError as e:
            raise UserError(f"the Ray executor is not available ({e.name} is not installed)") from None
        on_ray = RayExecutor(address=address, show_progress=show_progress, document_budget_s=document_budget_s)
        report = on_ray.run(spec)
    else:
        report = LocalExecutor(workers, show_progress=show_progress, document_budget_s=document_budget_s).run(spec)
    failed = report.stats.get("files", {}).get("failed", [])
    # Every input failed *and* none gave a document: a truncated file whose first records were
    # read and kept is a warning, not "nothing usable".
    read = report.stats.get("stages", [{}])[0]
    if failed and len(failed) == len(inputs) and not read.get("out"):
        # Not a finished run: what it wrote goes, so that a rerun once the input is fixed reads it again.
        clear_run(output)
        first = failed[0]
        raise UserError(f"{first['path']}: {first['problem']} (no input of {source.name} was usable)")
    if remote:
        publish(output, f"{remote.rstrip('/')}/{source.name}")
    return report


def run_sources(args: argparse.Namespace) -> None:
    if args.source == "all":
        raw_root = args.input or "data/raw"
        names = [n for n in PAPER_SOURCES if _exists(f"{raw_root.rstrip('/')}/{n}")]
        if not names:
            raise UserError(f"{raw_root}: no source folders found (run `pipeline sample` for sample data)")
        inputs = {n: f"{raw_root.rstrip('/')}/{n}" for n in names}
    else:
        inputs = {args.source: args.input or f"data/raw/{args.source}"}
    failed: list[str] = []
    for name, input_root in inputs.items():
        try:
            source = build_source(name, args.config)
            report = run_source(
                source,
                input_root,
                args.output,
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
        except UserError as e:
            if len(inputs) == 1:
                raise
            # With `all`, one source that cannot run must not stop the others.
            print(f"pipeline: error: {name}: {e}", file=sys.stderr)
            failed.append(name)
            continue
        _print_report(report)
    if failed:
        raise UserError(f"{len(failed)} of {len(inputs)} sources failed: {', '.join(failed)} (errors above)")


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
    for failure in stats["files"]["failed"]:
        print(f"  unreadable input: {failure['path']}: {failure['problem']}", file=sys.stderr)
