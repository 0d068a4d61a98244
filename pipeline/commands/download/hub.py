"""Files of a Hugging Face dataset repository: listed through the Hub's tree API (with their
LFS sha256 and size), fetched from their resolve URLs by the shared fetcher, so a download
resumes, retries and is verified like every other. `--endpoint` (or HF_ENDPOINT) points at a
mirror or a test server; a token (HF_TOKEN or `huggingface-cli login`) is sent when one is
set, for gated datasets.

The tree is read here rather than through huggingface_hub's `list_repo_tree`, which holds a
page whatever its size, follows `next` links without end and takes any JSON shape: each page
is bounded (8 MiB), at most 1,000 pages are followed and only on the endpoint's own host (the
token goes with them), at most 100,000 matching files are held, and an entry the download would
use must be a file of the folder with a plain name, a size in bytes and, for LFS, a sha256 in hex;
anything else is one line.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.commands.download.fetch import Checksum, Fetcher, NotFound, kept
from pipeline.commands.download.options import RETRIES, add_common, fetcher, say
from pipeline.commands.download.untrusted import (
    MiB, file_name, gzip_problem, hex_digest, json_count, parse_json, refused, shown, url_problem,
)
from pipeline.common.config import Count, Positive, check_flags
from pipeline.common.errors import UserError

HUB = "https://huggingface.co"
PAGE_LIMIT = 8 * MiB  # a page of the tree API: 1,000 entries, about 0.4 MB
MAX_PAGES = 1_000
# Matching files held across pages: c4's en/ has 1,032 and github-code's data/ 1,126. Pages are
# bounded one by one; without this, 1,000 pages of tiny entries would hold some 100 million.
MAX_FILES = 100_000
NEXT_LINK = re.compile(r'<([^<>]*)>\s*;\s*rel="?next"?')


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


def list_files(get: Fetcher, endpoint: str, repo_id: str, folder: str, pattern: str,
               revision: str) -> list[HubFile]:
    """The files of `folder` in the dataset `repo_id` whose names match `pattern`, sorted."""
    endpoint = endpoint.rstrip("/")
    url = (f"{endpoint}/api/datasets/{repo_id}/tree/{urllib.parse.quote(revision, safe='')}/"
           f"{urllib.parse.quote(folder, safe='')}?recursive=false&expand=false")
    found: list[HubFile] = []
    for _ in range(MAX_PAGES):
        try:
            body, headers = get.read_with_headers(url, PAGE_LIMIT, "a page of the file listing")
        except NotFound:
            raise UserError(f"{url}: cannot list {repo_id}/{folder} at {revision} (HTTP 404)") from None
        found += _page_files(parse_json(body, url, "a Hub file listing"), url, folder, pattern)
        if len(found) > MAX_FILES:
            raise refused(url, f"the file listing names more than {MAX_FILES:,} files matching {pattern}; refused")
        link = NEXT_LINK.search(headers.get("Link") or "")
        if link is None:
            return sorted(found, key=lambda f: f.path)
        url = _next_page(link[1], endpoint, url)
    raise refused(url, f"the file listing goes on past {MAX_PAGES:,} pages; refused")


def _page_files(page: object, source: str, folder: str, pattern: str) -> list[HubFile]:
    """The files of one page of the tree API that match `pattern`, each checked."""
    if not isinstance(page, list):
        raise refused(source, f"not a Hub file listing (a JSON {type(page).__name__}, not a list)")
    found = []
    for number, entry in enumerate(page):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise refused(source, f"entry {number} is not an object with a path: {shown(entry)}")
        name = entry["path"].rsplit("/", 1)[-1]
        if entry.get("type") != "file" or not fnmatch.fnmatch(name, pattern):
            continue  # folders, and files of other splits
        size, lfs = json_count(entry.get("size")), entry.get("lfs")
        sha256 = hex_digest(lfs.get("oid"), "sha256") if isinstance(lfs, dict) else None
        if entry["path"] != f"{folder}/{name}" or not file_name(name):
            raise refused(source, f"entry {number}: {shown(entry['path'])} is not a file name in {folder}/")
        if size is None or (lfs is not None and sha256 is None):
            raise refused(source, f"entry {number} ({name}): no size in bytes ({shown(entry.get('size'))}) or an "
                          f"LFS sha256 that is not hex ({shown(lfs)})")
        found.append(HubFile(entry["path"], size, sha256))
    return found


def _next_page(link: str, endpoint: str, current: str) -> str:
    """The next page's URL, on the endpoint's own host only: the token goes with it."""
    url = urllib.parse.urljoin(current, link)
    problem = url_problem(url)
    here, there = urllib.parse.urlsplit(endpoint), urllib.parse.urlsplit(url)
    if problem is None and (there.scheme, there.netloc) != (here.scheme, here.netloc):
        problem = f"{shown(url)} is not on {here.netloc}"
    if problem is not None:
        raise refused(current, f"the next page of the file listing: {problem}; refused")
    return url


def download_files(args: argparse.Namespace, repo_id: str, folder: str, pattern: str,
                   fetched_suffix: str = "") -> list[tuple[str, Path]]:
    """Fetch --files files (from --offset) of the listing into --out, each under its name plus
    `fetched_suffix` (for a caller that converts it into the plain name); a file whose plain
    name exists already is done and not fetched again. Each file's URL and path."""
    from huggingface_hub import get_token, hf_hub_url

    check_flags(args, {**RETRIES, "files": Positive, "offset": Count})
    token = get_token()
    get: Fetcher = fetcher(args, {"Authorization": f"Bearer {token}"} if token else None)
    files = list_files(get, args.endpoint, repo_id, folder, pattern, args.revision)
    chosen = files[args.offset : args.offset + args.files]
    if not chosen:
        raise UserError(f"{repo_id}/{folder}: {len(files)} file(s) match {pattern}; nothing at --offset {args.offset}")
    out = Path(args.out)
    written = []
    for number, item in enumerate(chosen, 1):
        url = hf_hub_url(repo_id, item.path, repo_type="dataset", revision=args.revision,
                         endpoint=args.endpoint.rstrip("/"))
        final = out / item.path.rsplit("/", 1)[-1]
        dest = final.with_name(final.name + fetched_suffix)
        if fetched_suffix and final.exists():  # converted from a verified download, through a temporary name
            dest.unlink(missing_ok=True)  # the download, if a run stopped between the conversion and its removal
            written.append((url, final))
            continue
        checksum = Checksum("sha256", item.sha256) if item.sha256 else None
        # A file the listing gives no sha256 (not in LFS: "lfs": null) is judged by its own end: a
        # gzip's trailer, a Parquet file's footer. Its size alone passed a body cut where a server stopped.
        check = None if checksum else whole_file_check(item.path)
        if kept(dest, checksum, item.size, check):  # verified again: a file is not whole for existing
            written.append((url, dest))
            continue
        say(args, f"[{number}/{len(chosen)}] {dest} ({item.size / 1e6:,.1f} MB)")
        written.append((url, get.fetch(url, dest, checksum, item.size, check=check)))
    return written


def whole_file_check(name: str) -> Callable[[Path], str | None] | None:
    """What tells a file of this name whole without a checksum: gzip's trailer, Parquet's footer."""
    if name.endswith(".gz"):
        return gzip_problem
    if name.endswith(".parquet"):
        return parquet_problem
    return None


def parquet_problem(path: Path) -> str | None:
    """Why the file at `path` is no whole Parquet file (it starts and ends with PAR1, its footer
    length fits in it), or None."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(max(size - 8, 0))
        tail = f.read(8)
    if size < 12 or head != b"PAR1" or tail[4:] != b"PAR1":
        return "not a whole Parquet file (no PAR1 at its start and end: cut short?)"
    if int.from_bytes(tail[:4], "little") > size - 12:
        return "not a whole Parquet file (its footer is longer than the file)"
    return None
