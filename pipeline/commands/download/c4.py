"""`pipeline download c4`: files of the allenai/c4 `en` configuration (English, cleaned:
`en/c4-train.NNNNN-of-01024.json.gz`, about 320 MB each, and 8 validation files) from the
Hugging Face Hub into `data/raw/c4/`, each checked against its LFS sha256 and size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands.download.hub import add_hub_options, download_files

REPO = "allenai/c4"


DESCRIPTION = "Fetch allenai/c4 'en' json.gz files through the Hugging Face Hub."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", choices=["train", "validation"], default="train", help="(default %(default)s)")
    add_hub_options(p, "data/raw/c4")


def run(a: argparse.Namespace) -> list[Path]:
    written = [path for _, path in download_files(a, REPO, "en", f"c4-{a.split}.*.json.gz")]
    print(f"{len(written)} C4 file(s) in {a.out}")
    return written
