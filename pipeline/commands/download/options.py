"""Options every downloader shares, and the Fetcher they configure."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated

from pydantic import Field

from pipeline.commands.download.fetch import Fetcher, Retry
from pipeline.common.cli import path_arg
from pipeline.common.config import check_flags
from pipeline.common.files import check_output_folder

# Retries wait 1, 2, 4, ... seconds: the twelfth waits over half an hour, the run's retries an hour
# and more in all. Many more never ended (10^20 retries), or ended in an OverflowError from sleep().
MAX_RETRIES = 12
RETRIES = {"retries": Annotated[int, Field(ge=0, le=MAX_RETRIES)]}


def add_common(parser: argparse.ArgumentParser, out: str, base_url: str | None) -> None:
    parser.add_argument("--out", type=path_arg, default=out, help="destination folder (default %(default)s)")
    if base_url is not None:
        parser.add_argument("--base-url", default=base_url,
                            help="mirror or test server to fetch from (default %(default)s)")
    parser.add_argument("--retries", type=int, default=5, help="retries per request, with exponential backoff "
                        f"from 1 s (default %(default)s, at most {MAX_RETRIES})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def fetcher(args: argparse.Namespace, headers: dict[str, str] | None = None) -> Fetcher:
    """The Fetcher of the flags, once they are found usable: --out a folder or none yet."""
    check_flags(args, RETRIES)  # before anything is fetched, for the downloaders that check nothing else first
    check_output_folder(Path(args.out))  # before the first request, not at the first file written
    return Fetcher(Retry(args.retries), headers=dict(headers or {}),
                   show_progress=False if args.no_progress else None)


def say(args: argparse.Namespace, line: str) -> None:
    """A progress line, silenced with --no-progress."""
    if not args.no_progress:
        print(line, flush=True)
