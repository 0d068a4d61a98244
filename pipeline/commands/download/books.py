"""`pipeline download books`: Project Gutenberg plain-text books from a mirror into
`data/raw/books/gutenberg/pg<N>.txt` (the folder names the sub-corpus).

Books are chosen by --ids or from Gutenberg's catalogue (`pg_catalog.csv`, a file or URL:
its "Text" rows, optionally one --language, the first --limit). Mirrors keep book N under
the digits of N as folders (`1/3/4/1342/1342-0.txt`); the UTF-8 file `N-0.txt` is tried
first, then the older `N.txt`. Gutenberg asks robots to be polite: one request at a time,
--delay seconds apart (default 2), and a user agent that names the tool. Gutenberg
publishes no checksums; a book is checked against its Content-Length.
"""

from __future__ import annotations

import argparse
import csv
import io
import time
from pathlib import Path

from pipeline.commands.download.fetch import NotFound
from pipeline.commands.download.options import add_common, fetcher, say
from pipeline.common.errors import UserError

MIRROR = "https://aleph.gutenberg.org"
CATALOGUE = "https://www.gutenberg.org/cache/epub/feeds/pg_catalog.csv"


DESCRIPTION = "Fetch Project Gutenberg plain-text books from a mirror."


def add_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", nargs="+", type=int, help="Gutenberg ebook numbers, e.g. 1342 84")
    which.add_argument("--catalogue", nargs="?", const=CATALOGUE,
                       help=f"pg_catalog.csv as a file or URL (without a value: {CATALOGUE})")
    p.add_argument("--language", help="with --catalogue: only books in this language (e.g. en)")
    p.add_argument("--limit", type=int, help="with --catalogue: at most this many books")
    p.add_argument("--delay", type=float, default=2.0, help="seconds between requests (default %(default)s)")
    add_common(p, "data/raw/books/gutenberg", MIRROR)


def mirror_folder(number: int) -> str:
    """1342 -> 1/3/4/1342; 7 -> 0/7 (the layout of Gutenberg's mirrors)."""
    digits = str(number)
    return "/".join([*(digits[:-1] or "0"), digits])


def catalogue_ids(text: str, language: str | None, source: str) -> list[int]:
    rows = csv.DictReader(io.StringIO(text))
    if not rows.fieldnames or "Text#" not in rows.fieldnames:
        raise UserError(f"{source}: not Gutenberg's pg_catalog.csv (no Text# column)")
    ids = []
    for row in rows:
        if row.get("Type", "Text") != "Text" or not (row.get("Text#") or "").isdigit():
            continue
        if language and language not in (row.get("Language") or "").split("; "):
            continue
        ids.append(int(row["Text#"]))
    return ids


def run(a: argparse.Namespace) -> list[Path]:
    if a.delay < 0 or (a.limit is not None and a.limit < 1):
        raise UserError("--delay must be at least 0 and --limit at least 1")
    base = a.base_url.rstrip("/")
    out = Path(a.out)
    get = fetcher(a)
    if a.ids:
        ids = a.ids
    else:
        source = a.catalogue
        raw = get.read(source) if "://" in source else _read_local(source)
        ids = catalogue_ids(raw.decode("utf-8", "replace"), a.language, source)[: a.limit]
    requests = 0
    written, missing = [], []
    for number, book in enumerate(ids, 1):
        dest = out / f"pg{book}.txt"
        if dest.exists():
            written.append(dest)
            continue
        say(a, f"[{number}/{len(ids)}] {dest}")
        for name in (f"{book}-0.txt", f"{book}.txt"):
            if requests and a.delay:
                time.sleep(a.delay)
            requests += 1
            try:
                written.append(get.fetch(f"{base}/{mirror_folder(book)}/{name}", dest))
                break
            except NotFound as e:
                last = e
        else:
            if a.ids:  # asked for by number: a missing book is the user's to know now
                raise last
            missing.append(book)
    print(f"{len(written)} book(s) in {out}" + (f"; {len(missing)} without a plain-text file: {missing[:10]}"
                                                  if missing else ""))
    return written


def _read_local(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read the catalogue ({e.strerror})") from None
