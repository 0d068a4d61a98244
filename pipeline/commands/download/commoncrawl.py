"""`pipeline download commoncrawl`: a snapshot's `wet.paths.gz`, then its first N WET files
(or those from --offset) into `data/raw/commoncrawl/`.

Common Crawl publishes no per-file checksums for WET files; each is checked against its
Content-Length and inflated to its end, so a body cut where a server stopped (no Content-Length,
or one shorter than the body) is never kept as whole, on the first run or a rerun; nor is the
listing, which has no published size either. The listing is read as a stream, bounded (16 MiB
fetched, 64 MiB inflated: the real ones are about 1.5 MB and 13 MB), and every line must be a
relative path of a WET file (`*.warc.wet.gz`): an absolute URL, `..`, a NUL, a non-ASCII
character, a name of another kind (never the listing's own) or a name twice among those asked for
refuses the listing.
"""

from __future__ import annotations

import argparse
import gzip
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.commands.download.options import RETRIES, add_common, fetcher, say
from pipeline.commands.download.untrusted import (
    GiB, KiB, MiB, bounded_lines, gzip_problem, plain, refused, relative_path, shown,
)
from pipeline.common.config import Count, Positive, check_flags
from pipeline.common.errors import UserError

COMMONCRAWL_BASE = "https://data.commoncrawl.org"
SNAPSHOT = re.compile(r"^CC-MAIN-\d{4}-\d{2}$")
LISTING_LIMIT = 16 * MiB  # wet.paths.gz as fetched
INFLATED_LIMIT = 64 * MiB  # and decompressed
LINE_LIMIT = 4 * KiB  # a path is about 130 characters
WET_LIMIT = 1 * GiB  # a WET file is about 150 MB
WET_SUFFIX = ".warc.wet.gz"


@dataclass
class WetPaths:
    """The part of a wet.paths.gz listing a run asks for, and how many paths it holds in all."""

    chosen: list[str] = field(default_factory=list)
    total: int = 0


def wet_paths(listing: Path, source: str, offset: int, count: int) -> WetPaths:
    """Paths `offset` to `offset + count` of a gzip list of WET paths, every line checked."""
    found, names = WetPaths(), set()
    try:
        with gzip.open(listing, "rb") as stream:
            for number, line in enumerate(bounded_lines(stream, source, "the list", LINE_LIMIT, INFLATED_LIMIT), 1):
                path = line.removesuffix(b"\r")
                text = path.decode("ascii", "replace")
                if not relative_path(text) or not text.endswith(WET_SUFFIX):
                    raise refused(source, f"path {number}: {shown(path)} is not a relative path of a WET file")
                if offset <= found.total < offset + count:
                    name = text.rsplit("/", 1)[-1]
                    if name in names:  # one file under --out: the second would be taken for the first
                        raise refused(source, f"path {number}: {shown(name)} is named twice")
                    names.add(name)
                    found.chosen.append(text)
                found.total += 1
    except (OSError, EOFError, zlib.error) as e:
        raise refused(source, f"not a gzip list of WET paths ({plain(e)})") from None
    return found


DESCRIPTION = "Fetch a CommonCrawl snapshot's WET files (text extracted by CommonCrawl)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--snapshot", required=True, help="snapshot name, e.g. CC-MAIN-2020-05 (the paper used 2017-2020)")
    p.add_argument("--segments", type=int, default=1, help="how many WET files to fetch (default %(default)s; "
                   "a snapshot has tens of thousands, about 150 MB each)")
    p.add_argument("--offset", type=int, default=0, help="skip this many WET files of the list first")
    add_common(p, "data/raw/commoncrawl", COMMONCRAWL_BASE)


def run(a: argparse.Namespace) -> list[Path]:
    if not SNAPSHOT.match(a.snapshot):
        raise UserError(f"--snapshot {a.snapshot!r}: expected a name like CC-MAIN-2020-05")
    check_flags(a, {**RETRIES, "segments": Positive, "offset": Count})
    base = a.base_url.rstrip("/")
    out = Path(a.out)
    get = fetcher(a)
    listing_url = f"{base}/crawl-data/{a.snapshot}/wet.paths.gz"
    # No size is published: sent without a Content-Length, only its gzip trailer shows the listing whole
    # (with one, wet_paths reads it to that trailer, bounded, and refuses it cut short).
    listing = get.fetch(listing_url, out / f"{a.snapshot}.wet.paths.gz", limit=LISTING_LIMIT, end_check=gzip_problem)
    try:
        paths = wet_paths(listing, listing_url, a.offset, a.segments)
    except UserError:
        listing.unlink()  # a corrupt listing must not be trusted on the next run
        raise
    chosen = paths.chosen
    if not chosen:
        raise UserError(f"{a.snapshot}: the list has {paths.total} WET files; nothing at --offset {a.offset}")
    written = []
    for number, path in enumerate(chosen, 1):
        dest = out / path.rsplit("/", 1)[-1]
        say(a, f"[{number}/{len(chosen)}] {dest}")
        written.append(get.fetch(f"{base}/{path}", dest, limit=WET_LIMIT, check=gzip_problem))
    print(f"{len(written)} WET file(s) of {a.snapshot} in {out}")
    return written
