"""`pipeline stats`: human-readable views of a run's stats.json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.common.cli import READ_ONLY_HINT, add_corpus_and_source
from pipeline.commands.remote_output import local_corpus_root
from pipeline.commands.remove import pending_removal_problem
from pipeline.common.errors import UserError
from pipeline.common.warn import warn
from pipeline.corpus.folder import finished_runs

DESCRIPTION = "Print what each stage kept and dropped, and why, for finished runs of `pipeline run`."


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_corpus_and_source(p)


RERUN_HINT = READ_ONLY_HINT


def run(args: argparse.Namespace) -> None:
    print_stats(local_corpus_root(args.corpus, "stats"), args.source)


def format_stats(stats: dict) -> str:
    rows = [("stage", "in", "out", "dropped (reason: count)")]
    for st in stats["stages"]:
        reasons = ", ".join(f"{r}: {n:,}" for r, n in sorted(st["dropped"].items(), key=lambda x: -x[1]))
        rows.append((st["name"], f"{st['in']:,}", f"{st['out']:,}", reasons or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"  {r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}" for r in rows]
    return "\n".join(lines)


def drop_warnings(stats: dict) -> list[str]:
    """One line for each stage that dropped more than half of the source's documents for one
    reason: a run that strips every book to nothing must not end quietly with exit 0. Reasons a
    stage lists as `merged_reasons` (an answer's text joined into its question's document) lose
    nothing and are not warned of."""
    total = stats["documents_read"]
    return [
        f"warning: {stats['source']}: {st['name']} dropped {n:,} of {total:,} documents as {reason}"
        for st in stats["stages"]
        for reason, n in sorted(st["dropped"].items())
        if 2 * n > total and reason not in st.get("merged_reasons", ())
    ]


def print_stats(root: Path, source: str | None) -> None:
    for folder in finished_runs(root, source):
        pending = pending_removal_problem(folder)
        if pending:  # its counts may be in stats.json or not yet: said, the rest shown as it is
            warn(f"warning: {pending}")
        path = folder / "stats.json"
        try:
            stats = json.loads(path.read_text())
            summary = f"{stats['source']}: kept {stats['documents_kept']:,} of {stats['documents_read']:,} documents"
            if stats.get("removed"):  # taken out after the run (pipeline remove)
                summary += (f" (the run kept {stats['documents_kept'] + stats['removed']:,}; {stats['removed']:,} "
                            "removed since, see removals.jsonl)")
            table = format_stats(stats)
            warnings = drop_warnings(stats)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise UserError(f"{path}: damaged stats ({type(e).__name__}: {e}); rerun `pipeline run "
                            f"{folder.name} --restart` to rebuild it") from None
        print(summary)
        print(table)
        for warning in warnings:
            print(f"  {warning}")
