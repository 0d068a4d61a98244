"""A corpus root in object storage (s3://, gs://, any fsspec URL): the run is staged locally,
where shards can be renamed atomically and tasks resumed, and the finished source folder is
then published to the URL.

The staging folder is `$HERD_STAGING_DIR/<url as a path>` (default `data/staging/...`), so a
rerun of the same command finds its plan and finished tasks there and resumes. Publishing
uploads the shards (and dropped shards), removes shards of an earlier run that the new
manifest does not name, and uploads `manifest.json` last: a reader that finds the manifest
finds every shard it lists. Credentials and endpoints come from the file system's usual
configuration (for S3: AWS_* variables or profiles, AWS_ENDPOINT_URL for another endpoint).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import fsspec

from pipeline.common.errors import UserError
from pipeline.engine.corpus_manifest import checked_manifest

LAST = "manifest.json"
ALONGSIDE = ("stats.json", "timings.json")


def is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def staging_root(url: str) -> Path:
    """Where a run whose corpus root is `url` is staged: stable across reruns of one URL."""
    protocol, rest = url.split("://", 1)
    safe = re.sub(r"[^A-Za-z0-9._/-]", "_", rest.strip("/"))
    return Path(os.environ.get("HERD_STAGING_DIR") or "data/staging") / protocol / safe


def publish(local: Path, url: str) -> list[str]:
    """Upload the finished source folder `local` (shards, dropped shards, stats) to `url`; the
    names uploaded, none when `url` already holds this manifest."""
    try:
        fs, _, (base,) = fsspec.get_fs_token_paths(url)
    except (ImportError, ValueError) as e:
        raise UserError(f"{url}: cannot open this storage ({e}); install its extra, e.g. "
                        "pip install 'herd[s3]'") from None
    base = base.rstrip("/")
    try:
        if fs.exists(f"{base}/{LAST}") and fs.cat_file(f"{base}/{LAST}") == (local / LAST).read_bytes():
            return []  # published already: a rerun of a finished run uploads nothing
    except OSError as e:
        raise UserError(f"{url}: cannot read the storage ({e})") from None
    # Names checked first: a manifest naming ../../x.arrow must not upload a file from outside.
    manifest = checked_manifest(local / LAST)
    names = [entry["file"] for entry in manifest["shards"]] + manifest.get("dropped_shards", [])
    names += [n for n in ALONGSIDE if (local / n).exists()]
    try:
        for name in names:
            fs.put_file(str(local / name), f"{base}/{name}")
        _remove_stale(fs, base, set(names))
        fs.put_file(str(local / LAST), f"{base}/{LAST}")
    except OSError as e:
        raise UserError(f"{url}: cannot upload the corpus ({e}); rerun the same command to publish again") from None
    return names + [LAST]


def _remove_stale(fs: fsspec.AbstractFileSystem, base: str, keep: set[str]) -> None:
    for pattern in ("shard-*.arrow", "dropped/shard-*.arrow"):
        for path in fs.glob(f"{base}/{pattern}"):
            if path[len(base) + 1 :] not in keep:
                fs.rm_file(path)
