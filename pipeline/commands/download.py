"""`pipeline download SOURCE ...`: fetch real raw inputs over HTTP.

commoncrawl: the snapshot's `wet.paths.gz`, then its first N WET files (or those from
--offset) into `data/raw/commoncrawl/`. Each file is written as `<name>.part` and renamed
when complete, so a finished file is never partial; an interrupted download resumes from
the bytes already there with an HTTP Range request, and failed requests are retried with
exponential backoff. Other sources are not supported yet.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from pipeline.common.errors import UserError

COMMONCRAWL_BASE = "https://data.commoncrawl.org"
SNAPSHOT = re.compile(r"^CC-MAIN-\d{4}-\d{2}$")
BLOCK = 1 << 20
RETRYABLE = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError)


class _Permanent(Exception):
    """A failure no retry can fix (404, 403...)."""


def fetch(url: str, dest: Path, retries: int = 5, backoff: float = 1.0, timeout: float = 60.0,
          show_progress: bool | None = None) -> Path:
    """Download `url` to `dest` unless it is there; resumes `dest.part` with a Range request."""
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            _fetch_once(url, part, timeout, show_progress)
            os.replace(part, dest)
            return dest
        except _Permanent as e:
            raise UserError(f"{url}: {e}") from None
        except RETRYABLE as e:
            last_error = e
    raise UserError(f"{url}: failed after {retries + 1} attempts ({last_error}); rerun to resume from "
                    f"{part.stat().st_size if part.exists() else 0:,} bytes")


def _fetch_once(url: str, part: Path, timeout: float, show_progress: bool | None) -> None:
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "herd-pipeline/0.1"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing after what we have: the part is complete
            return
        if e.code in (401, 403, 404, 410):
            raise _Permanent(f"HTTP {e.code} {e.reason}") from None
        raise
    with response:
        if have and response.status != 206:
            have = 0  # the server ignored the range: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        mode = "ab" if have else "wb"
        with open(part, mode) as out, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, desc=part.name.removesuffix(".part"),
            disable=None if show_progress is None else not show_progress, leave=False,
        ) as bar:
            received = 0
            while block := response.read(BLOCK):
                out.write(block)
                received += len(block)
                bar.update(len(block))
        if length is not None and received < int(length):
            raise ConnectionError(f"connection closed after {have + received:,} of {total:,} bytes")


def commoncrawl_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pipeline download commoncrawl",
                                description="Fetch a CommonCrawl snapshot's WET files (text extracted by CommonCrawl).")
    p.add_argument("--snapshot", required=True, help="snapshot name, e.g. CC-MAIN-2020-05 (the paper used 2017-2020)")
    p.add_argument("--segments", type=int, default=1, help="how many WET files to fetch (default %(default)s; "
                   "a snapshot has tens of thousands, about 150 MB each)")
    p.add_argument("--offset", type=int, default=0, help="skip this many WET files of the list first")
    p.add_argument("--out", default="data/raw/commoncrawl", help="destination folder (default %(default)s)")
    p.add_argument("--base-url", default=COMMONCRAWL_BASE, help="mirror to fetch from (default %(default)s)")
    p.add_argument("--retries", type=int, default=5, help="retries per file (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def download_commoncrawl(argv: list[str]) -> list[Path]:
    a = commoncrawl_parser().parse_args(argv)
    if not SNAPSHOT.match(a.snapshot):
        raise UserError(f"--snapshot {a.snapshot!r}: expected a name like CC-MAIN-2020-05")
    if a.segments < 1 or a.offset < 0 or a.retries < 0:
        raise UserError("--segments must be at least 1, --offset and --retries at least 0")
    base = a.base_url.rstrip("/")
    out = Path(a.out)
    progress = False if a.no_progress else None
    listing = fetch(f"{base}/crawl-data/{a.snapshot}/wet.paths.gz", out / f"{a.snapshot}.wet.paths.gz",
                    a.retries, show_progress=progress)
    try:
        paths = [line.strip() for line in gzip.decompress(listing.read_bytes()).decode().splitlines() if line.strip()]
    except (OSError, EOFError, UnicodeDecodeError) as e:
        listing.unlink()  # a corrupt listing must not be trusted on the next run
        raise UserError(f"{listing}: not a gzip list of WET paths ({e})") from None
    chosen = paths[a.offset : a.offset + a.segments]
    if not chosen:
        raise UserError(f"{a.snapshot}: the list has {len(paths)} WET files; nothing at --offset {a.offset}")
    written = []
    for number, path in enumerate(chosen, 1):
        dest = out / path.rsplit("/", 1)[-1]
        if not a.no_progress:
            print(f"[{number}/{len(chosen)}] {dest}")
        written.append(fetch(f"{base}/{path}", dest, a.retries, show_progress=progress))
    print(f"{len(written)} WET file(s) of {a.snapshot} in {out}")
    return written


DOWNLOADERS = {"commoncrawl": download_commoncrawl}


def command(args: argparse.Namespace) -> None:
    downloader = DOWNLOADERS.get(args.source)
    if downloader is None:
        raise UserError(f"pipeline download {args.source}: not supported yet (supported: {', '.join(DOWNLOADERS)}); "
                        f"put the raw files under data/raw/{args.source}/ yourself")
    downloader(args.rest)
