"""Options every downloader shares, and the Fetcher they configure."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands.download.fetch import Fetcher, Retry
from pipeline.common.cli import path_arg
from pipeline.common.errors import UserError
from pipeline.common.files import check_output_folder


def add_common(parser: argparse.ArgumentParser, out: str, base_url: str | None) -> None:
    parser.add_argument("--out", type=path_arg, default=out, help="destination folder (default %(default)s)")
    if base_url is not None:
        parser.add_argument("--base-url", default=base_url,
                            help="mirror or test server to fetch from (default %(default)s)")
    parser.add_argument("--retries", type=int, default=5, help="retries per request, with exponential backoff "
                        "from 1 s (default %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def fetcher(args: argparse.Namespace, headers: dict[str, str] | None = None) -> Fetcher:
    """The Fetcher of the flags, once they are found usable: --out a folder or none yet."""
    if args.retries < 0:
        raise UserError("--retries must be at least 0")
    check_output_folder(Path(args.out))  # before the first request, not at the first file written
    return Fetcher(Retry(args.retries), headers=dict(headers or {}),
                   show_progress=False if args.no_progress else None)


def say(args: argparse.Namespace, line: str) -> None:
    """A progress line, silenced with --no-progress."""
    if not args.no_progress:
        print(line, flush=True)
