"""`pipeline download books`: Project Gutenberg plain-text books from a mirror into
`data/raw/books/gutenberg/pg<N>.txt` (the folder names the sub-corpus).

Books are chosen by --ids or from Gutenberg's catalogue (`pg_catalog.csv`, a file or URL:
its "Text" rows, optionally one --language, the first --limit). Mirrors keep book N under
the digits of N as folders (`1/3/4/1342/1342-0.txt`); the UTF-8 file `N-0.txt` is tried
first, then the older `N.txt`. Gutenberg asks robots to be polite: one request at a time,
--delay seconds apart (default 2), and a user agent that names the tool. Gutenberg
publishes no checksums; a book is checked against its Content-Length, and refused when it is
empty or markup (an error page served with status 200). The catalogue is read bounded (64 MiB;
the real one is about 15 MB), and refused when no header states its length (a CSV cut short would
pass for a catalogue of fewer books: save it whole and pass its path); a Text row whose Text# is no
number in ASCII digits is skipped and counted.

A book sent with no Content-Length (and not chunked, whose final chunk http.client requires) ends
where the server closed the connection, whole or not: nothing in HTTP tells a book cut short. Its
own end does: Gutenberg's plain texts close with an END line before the licence ("*** END OF THE
PROJECT GUTENBERG EBOOK ...", "End of Project Gutenberg's ...": the markers the books source strips
the footer at, pipeline/text/gutenberg.py END). Such a book is kept only when it holds one, and
refused otherwise ("sent without a Content-Length and no end-of-book marker: it may be cut short");
a rerun fetches it again. The text the corpus keeps ends at that marker, so a body cut inside the
licence after it loses nothing. A book kept before holds the record that its end was witnessed (an
extended attribute, pipeline/commands/download/fetch.py); one without that record (an older herd
kept it, or the file system keeps no extended attributes) is kept only with a marker, and else
fetched again.
"""

from __future__ import annotations

import argparse
import csv
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import Field

from pipeline.commands.download.fetch import NotFound, kept
from pipeline.commands.download.options import RETRIES, add_common, fetcher, say
from pipeline.commands.download.untrusted import MiB, ascii_int, plain, refused
from pipeline.common.cli import path_arg
from pipeline.common.config import Positive, check_flags
from pipeline.common.errors import UserError
from pipeline.common.files import check_regular_file
from pipeline.formats.files import decode_utf8_or_latin1
from pipeline.text.gutenberg import END, normalize_newlines

MIRROR = "https://aleph.gutenberg.org"
CATALOGUE = "https://www.gutenberg.org/cache/epub/feeds/pg_catalog.csv"
CATALOGUE_LIMIT = 64 * MiB
BOOK_LIMIT = 128 * MiB  # the largest plain-text books are tens of MB


@dataclass
class Catalogue:
    ids: list[int] = field(default_factory=list)
    skipped: int = 0  # Text rows whose Text# is no number in ASCII digits


DESCRIPTION = ("Fetch Project Gutenberg plain-text books from a mirror. A book sent without a Content-Length is "
               "kept only when it holds Gutenberg's end-of-book marker (it may be cut short otherwise).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", nargs="+", type=int, help="Gutenberg ebook numbers, e.g. 1342 84")
    which.add_argument("--catalogue", type=path_arg, nargs="?", const=CATALOGUE,
                       help=f"pg_catalog.csv as a file or URL (without a value: {CATALOGUE})")
    p.add_argument("--language", help="with --catalogue: only books in this language (e.g. en)")
    p.add_argument("--limit", type=int, help="with --catalogue: at most this many books")
    p.add_argument("--delay", type=float, default=2.0, help="seconds between requests (default %(default)s)")
    add_common(p, "data/raw/books/gutenberg", MIRROR)


def mirror_folder(number: int) -> str:
    """1342 -> 1/3/4/1342; 7 -> 0/7 (the layout of Gutenberg's mirrors)."""
    digits = str(number)
    return "/".join([*(digits[:-1] or "0"), digits])


