"""`tokenizer verify`: check token shards against the sizes and sha256s in their meta.json.

The encode records each .bin's, .idx's and .ids's sha256 (tokenizer/token_shards.py) and seals
the .bin and .idx, so its reruns and the trainer re-hash only what was written since. A folder
copied to another machine loses those seals with its extended attributes (`cp` without `-a`,
`rsync` without `-X`), and readers then check sizes alone. This command reads every file once:
the check to run after a copy, as `pipeline verify` is for a corpus. Folders encoded before the
.bin and .idx sha256s were recorded are checked by size, and the summary says so.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline.common.cli import path_arg, report_checked
from pipeline.common.errors import InputError, UserError
from pipeline.common.files import file_sha256
from tokenizer.token_shards import META, TOKEN_DTYPES, read_meta

DESCRIPTION = """\
Check every token shard (.bin, .idx, .ids) of TOKENS/<source>/ against the sizes its counts give
and the sha256s meta.json records, reading each file once; list files the folder holds that
meta.json does not. Exit status 2 when anything is wrong. Run it after copying token shards.
"""


@dataclass
class Checked:
    folder: Path
    shards: int  # .bin/.idx pairs listed in meta.json
    problems: list[str]  # one line per bad file: "PATH: what is wrong"
    sizes_only: bool  # meta.json holds no sha256 of the .bin and .idx (an older encode)


def _file_problem(path: Path, size: int | None, sha256: object) -> str | None:
    try:
        have = path.stat().st_size
    except FileNotFoundError:
        return f"{path}: listed in meta.json but missing"
    if size is not None and have != size:
        return f"{path}: {have:,} bytes, meta.json's counts give {size:,} (cut, or from another encode)"
    if isinstance(sha256, str) and sha256:
        try:
            if file_sha256(path) != sha256:
                return f"{path}: sha256 differs from meta.json's (damaged, or from another encode)"
        except OSError as e:
            return f"{path}: unreadable ({e.strerror})"
    return None


def verify_tokens(folder: Path) -> Checked:
    """Every file meta.json lists for `folder`, checked; and the token files it does not list."""
    meta = read_meta(folder)
    try:
        item = TOKEN_DTYPES[meta["dtype"]].itemsize
        entries = [entry for split in ("train", "heldout") for entry in meta["splits"][split]["shards"]]
        files = [(entry["bin"], entry["tokens"] * item, entry.get("bin_sha256")) for entry in entries]
        files += [(entry["index"], (entry["documents"] + 1) * 8, entry.get("index_sha256")) for entry in entries]
        files += [(entry["ids"], None, entry.get("ids_sha256")) for entry in entries if "ids" in entry]
    except (KeyError, TypeError) as e:
        raise InputError(str(folder / META), f"missing or wrong field {e} (see the token shard format)") from None
    problems = [p for name, size, sha256 in files if (p := _file_problem(folder / name, size, sha256))]
    listed = {name for name, _, _ in files}
    problems += [f"{path}: not listed in meta.json" for suffix in ("bin", "idx", "ids")
                 for path in sorted(folder.glob(f"*-[0-9][0-9][0-9][0-9][0-9].{suffix}")) if path.name not in listed]
    sizes_only = any("bin_sha256" not in entry or "index_sha256" not in entry for entry in entries)
    return Checked(folder, len(entries), problems, sizes_only)


def verify_command(root: Path, source: str | None) -> None:
    folders = [root / source] if source else sorted(p.parent for p in root.glob(f"*/{META}"))
    if not folders:
        raise UserError(f"{root}: no token shards found (no */{META}; run `tokenizer encode` first)")
    bad = 0
    for folder in folders:
        checked = verify_tokens(folder)
        how = "sizes only (encoded before sha256s were recorded)" if checked.sizes_only else "sizes and sha256s"
        bad += report_checked("tokenizer", folder.name, f"{checked.shards} shard(s) checked against {META}, {how}",
                              checked.problems)
    if bad:
        sys.exit(2)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", help="one source (default: every source found under --tokens)")
    p.add_argument("--tokens", type=path_arg, default="data/tokens", metavar="DIR",
                   help="token shard root (default %(default)s)")


def run(args: argparse.Namespace) -> None:
    verify_command(Path(args.tokens), args.source)
