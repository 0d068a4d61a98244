"""Files of a Hugging Face dataset repository: listed through huggingface_hub's API (with
their LFS sha256 and size), fetched from their resolve URLs by the shared fetcher, so a
download resumes, retries and is verified like every other. `--endpoint` (or HF_ENDPOINT)
points at a mirror or a test server; a token (HF_TOKEN or `huggingface-cli login`) is sent
when one is set, for gated datasets.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.commands.download.fetch import Checksum, Fetcher
from pipeline.commands.download.options import add_common, fetcher, say
from pipeline.common.errors import UserError

HUB = "https://huggingface.co"


@dataclass(frozen=True)
class HubFile:
    path: str  # in the repository
    size: int
    sha256: str | None  # LFS files only


def add_hub_options(p: argparse.ArgumentParser, out: str) -> None:
    p.add_argument("--files", type=int, default=1, help="how many files to fetch (default %(default)s)")
    p.add_argument("--offset", type=int, default=0, help="skip this many files of the sorted list first")
    p.add_argument("--revision", default="main", help="branch, tag or commit of the dataset (default %(default)s)")
    p.add_argument("--endpoint", default=os.environ.get("HF_ENDPOINT", HUB),
                   help="Hub endpoint: a mirror or test server (default $HF_ENDPOINT or %(default)s)")
    add_common(p, out, None)


def list_files(endpoint: str, repo_id: str, folder: str, pattern: str, revision: str) -> list[HubFile]:
    """The files of `folder` in the dataset `repo_id` whose names match `pattern`, sorted."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=endpoint.rstrip("/"))
    try:
        entries = list(api.list_repo_tree(repo_id, path_in_repo=folder, repo_type="dataset", revision=revision))
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        raise UserError(f"{endpoint}: cannot list {repo_id}/{folder} at {revision} (HTTP {status})") from None
    except OSError as e:
        raise UserError(f"{endpoint}: cannot list {repo_id}/{folder} ({e})") from None
    found = []
    for entry in entries:
        name = entry.path.rsplit("/", 1)[-1]
        if getattr(entry, "size", None) is None or not fnmatch.fnmatch(name, pattern):
            continue  # folders, and files of other splits
        lfs = getattr(entry, "lfs", None)
        sha256 = (lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)) if lfs else None
        found.append(HubFile(entry.path, entry.size, sha256))
    return sorted(found, key=lambda f: f.path)


def download_files(args: argparse.Namespace, repo_id: str, folder: str, pattern: str,
                   fetched_suffix: str = "") -> list[Path]:
    """Fetch --files files (from --offset) of the listing into --out, each under its name plus
    `fetched_suffix` (for a caller that converts it into the plain name); a file whose plain
    name exists already is done and not fetched again."""
    from huggingface_hub import get_token, hf_hub_url

    if args.files < 1 or args.offset < 0:
        raise UserError("--files must be at least 1 and --offset at least 0")
    files = list_files(args.endpoint, repo_id, folder, pattern, args.revision)
    chosen = files[args.offset : args.offset + args.files]
    if not chosen:
        raise UserError(f"{repo_id}/{folder}: {len(files)} file(s) match {pattern}; nothing at --offset {args.offset}")
    token = get_token()
    get: Fetcher = fetcher(args, {"Authorization": f"Bearer {token}"} if token else None)
    out = Path(args.out)
    written = []
    for number, item in enumerate(chosen, 1):
        url = hf_hub_url(repo_id, item.path, repo_type="dataset", revision=args.revision,
                         endpoint=args.endpoint.rstrip("/"))
        final = out / item.path.rsplit("/", 1)[-1]
        if final.exists():
            written.append(final)
            continue
        dest = final.with_name(final.name + fetched_suffix)
        say(args, f"[{number}/{len(chosen)}] {dest} ({item.size / 1e6:,.1f} MB)")
        checksum = Checksum("sha256", item.sha256) if item.sha256 else None
        written.append(get.fetch(url, dest, checksum, item.size))
    return written
