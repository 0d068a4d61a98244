"""A corpus root in object storage (s3://, gs://, any fsspec URL): the run is staged locally,
where shards can be renamed atomically and tasks resumed, and the finished source folder is
then published to the URL.

The staging folder is `$HERD_STAGING_DIR/<url as a path>` (default `data/staging/...`), so a
rerun of the same command finds its plan and finished tasks there and resumes. Publishing
uploads the shards (and dropped shards), removes the shards an earlier publish listed in its
manifest.json that the new manifest does not name (never an object no publish recorded: one
warning names those), and uploads `manifest.json` last: a reader that finds the manifest finds
every shard it lists. Credentials and endpoints come from the file system's usual
configuration (for S3: AWS_* variables or profiles, AWS_ENDPOINT_URL for another endpoint).

What a staged run has put into its URL is recorded in `_work/uploaded.json`: each name before its
upload starts (with no ETag: a publish killed midway finds it its own to overwrite), then the ETag
the object has once put (asked of the storage just after the put). A rerun finding its manifest
published already (the same bytes: manifest.json is read whole, so any change to it is seen) uploads
again only the shards, dropped shards and files beside them that the one listing it makes shows
missing, of another size, or of another ETag than recorded: bytes of the same size written over a
shard since. ETags are compared as the opaque strings the storage gave, never computed (a multipart
upload's is no MD5). A name with no ETag recorded (a publish killed before it was asked, or one by
an older herd) is uploaded again where the storage lists ETags; a storage that lists none (memory://)
is judged by size alone. Before a file is uploaded again its staged copy is checked: a shard's
against the sha256 manifest.json lists, a dropped shard's against the one its task recorded (the run
checked the staged stats.json against its own record already); a staged copy found damaged too is
one line naming both, and nothing is uploaded.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import fsspec

from pipeline.common.errors import UserError, shown
from pipeline.common.files import file_sha256, write_json_atomic
from pipeline.common.warn import warn
from pipeline.engine.corpus_manifest import checked_manifest

LAST = "manifest.json"
UPLOADED = "_work/uploaded.json"  # what a staged run has put into its URL: name -> ETag or null (`uploaded_record`)
ALONGSIDE = ("stats.json", "timings.json")
SHARDS = ("shard-*.arrow", "dropped/shard-*.arrow")  # what publishing replaces, if a publish recorded it
NAMED = 10  # files named in the one warning of a rerun that uploads some again (an older herd's record: all)


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


@dataclass(frozen=True)
class Stored:
    """An object as the storage lists it: its size, and its ETag where the storage gives one."""

    size: int | None
    etag: str | None


@dataclass(frozen=True)
class Staged:
    """A file of the staged run that a publish may upload again: its size, and the sha256 its
    staged copy must have ("" where nothing recorded one)."""

    size: int
    sha256: str = ""


def publish(local: Path, url: str, dropped_sha256: dict[str, str] | None = None) -> list[str]:
    """Upload the finished source folder `local` (shards, dropped shards, stats) to `url`; the
    names uploaded, none when `url` already holds this manifest and every file as uploaded.
    `dropped_sha256`: each dropped shard's sha256 as its task recorded it (run_record.dropped_sha256),
    which its staged copy must have before it is uploaded again."""
    fs, base = _storage(url)
    try:
        earlier = _read_or_none(fs, f"{base}/{LAST}")
        present = _listing(fs, base)
    except OSError as e:
        raise UserError(f"{url}: cannot read the storage ({e})") from None
    # Names checked first: a manifest naming ../../x.arrow must not upload a file from outside.
    manifest = checked_manifest(local / LAST)
    names = [entry["file"] for entry in manifest["shards"]] + manifest.get("dropped_shards", [])
    if earlier == (local / LAST).read_bytes():
        # Published already: a rerun of a finished run uploads only what went missing or changed since.
        staged = _staged(local, manifest, dropped_sha256 or {})
        damaged = _damaged(staged, present, uploaded_record(local))
        for name, why in damaged.items():
            _refuse_damaged_copy(url, local, name, why, staged[name])
        if damaged:
            named = [f"{name} ({why})" for name, why in list(damaged.items())[:NAMED]]
            more = f", and {len(damaged) - NAMED} more" if len(damaged) > NAMED else ""
            warn(f"warning: {url}: {len(damaged)} published file(s) not as uploaded: {', '.join(named)}{more}; "
                  "uploading them again")
        return _upload(fs, url, local, base, list(damaged))
    names += [n for n in ALONGSIDE if (local / n).exists()]
    # What an earlier publish there wrote: the shards its manifest.json lists and the files beside it.
    recorded = _recorded_shards(earlier)
    ours = recorded | (set(ALONGSIDE) if earlier is not None else set()) | set(uploaded_record(local))
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


def uploaded_record(local: Path) -> dict[str, str | None]:
    """What this staged run has put into its URL (UPLOADED): each name, recorded before its upload
    starts (a publish killed before its manifest.json went up finds them its own to overwrite), with
    the ETag the object had once put, or None (not known: killed first, or an older herd's list of
    names)."""
    try:
        record = json.loads((local / UPLOADED).read_text())
    except (OSError, ValueError):
        return {}
    if isinstance(record, list):  # an older herd's: names only
        return {name: None for name in record if isinstance(name, str)}
    if not isinstance(record, dict):
        return {}
    return {name: tag if isinstance(tag, str) else None for name, tag in record.items()}


def _upload(fs: fsspec.AbstractFileSystem, url: str, local: Path, base: str, names: list[str]) -> list[str]:
    """Put each of `names` from `local` under `base`, recording the ETag each has once put; the names put."""
    if not names:
        return []
    record = uploaded_record(local) | dict.fromkeys(names)  # no ETag while its upload is under way
    try:
        (local / UPLOADED).parent.mkdir(exist_ok=True)
        write_json_atomic(local / UPLOADED, record)
        try:
            for name in names:
                fs.put_file(str(local / name), f"{base}/{name}")
                record[name] = _etag_after_upload(fs, f"{base}/{name}", (local / name).stat().st_size)
        finally:  # the ETags of what went up before a failure too
            write_json_atomic(local / UPLOADED, record)
    except OSError as e:
        raise UserError(f"{url}: cannot upload the corpus ({e}); rerun the same command to publish again") from None
    return names


def _etag_after_upload(fs: fsspec.AbstractFileSystem, path: str, size: int) -> str | None:
    """The ETag of the object just put at `path`, as the storage gives it (s3fs's put_file returns
    none); None where it gives none, or where the object is not of the size put (written over since,
    which the next rerun then uploads again)."""
    fs.invalidate_cache(path)
    stored = _stored(fs.info(path))
    return stored.etag if stored.size == size else None


def _staged(local: Path, manifest: dict, dropped_sha256: dict[str, str]) -> dict[str, Staged]:
    """Every file a rerun checks in the storage, as the staged run holds it: the shards as the
    manifest lists them, the dropped shards and the files beside them at their staged size."""
    staged = {entry["file"]: Staged(entry["bytes"], entry["sha256"]) for entry in manifest["shards"]}
    for name in manifest.get("dropped_shards", []):
        staged[name] = Staged((local / name).stat().st_size, dropped_sha256.get(name, ""))
    return staged | {name: Staged((local / name).stat().st_size) for name in ALONGSIDE if (local / name).exists()}


def _damaged(staged: dict[str, Staged], present: dict[str, Stored], record: dict[str, str | None]) -> dict[str, str]:
    """The files of `staged` that the storage lacks, holds at another size, or holds with another ETag
    than their upload recorded (other bytes, whatever their size), each with what is wrong: the one
    listing tells, at no request per file. Where the storage lists no ETags, the size alone."""
    damaged = {}
    for name, file in staged.items():
        stored, uploaded = present.get(name), record.get(name)
        if stored is None:
            damaged[name] = "missing"
        elif stored.size != file.size:
            damaged[name] = f"{stored.size:,} bytes, not {file.size:,}"
        elif stored.etag != uploaded:
            damaged[name] = (f"ETag {shown(stored.etag)} where its upload recorded {shown(uploaded)}" if uploaded
                             else f"ETag {shown(stored.etag)}, and none recorded at its upload")
    return damaged


def _refuse_damaged_copy(url: str, local: Path, name: str, why: str, file: Staged) -> None:
    """One line, before anything is uploaded, when the staged copy that would replace the damaged
    `name` is not as the run recorded it either (its size, its sha256 read whole: a seal may vouch
    for a file whose bytes rotted since)."""
    path = local / name
    try:
        problem = None if path.stat().st_size == file.size else f"{path.stat().st_size:,} bytes, not {file.size:,}"
        if problem is None and file.sha256 and file_sha256(path) != file.sha256:
            problem = f"not as the run recorded it (its sha256 is not {file.sha256})"
    except OSError as e:
        problem = f"unreadable ({e.strerror})"
    if problem:
        raise UserError(f"{url}/{name} is not as uploaded ({why}), and its staged copy {path} is {problem}: nothing "
                        "was uploaded; pass --restart to run it again")


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


def _listing(fs: fsspec.AbstractFileSystem, base: str) -> dict[str, Stored]:
    """Every object under `base` by its name relative to it, with its size and ETag: one listing,
    asked of the storage (a file system's cached listing, in a process that publishes more than
    once, holds the objects as they were)."""
    fs.invalidate_cache(base)
    found = fs.find(base, detail=True)
    return {path[len(base) + 1 :]: _stored(info) for path, info in found.items() if path.startswith(f"{base}/")}


def _stored(info: dict) -> Stored:
    """An fsspec info dict as a Stored: s3fs names the ETag "ETag", gcsfs and adlfs "etag"."""
    etag = info.get("ETag", info.get("etag"))
    return Stored(info.get("size"), etag if isinstance(etag, str) else None)


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


def _remove_stale(fs: fsspec.AbstractFileSystem, url: str, base: str, present: dict[str, Stored], keep: set[str],
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
        warn(f"warning: {url}: left {len(left)} object(s) named like shards that no earlier publish there "
             f"recorded: {', '.join(left)}; the new manifest.json does not list them")