def end_of_book(path: Path) -> str | None:
    """None when the book at `path` holds a Gutenberg END marker, read as the books source reads
    it (UTF-8 or Latin-1, line breaks normalised); else why it may be cut short."""
    text = normalize_newlines(decode_utf8_or_latin1(path.read_bytes()))
    return None if END.search(text) else "no end-of-book marker"


def catalogue_ids(text: str, language: str | None, source: str) -> Catalogue:
    rows = csv.DictReader(io.StringIO(text))
    found = Catalogue()
    try:
        if not rows.fieldnames or "Text#" not in rows.fieldnames:
            raise refused(source, "not Gutenberg's pg_catalog.csv (no Text# column)")
        for row in rows:
            if row.get("Type", "Text") != "Text":
                continue
            number = ascii_int(row.get("Text#"))
            if number is None:
                found.skipped += 1
                continue
            if language and language not in (row.get("Language") or "").split("; "):
                continue
            found.ids.append(number)
    except csv.Error as e:  # a field past csv's 128 KiB limit, a quote never closed
        raise refused(source, f"not a readable CSV catalogue (after line {rows.line_num}: {plain(e)})") from None
    return found


# The numeric flags' bounds, checked before anything is fetched. A delay past an hour between two
# requests is no politeness but a stall (and 1e300 seconds an OverflowError from sleep()).
FLAGS = {**RETRIES, "ids": list[Positive], "limit": Positive, "delay": Annotated[float, Field(ge=0, le=3600)]}


def run(a: argparse.Namespace) -> list[Path]:
    check_flags(a, FLAGS)
    base = a.base_url.rstrip("/")
    out = Path(a.out)
    get = fetcher(a)
    catalogue = Catalogue()
    if a.ids:
        ids = a.ids
    else:
        source = a.catalogue
        # A CSV shows no end of its own: cut where a server without a Content-Length stopped, it would
        # pass for a catalogue of fewer books.
        raw = (get.read(source, CATALOGUE_LIMIT, "the catalogue", ends_itself=False) if "://" in source
               else _read_local(source))
        catalogue = catalogue_ids(raw.decode("utf-8", "replace"), a.language, source)
        ids = catalogue.ids[: a.limit]
    requests = 0
    written, missing = [], []
    for number, book in enumerate(ids, 1):
        dest = out / f"pg{book}.txt"
        # Not empty, not an error page, and its end witnessed: all a book without checksums can be checked for.
        if kept(dest, None, None, end_check=end_of_book):
            written.append(dest)
            continue
        say(a, f"[{number}/{len(ids)}] {dest}")
        for name in (f"{book}-0.txt", f"{book}.txt"):
            if requests and a.delay:
                time.sleep(a.delay)
            requests += 1
            try:
                written.append(get.fetch(f"{base}/{mirror_folder(book)}/{name}", dest, limit=BOOK_LIMIT,
                                               end_check=end_of_book))
                break
            except NotFound as e:
                last = e
        else:
            if a.ids:  # asked for by number: a missing book is the user's to know now
                raise last
            missing.append(book)
    print(f"{len(written)} book(s) in {out}"
          + (f"; {len(missing)} without a plain-text file: {missing[:10]}" if missing else "")
          + (f"; {catalogue.skipped} catalogue row(s) skipped: Text# is no number in ASCII digits"
             if catalogue.skipped else ""))
    return written


def _read_local(path: str) -> bytes:
    """A catalogue file's bytes, at most CATALOGUE_LIMIT (as one fetched): a FIFO or a device is
    refused unopened, a larger file is one line."""
    check_regular_file(path, "a catalogue file")
    try:
        with open(path, "rb") as f:
            data = f.read(CATALOGUE_LIMIT + 1)
    except OSError as e:
        raise UserError(f"{path}: cannot read the catalogue ({e.strerror})") from None
    if len(data) > CATALOGUE_LIMIT:
        raise UserError(f"{path}: larger than {CATALOGUE_LIMIT / MiB:g} MiB, not a Gutenberg catalogue")
    return data
