"""`pipeline download github`: parquet files of codeparrot/github-code from the Hugging Face
Hub into `data/raw/github/`.

Why this dataset: it is the public GitHub dataset on Google BigQuery, the very source the
LLaMA paper names, exported with each file's repository, path and licence (about 115M files,
1 TB, in 1126 parquet files of about 1 GB), and it is not gated. `pipeline run github` then
applies the paper's own licence filter (Apache, BSD, MIT) and quality rules; the
`-clean` variant is not used because its own filters would be applied before ours.

Each file is checked against its LFS sha256 and size, then its `code` column is renamed
`content` (the BigQuery name `pipeline run github` reads) into the final `*.parquet`,
one row group at a time.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.commands.download.hub import add_hub_options, download_files
from pipeline.common.errors import UserError

REPO = "codeparrot/github-code"
RENAMES = {"code": "content"}
FETCHED = ".fetched"  # the verified download before its column is renamed; never read by `pipeline run`


DESCRIPTION = f"Fetch {REPO} parquet files (BigQuery's GitHub dump) through the Hub."


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_hub_options(p, "data/raw/github")


def rename_columns(src: Path, dest: Path) -> None:
    """`src` with its columns renamed by RENAMES, written as `dest` (via a temporary name)."""
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        reader = pq.ParquetFile(src)
        schema = reader.schema_arrow
        renamed = pa.schema([f.with_name(RENAMES.get(f.name, f.name)) for f in schema])
        with pq.ParquetWriter(tmp, renamed) as writer:
            for group in range(reader.num_row_groups):
                table = reader.read_row_group(group)
                writer.write_table(table.rename_columns(renamed.names))
    except (pa.ArrowInvalid, OSError) as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{src}: not a readable parquet file ({e})") from None
    os.replace(tmp, dest)
    src.unlink()


def run(a: argparse.Namespace) -> list[Path]:
    written = []
    for path in download_files(a, REPO, "data", "train-*.parquet", FETCHED):
        if path.name.endswith(FETCHED):
            final = path.with_name(path.name.removesuffix(FETCHED))
            rename_columns(path, final)
            path = final
        written.append(path)
    print(f"{len(written)} GitHub parquet file(s) in {a.out}")
    return written
