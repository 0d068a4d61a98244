"""`pipeline download github`: parquet files of codeparrot/github-code from the Hugging Face
Hub into `data/raw/github/`.

Why this dataset: it is the public GitHub dataset on Google BigQuery, the very source the
LLaMA paper names, exported with each file's repository, path and licence (about 115M files,
1 TB, in 1126 parquet files of about 1 GB), and it is not gated. `pipeline run github` then
applies the paper's own licence filter (Apache, BSD, MIT) and quality rules; the
`-clean` variant is not used because its own filters would be applied before ours.

Each file is checked against its LFS sha256 and size, then its `code` column is renamed
`content` (the BigQuery name `pipeline run github` reads) into the final `*.parquet`,
one row group at a time. A row group is held in memory, so one of more than 512 MiB is refused:
by the sizes its footer gives, and, after reading its text columns as dictionaries (a value
repeated a million times is one value, as the file stores it), by the size they decode to.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.commands.download.hub import add_hub_options, download_files
from pipeline.commands.download.untrusted import MiB, plain, refused, size_text
from pipeline.common.errors import UserError
from pipeline.formats.files import PARQUET_ERRORS

REPO = "codeparrot/github-code"
RENAMES = {"code": "content"}
FETCHED = ".fetched"  # the verified download before its column is renamed; never read by `pipeline run`
ROW_GROUP_LIMIT = 512 * MiB  # the Hub's parquet files hold row groups of a few tens of MB


DESCRIPTION = f"Fetch {REPO} parquet files (BigQuery's GitHub dump) through the Hub."


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_hub_options(p, "data/raw/github")


def rename_columns(src: Path, dest: Path, source: str) -> None:
    """`src` (fetched from `source`) with its columns renamed by RENAMES, written as `dest` (via a
    temporary name); a row group of more than ROW_GROUP_LIMIT bytes refuses the file (removed)."""
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        text = [f.name for f in pq.read_schema(src) if _is_text(f.type)]
        reader = pq.ParquetFile(src, read_dictionary=text)
        renamed = pa.schema([f.with_name(RENAMES.get(f.name, f.name)) for f in reader.schema_arrow])
        # Without the Arrow schema stored, readers get the text columns back as plain strings.
        with pq.ParquetWriter(tmp, renamed, store_schema=False) as writer:
            for group in range(reader.num_row_groups):
                stored = reader.metadata.row_group(group)
                _within_limit(sum(stored.column(c).total_uncompressed_size for c in range(stored.num_columns)),
                              group, source)
                table = reader.read_row_group(group)
                _within_limit(sum(_decoded_bytes(column) for column in table.columns), group, source)
                writer.write_table(table.rename_columns(renamed.names))
    except PARQUET_ERRORS as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{src}: not a readable parquet file ({plain(e, 160)})") from None
    except UserError:
        tmp.unlink(missing_ok=True)
        src.unlink()
        raise
    os.replace(tmp, dest)
    src.unlink()


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind) \
        or pa.types.is_large_binary(kind)


def _decoded_bytes(column: pa.ChunkedArray) -> int:
    """The bytes `column` takes once its dictionaries are decoded, counted without decoding them."""
    total = 0
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            lengths = pc.take(pc.binary_length(chunk.dictionary), chunk.indices)
            total += (pc.sum(lengths).as_py() or 0) + chunk.indices.nbytes
        else:
            total += chunk.nbytes
    return total


def _within_limit(size: int, group: int, source: str) -> None:
    if size > ROW_GROUP_LIMIT:
        raise refused(source, f"row group {group} holds {size:,} bytes, more than {size_text(ROW_GROUP_LIMIT)}, "
                      f"the most herd holds in memory; removed")


def run(a: argparse.Namespace) -> list[Path]:
    written = []
    for url, path in download_files(a, REPO, "data", "train-*.parquet", FETCHED):
        if path.name.endswith(FETCHED):
            final = path.with_name(path.name.removesuffix(FETCHED))
            rename_columns(path, final, url)
            path = final
        written.append(path)
    print(f"{len(written)} GitHub parquet file(s) in {a.out}")
    return written
