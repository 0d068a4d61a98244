"""`pipeline download stackexchange`: the Stack Exchange data dump's per-site `.7z` archives
from the Internet Archive item `stackexchange` into `data/raw/stackexchange/<site>.7z`.

The item's `stackexchange_files.xml` lists every file with its size, md5 and sha1; each
archive is checked against its size and sha1. Stack Overflow is published as one archive per
table; only `stackoverflow.com-Posts.7z` is fetched (the source reads Posts only). Meta sites
are left out. Without --sites, the N largest sites by archive size are fetched (default the
paper's 28); `pipeline run` then ranks the sites by number of posts, so fetching a few more
than 28 makes sure none of the 28 largest by posts is missing.

The listing is read bounded (16 MiB), and an archive with a size that is not in ASCII digits,
a sha1 that is not hex or a name that is not a site's is refused; so is a listed size past 64 GiB
(the size caps the body, so a listing cannot lift the bound on it).

Each verified archive's Posts.xml is then unpacked into `<site>/Posts.xml` and the archive
removed: `pipeline run stackexchange` reads a plain Posts.xml in byte ranges, tasks of their own
(Stack Overflow's 100 GB in about 100 tasks of 1 GB), where a .7z is one task. The unpacking goes
through a temporary name, so a site whose Posts.xml is there is complete and is not fetched
again; an archive left beside it (a run stopped between the rename and the removal) is removed.
With --no-unpack the archives stay as they are.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.commands.download.fetch import Checksum, xml_listing
from pipeline.commands.download.options import RETRIES, add_common, fetcher, say
from pipeline.commands.download.untrusted import NAME_LIMIT, GiB, ascii_int, hex_digest, refused, shown
from pipeline.common.config import Positive, check_flags
from pipeline.common.errors import UserError
from pipeline.formats.stackexchange_posts import MAX_COMPRESSION_RATIO, extract_posts_xml

ARCHIVE_BASE = "https://archive.org/download/stackexchange"
LISTING = "stackexchange_files.xml"
PAPER_SITES = 28
SITE = re.compile(r"[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+")  # math.stackexchange.com
OWN_SUFFIXES = ("7z", "part", "tmp")  # what herd adds to a site's name for its archive and downloads
ARCHIVE_LIMIT = 64 * GiB  # the largest listed size herd believes: stackoverflow.com-Posts.7z is about 20 GB


@dataclass(frozen=True)
class SiteArchive:
    site: str
    name: str
    size: int
    sha1: str


DESCRIPTION = "Fetch Stack Exchange data-dump archives (.7z per site)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sites", nargs="+", help="site names, e.g. math.stackexchange.com stackoverflow.com")
    p.add_argument("--largest", type=int, default=PAPER_SITES,
                   help="without --sites: the N largest sites by archive size (default %(default)s)")
    p.add_argument("--no-unpack", dest="unpack", action="store_false",
                   help="keep the .7z archives instead of unpacking each site's Posts.xml into <site>/Posts.xml "
                   "(a .7z is read whole, as one task: Stack Overflow's would take about a day of one core)")
    add_common(p, "data/raw/stackexchange", ARCHIVE_BASE)


def site_archives(listing: bytes, source: str) -> dict[str, SiteArchive]:
    """site -> its Posts archive, from the Internet Archive's `<item>_files.xml`."""
    root = xml_listing(listing, source, "an archive.org file listing")
    found: dict[str, SiteArchive] = {}
    for node in root.iter("file"):
        name = node.get("name", "")
        if not name.endswith(".7z") or "/" in name:
            continue
        stem = name.removesuffix(".7z")
        if "-" in stem and not stem.endswith("-Posts"):
            continue  # stackoverflow.com-Users.7z and the other per-table archives
        site = stem.removesuffix("-Posts")
        if site.startswith("meta.") or ".meta." in site:
            continue
        # A site named like herd's own files (`ab.cd.7z`: another site's archive path is its folder) is none.
        if not SITE.fullmatch(site) or len(site) > NAME_LIMIT or site.rsplit(".", 1)[-1] in OWN_SUFFIXES:
            raise refused(source, f"{shown(name)} is not the archive of a site")
        size, sha1 = ascii_int((node.findtext("size") or "").strip()), hex_digest(node.findtext("sha1"), "sha1")
        if size is None or sha1 is None:
            raise refused(source, f"{name} has no size in bytes ({shown(node.findtext('size'))}) or no sha1 "
                          f"({shown(node.findtext('sha1'))})")
        found[site] = SiteArchive(site, name, size, sha1)
    if not found:
        raise refused(source, "lists no site archives")
    return found


def choose(archives: dict[str, SiteArchive], sites: list[str] | None, largest: int) -> list[SiteArchive]:
    if sites:
        missing = [s for s in sites if s not in archives]
        if missing:
            raise UserError(f"--sites: not in the dump: {missing}")
        return [archives[s] for s in sites]
    if largest < 1:
        raise UserError("--largest must be at least 1")
    return sorted(archives.values(), key=lambda a: (-a.size, a.site))[:largest]


def run(a: argparse.Namespace) -> list[Path]:
    check_flags(a, {**RETRIES, "largest": Positive})  # before the listing is fetched
    base = a.base_url.rstrip("/")
    out = Path(a.out)
    get = fetcher(a)
    listing_url = f"{base}/{LISTING}"
    chosen = choose(site_archives(get.read(listing_url), listing_url), a.sites, a.largest)
    written = []
    for number, archive in enumerate(chosen, 1):
        dest = out / f"{archive.site}.7z"
        posts = out / archive.site / "Posts.xml"
        if a.unpack and posts.is_file():  # unpacked by an earlier run: complete (renamed when whole)
            dest.unlink(missing_ok=True)
            written.append(posts)
            continue
        say(a, f"[{number}/{len(chosen)}] {dest} ({archive.size / 1e6:,.0f} MB)")
        fetched = get.fetch(f"{base}/{archive.name}", dest, Checksum("sha1", archive.sha1), archive.size,
                            ARCHIVE_LIMIT)
        written.append(unpack(a, fetched, posts) if a.unpack else fetched)
    total = sum(a.size for a in chosen)
    what = "site Posts.xml file(s) unpacked from" if a.unpack else "site archive(s),"
    print(f"{len(written)} {what} {total / 1e9:,.2f} GB of archives, in {out}")
    return written


def unpack(a: argparse.Namespace, archive: Path, posts: Path) -> Path:
    """`posts` (`<site>/Posts.xml`), unpacked from the verified `archive`, which is then removed."""
    say(a, f"    unpacking {archive.name} into {posts.parent.name}/Posts.xml")
    staging = archive.with_name(f".{archive.name}.unpacking")
    shutil.rmtree(staging, ignore_errors=True)  # what a stopped run unpacked in part
    try:
        extracted = extract_posts_xml(str(archive), staging, MAX_COMPRESSION_RATIO)
        posts.parent.mkdir(parents=True, exist_ok=True)
        os.replace(extracted, posts)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    archive.unlink()
    return posts
