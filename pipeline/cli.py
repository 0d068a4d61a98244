"""`pipeline`: build corpus shards from raw dumps, one source at a time or all of them."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Callable

from pipeline.common.errors import exit_on_errors
from pipeline.engine.supervisor import DEFAULT_DOCUMENT_BUDGET_S

DESCRIPTION = """\
Rebuild the LLaMA-1 pretraining corpus. Typical use on a fresh checkout:

  pipeline sample                 write small raw inputs for every source into data/raw
  pipeline run all                run every source's stages: data/raw/<source> -> data/corpus/<source>
  pipeline stats                  what each stage kept and dropped, and why
  pipeline verify                 check every shard against the sha256 in its manifest.json

Rerunning `pipeline run` resumes: finished tasks are skipped and the output is identical.
"""


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["mix"]:
        # `pipeline mix` parses its own options and --help (pipeline/commands/mix.py): argparse's
        # REMAINDER does not capture options that come first.
        args = argparse.Namespace(rest=argv[1:], handler=_delegate("pipeline.commands.mix", "command"))
    else:
        args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        sys.exit(2)
    with exit_on_errors("pipeline", "rerun the same command to resume"):
        args.handler(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("run", help="run a source's stages over its raw inputs into Arrow shards")
    p.add_argument("source", help="a source name (commoncrawl, c4, github, wikipedia, books, arxiv, "
                   "stackexchange, jsonl) or 'all' for every source with raw input present")
    p.add_argument("--input", help="raw input folder, file or URL (default data/raw/<source>; "
                   "with 'all', the root holding one folder per source, default data/raw)")
    p.add_argument("--output", default="data/corpus", help="corpus root; shards land in OUTPUT/<source>/ "
                   "(default %(default)s)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes (default: the number of cores, %(default)s)")
    p.add_argument("--tasks", type=int, help="number of tasks the inputs are split into; fixed at the first "
                   "run (default: the number of workers)")
    p.add_argument("--executor", choices=["local", "ray"], default="local", help="where tasks run (default local)")
    p.add_argument("--address", help="Ray cluster address for --executor ray (default: start a local one)")
    p.add_argument("--config", help="TOML file with a [<source>] table of settings overriding the defaults")
    p.add_argument("--keep-dropped", action="store_true",
                   help="also write dropped documents with their stage and reason to OUTPUT/<source>/dropped/")
    p.add_argument("--restart", action="store_true", help="discard an earlier or unfinished run and start over")
    p.add_argument("--shard-mb", type=int, default=256, help="roll shards over at this many MB (default 256)")
    p.add_argument("--document-timeout", type=float, default=DEFAULT_DOCUMENT_BUDGET_S, metavar="SECONDS",
                   help="a worker that makes no progress on a chunk of documents for this long is killed; a "
                   "document that stalls or kills a worker twice is dropped with reason timeout / worker_crash "
                   "(default %(default)g)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_run)

    p = sub.add_parser("stats", help="print what each stage kept and dropped for finished runs")
    p.add_argument("source", nargs="?", help="one source (default: every source found under --output)")
    p.add_argument("--output", default="data/corpus", help="corpus root (default %(default)s)")
    p.set_defaults(handler=_cmd_stats)

    p = sub.add_parser("verify", help="check every corpus shard against the sha256 in its manifest.json")
    p.add_argument("source", nargs="?", help="one source (default: every source found under --output)")
    p.add_argument("--output", default="data/corpus", help="corpus root (default %(default)s)")
    p.set_defaults(handler=_cmd_verify)

    p = sub.add_parser("sample", help="write small raw inputs for every source, with good and bad documents")
    p.add_argument("--out", default="data/raw", help="raw root; one folder per source (default %(default)s)")
    p.add_argument("--sources", nargs="*", help="only these sources (default: all)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(handler=_delegate("pipeline.commands.sample", "command"))

    p = sub.add_parser("download", help="fetch real raw inputs over the network")
    p.add_argument("source", help="commoncrawl, wikipedia, ... (see the source's help)")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments of the source's downloader")
    p.set_defaults(handler=_delegate("pipeline.commands.download", "command"))

    p = sub.add_parser("models", help="train the perplexity LM or the Wikipedia-reference classifier")
    p.add_argument("kind", choices=["lm", "classifier"])
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments of the trainer (see `pipeline models KIND -h`)")
    p.set_defaults(handler=_delegate("pipeline.commands.models", "command"))

    p = sub.add_parser("audit", help="count markup left in a corpus and raw prose missing from it")
    p.add_argument("source", choices=["wikipedia", "arxiv", "books"])
    p.add_argument("--corpus", default="data/corpus", help="corpus root or the source's folder (default %(default)s)")
    p.add_argument("--raw", help="the raw input it was built from: also count its prose paragraphs missing")
    p.add_argument("--max-residue", type=float, default=0.0,
                   help="largest share of documents with residue that passes (default %(default)s)")
    p.add_argument("--max-missing", type=float, default=0.0,
                   help="largest share of raw prose paragraphs missing that passes (default %(default)s)")
    p.set_defaults(handler=_delegate("pipeline.commands.audit", "command"))

    p = sub.add_parser("mix", help="show what a mixture draws from each source (the paper's Table 1)")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="--mixture NAME --tokens N ... (see `pipeline mix -h`)")
    p.set_defaults(handler=_delegate("pipeline.commands.mix", "command"))
    return parser


def _delegate(module_name: str, function: str) -> Callable[[argparse.Namespace], None]:
    """Commands whose code lives in its own module, imported only when used."""

    def handler(args: argparse.Namespace) -> None:
        getattr(importlib.import_module(module_name), function)(args)

    return handler


def _cmd_run(args: argparse.Namespace) -> None:
    from pipeline.commands.run import run_sources

    run_sources(args)


def _cmd_stats(args: argparse.Namespace) -> None:
    from pipeline.commands.stats import print_stats

    print_stats(Path(args.output), args.source)


def _cmd_verify(args: argparse.Namespace) -> None:
    from pipeline.commands.verify import verify_command

    verify_command(Path(args.output), args.source)
