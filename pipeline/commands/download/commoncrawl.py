"""`pipeline download commoncrawl`: a snapshot's `wet.paths.gz`, then its first N WET files
(or those from --offset) into `data/raw/commoncrawl/`.

Common Crawl publishes no per-file checksums for WET files; each is checked against its
Content-Length, and the gzip listing is checked to decompress.
"""

from __future__ import annotations

import argparse
import gzip
import re
from pathlib import Path

from pipeline.commands.download.options import add_common, fetcher, say
from pipeline.common.errors import UserError

COMMONCRAWL_BASE = "https://data.commoncrawl.org"
SNAPSHOT = re.compile(r"^CC-MAIN-\d{4}-\d{2}$")


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
    if a.segments < 1 or a.offset < 0:
        raise UserError("--segments must be at least 1 and --offset at least 0")
    base = a.base_url.rstrip("/")
    out = Path(a.out)
    get = fetcher(a)
    listing = get.fetch(f"{base}/crawl-data/{a.snapshot}/wet.paths.gz", out / f"{a.snapshot}.wet.paths.gz")
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
        say(a, f"[{number}/{len(chosen)}] {dest}")
        written.append(get.fetch(f"{base}/{path}", dest))
    print(f"{len(written)} WET file(s) of {a.snapshot} in {out}")
    return written
