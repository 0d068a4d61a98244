"""What a corpus's manifest.json lists, checked before anything it names is opened.

`pipeline run` (pipeline/engine/run_driver.py) writes every shard's entry with its file, documents,
bytes and sha256, as every herd has since the first, and `pipeline remove` rewrites the entries it
changes with all four; `--keep-dropped` adds `dropped_shards`, the names `dropped/shard-NNNNN.arrow`
and nothing more. A manifest that says otherwise was damaged or edited: it is one line naming it,
never a read or a write outside the corpus folder, and never a shard taken on trust because its
entry left out the sha256 that would have found it changed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pipeline.common.errors import UserError
from pipeline.common.files import check_regular_file

DROPPED = "dropped"  # the folder of a --keep-dropped run's dropped shards, beside its kept ones
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
COUNTS = ("documents", "bytes")


def read_manifest(path: Path) -> dict:
    """manifest.json as a JSON object; anything else is a damaged manifest, in one line (a FIFO or
    a device there too, unopened: reading one would block or never end)."""
    check_regular_file(path, "a corpus manifest")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{path}: damaged corpus manifest ({type(e).__name__})") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{path}: damaged corpus manifest (no list of shards)")
    return manifest


def manifest_files(path: Path) -> list[str]:
    """The shard file names a manifest.json lists (see `manifest_shards`)."""
    return [entry["file"] for entry in manifest_shards(path)]


def checked_manifest(path: Path) -> dict:
    """manifest.json read once, its shard entries and dropped shards checked (`manifest_shards`,
    `manifest_dropped_shards`): for the commands that need both and the totals."""
    manifest = read_manifest(path)
    _checked_shards(manifest, path)
    _checked_dropped_shards(manifest, path)
    return manifest


def manifest_shards(path: Path) -> list[dict]:
    """The shard entries a manifest.json lists, each naming a plain file inside its folder, once,
    with its documents, bytes and sha256: a damaged manifest, or one naming `/etc/hostname` or
    `../x`, is one line, never a read outside."""
    return _checked_shards(read_manifest(path), path)


def _checked_shards(manifest: dict, path: Path) -> list[dict]:
    shards = manifest.get("shards")
    if not isinstance(shards, list) or not all(isinstance(s, dict) for s in shards):
        raise UserError(f"{path}: damaged corpus manifest (no list of shards)")
    seen: set[str] = set()
    for entry in shards:
        problem = _entry_problem(entry, seen)
        if problem:
            raise UserError(f"{path}: damaged corpus manifest ({problem})")
        seen.add(entry["file"])
    return shards


def is_count(value: object) -> bool:
    """A non-negative int, and no bool (an int to isinstance)."""
    return type(value) is int and value >= 0


def _is_file_name(name: object) -> bool:
    """Whether `name` is a plain file name: no folder, no `..`, nothing absolute."""
    return isinstance(name, str) and bool(name) and Path(name).name == name and name not in (".", "..")


def _entry_problem(entry: dict, seen: set[str]) -> str | None:
    """What is wrong with one shard entry (`seen`: the files of the entries before it), or None."""
    name = entry.get("file")
    if not _is_file_name(name):
        return f"shard file {name!r} is not a file name in its folder"
    if name in seen:  # read twice, its documents would count twice (and reach a tokenizer twice)
        return f"shard file {name!r} is listed twice"
    missing = [key for key in (*COUNTS, "sha256") if key not in entry]
    if missing:
        return f"shard {name!r} has no {' or '.join(missing)}; herd records documents, bytes and sha256 of every shard"
    for key in COUNTS:
        if not is_count(entry[key]):
            return f"shard {name!r}: {key} {entry[key]!r} is not a count"
    if not isinstance(entry["sha256"], str) or not SHA256_HEX.fullmatch(entry["sha256"]):
        return f"shard {name!r}: sha256 {entry['sha256']!r} is not a hex SHA-256"
    return None


def manifest_dropped_shards(path: Path) -> list[str]:
    """The dropped shards a manifest.json lists (`dropped_shards`, absent for a run without
    --keep-dropped): each exactly `dropped/<file name>`, once. Anything else is one line: these
    names are read by `pipeline diff` and rewritten by `pipeline remove`, and `../../x.arrow` would
    be a file of someone else's."""
    return _checked_dropped_shards(read_manifest(path), path)


def _checked_dropped_shards(manifest: dict, path: Path) -> list[str]:
    names = manifest.get("dropped_shards", [])
    if not isinstance(names, list):
        raise UserError(f"{path}: damaged corpus manifest (dropped_shards {names!r} is not a list)")
    seen: set[str] = set()
    for name in names:
        folder, _, file = name.partition("/") if isinstance(name, str) else ("", "", "")
        if folder != DROPPED or not _is_file_name(file):
            raise UserError(f"{path}: damaged corpus manifest (dropped shard {name!r} is not {DROPPED}/<file name>)")
        if name in seen:
            raise UserError(f"{path}: damaged corpus manifest (dropped shard {name!r} is listed twice)")
        seen.add(name)
    return names
