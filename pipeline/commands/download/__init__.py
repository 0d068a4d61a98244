"""`pipeline download SOURCE ...`: fetch the real raw inputs of a source into `data/raw/<source>/`,
in the layout `pipeline run SOURCE` reads.

One module per source says where its files are published and how they are checked; every
HTTP download goes through the one resumable, verified, retrying fetcher (fetch.py), and
arXiv's requester-pays S3 objects through the same verification and retry rules (arxiv.py).
Every downloader takes --out, --retries and --no-progress, and a --base-url (or
--endpoint / --endpoint-url) so a mirror or a local test server can stand in.
"""

from __future__ import annotations

import argparse
import importlib

from pipeline.common.errors import UserError

# source -> module under pipeline/commands/download/ (each has `download(argv)` and `parser()`)
DOWNLOADERS = {
    "commoncrawl": "commoncrawl",
    "c4": "c4",
    "github": "github",
    "wikipedia": "wikipedia",
    "books": "books",
    "arxiv": "arxiv",
    "stackexchange": "stackexchange",
}


def command(args: argparse.Namespace) -> None:
    module = DOWNLOADERS.get(args.source)
    if module is None:
        raise UserError(f"pipeline download {args.source}: unknown source (known: {', '.join(DOWNLOADERS)})")
    importlib.import_module(f"pipeline.commands.download.{module}").download(args.rest)
