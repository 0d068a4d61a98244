"""A corpus root in object storage (s3://, gs://, any fsspec URL): the run is staged locally,
where shards can be renamed atomically and tasks resumed, and the finished source folder is
then published to the URL.

The staging folder is `$HERD_STAGING_DIR/<url as a path>` (default `data/staging/...`), so a
rerun of the same command finds its plan and finished tasks there and resumes. Publishing
uploads the shards (and dropped shards), removes the shards an earlier publish listed in its
manifest.json that the new manifest does not name (never an object no publish recorded: one
warning names those), and uploads `manifest.json` last: a reader that finds the manifest finds
every shard it lists. A rerun finding its manifest published already uploads again only the
shards (and dropped shards) that the listing shows missing or of another size. Credentials and endpoints come from the file system's usual
configuration (for S3: AWS_* variables or profiles, AWS_ENDPOINT_URL for another endpoint).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import sys
from pathlib import Path

import fsspec

from pipeline.common.errors import UserError
from pipeline.common.files import write_json_atomic
from pipeline.engine.corpus_manifest import checked_manifest

LAST = "manifest.json"
UPLOADED = "_work/uploaded.json"  # the names a staged run has put into its URL (`uploaded_before`)
ALONGSIDE = ("stats.json", "timings.json")
SHARDS = ("shard-*.arrow", "dropped/shard-*.arrow")  # what publishing replaces, if a publish recorded it


def is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def local_corpus_root(corpus: str, command: str) -> Path:
    """The --corpus of a command that reads finished runs on disk (verify, stats). A remote URL is
    refused in one line: as a Path, s3://b/x is the relative folder s3:/b/x, whose corpus is
    missing. The staged copy is not read instead: it says nothing of what the bucket holds."""
    if is_remote(corpus):
        raise UserError(f"pipeline {command} reads local corpora only; {corpus} is remote")
    return Path(corpus.removeprefix("file://"))


def staging_root(url: str) -> Path:
    """Where a run whose corpus root is `url` is staged: stable across reruns of one URL."""
    protocol, rest = url.split("://", 1)
    safe = re.sub(r"[^A-Za-z0-9._/-]", "_", rest.strip("/"))
    return Path(os.environ.get("HERD_STAGING_DIR") or "data/staging") / protocol / safe


def publish(local: Path, url: str) -> list[str]:
    """Upload the finished source folder `local` (shards, dropped shards, stats) to `url`; the
    names uploaded, none when `url` already holds this manifest and every shard it lists."""
    fs, base = _storage(url)
    try:
        earlier = _read_or_none(fs, f"{base}/{LAST}")
        present = _sizes(fs, base)
    except OSError as e:
        raise UserError(f"{url}: cannot read the storage ({e})") from None
    # Names checked first: a manifest naming ../../x.arrow must not upload a file from outside.
    manifest = checked_manifest(local / LAST)
    names = [entry["file"] for entry in manifest["shards"]] + manifest.get("dropped_shards", [])
    if earlier == (local / LAST).read_bytes():
        # Published already: a rerun of a finished run uploads only what went missing or changed size since.
        damaged = _damaged(local, manifest, present)
        if damaged:
            print(f"warning: {url}: {len(damaged)} published shard(s) missing or not of the size the manifest "
                  f"lists: {', '.join(damaged)}; uploading them again", file=sys.stderr)
        return _upload(fs, url, local, base, damaged)
    names += [n for n in ALONGSIDE if (local / n).exists()]
    # What an earlier publish there wrote: the shards its manifest.json lists and the files beside it.
    recorded = _recorded_shards(earlier)
    ours = recorded | (set(ALONGSIDE) if earlier is not None else set()) | uploaded_before(local)
    strangers = sorted(set(names) & set(present) - ours)
    if strangers:
        raise UserError(f"{url}: holds {', '.join(strangers)}, which no publish of a run there wrote; publishing would "
                        "overwrite it: move it away, or publish to another --corpus (nothing was uploaded)")
    _upload(fs, url, local, base, names)
    try:
        _remove_stale(fs, url, base, present, set(names), recorded)
    except OSError as e:
        raise UserError(f"{url}: cannot remove an earlier run's shard ({e}); rerun the same command to publish "
                        "again") from None
    return names + _upload(fs, url, local, base, [LAST])  # last: a reader finding it finds every shard


def uploaded_before(local: Path) -> set[str]:
    """The names this staged run has put into its URL (UPLOADED), each recorded before its upload
    starts: a publish killed before its manifest.json went up finds them its own to overwrite."""
    try:
        names = json.loads((local / UPLOADED).read_text())
    except (OSError, ValueError):
        return set()
    return {name for name in names if isinstance(name, str)} if isinstance(names, list) else set()


def _upload(fs: fsspec.AbstractFileSystem, url: str, local: Path, base: str, names: list[str]) -> list[str]:
    """Put each of `names` from `local` under `base`; the names put."""
    try:
        record = uploaded_before(local)
        if not set(names) <= record:
            (local / UPLOADED).parent.mkdir(exist_ok=True)
            write_json_atomic(local / UPLOADED, sorted(record | set(names)))
        for name in names:
            fs.put_file(str(local / name), f"{base}/{name}")
    except OSError as e:
        raise UserError(f"{url}: cannot upload the corpus ({e}); rerun the same command to publish again") from None
    return names


def _damaged(local: Path, manifest: dict, present: dict[str, int]) -> list[str]:
    """The shards and dropped shards of `manifest` that the storage lacks or holds at another size
    than written (a shard's manifest entry, a dropped shard's staged copy): its listing tells,
    at no request per shard. A change that keeps the size is for `pipeline verify` to find."""
    sizes = {entry["file"]: entry["bytes"] for entry in manifest["shards"]}
    sizes |= {name: (local / name).stat().st_size for name in manifest.get("dropped_shards", [])}
    return [name for name, size in sizes.items() if present.get(name) != size]


def _storage(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        fs, _, (base,) = fsspec.get_fs_token_paths(url)
    except (ImportError, ValueError) as e:
        raise UserError(f"{url}: cannot open this storage ({e}); install its extra, e.g. "
                        "pip install 'herd[s3]'") from None
    return fs, base.rstrip("/")


def _read_or_none(fs: fsspec.AbstractFileSystem, path: str) -> bytes | None:
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        return None


def _sizes(fs: fsspec.AbstractFileSystem, base: str) -> dict[str, int]:
    """Every object under `base` by its name relative to it, with its size: one listing, asked of
    the storage (a file system's cached listing, in a process that publishes more than once, holds
    the objects as they were)."""
    fs.invalidate_cache(base)
    found = fs.find(base, detail=True)
    return {path[len(base) + 1 :]: info.get("size") for path, info in found.items() if path.startswith(f"{base}/")}


def _recorded_shards(manifest: bytes | None) -> set[str]:
    """The shards and dropped shards an earlier publish listed in its manifest.json: herd's to
    replace. A damaged or missing manifest records nothing."""
    try:
        record = json.loads(manifest) if manifest is not None else {}
    except ValueError:
        return set()
    if not isinstance(record, dict):
        return set()
    shards, dropped = record.get("shards"), record.get("dropped_shards")
    names = {entry.get("file") for entry in shards if isinstance(entry, dict)} if isinstance(shards, list) else set()
    names |= set(dropped) if isinstance(dropped, list) else set()
    return {name for name in names if isinstance(name, str)}


def _is_shard_name(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) and name.count("/") == pattern.count("/") for pattern in SHARDS)


def _remove_stale(fs: fsspec.AbstractFileSystem, url: str, base: str, present: dict[str, int], keep: set[str],
                  recorded: set[str]) -> None:
    """Delete the shards an earlier publish recorded that the new manifest does not list; name in
    one warning any other object named like a shard (a user's copy, a kill before a manifest),
    which is left: nothing says herd made it."""
    stale = sorted(name for name in present if _is_shard_name(name) and name not in keep)
    for name in stale:
        if name in recorded:
            fs.rm_file(f"{base}/{name}")
    left = [name for name in stale if name not in recorded]
    if left:
        print(f"warning: {url}: left {len(left)} object(s) named like shards that no earlier publish there "
              f"recorded: {', '.join(left)}; the new manifest.json does not list them", file=sys.stderr)
