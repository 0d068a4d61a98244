"""`pipeline download SOURCE ...`: fetch the real raw inputs of a source into `data/raw/<source>/`,
in the layout `pipeline run SOURCE` reads.

One module per source says where its files are published and how they are checked; every
HTTP download goes through the one resumable, verified, retrying fetcher (fetch.py), and
arXiv's requester-pays S3 objects through the same verification and retry rules (arxiv.py).
Every downloader takes --out, --retries and --no-progress, and a --base-url (or
--endpoint / --endpoint-url) so a mirror or a local test server can stand in.
"""

from __future__ import annotations

from pipeline.common.cli import Command

METAVAR = "SOURCE"
# Each module under pipeline/commands/download/ has add_arguments() and run(), like any command.
COMMANDS = [
    Command("commoncrawl", "pipeline.commands.download.commoncrawl", "WET files of a CommonCrawl snapshot"),
    Command("c4", "pipeline.commands.download.c4", "allenai/c4 'en' files from the Hugging Face Hub"),
    Command("github", "pipeline.commands.download.github", "GitHub code files from the Hugging Face Hub"),
    Command("wikipedia", "pipeline.commands.download.wikipedia", "Wikipedia XML dumps of the paper's languages"),
    Command("books", "pipeline.commands.download.books", "Project Gutenberg books"),
    Command("arxiv", "pipeline.commands.download.arxiv", "arXiv LaTeX source archives (requester-pays S3)"),
    Command("stackexchange", "pipeline.commands.download.stackexchange", "Stack Exchange site dumps"),
]
