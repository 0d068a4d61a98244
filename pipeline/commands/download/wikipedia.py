"""`pipeline download wikipedia`: the pages-articles multistream dumps of the chosen languages
for one dump date, with their index files, into `data/raw/wikipedia/`.

For each language, Wikimedia's `<lang>wiki/<date>/dumpstatus.json` lists the files of the
`articlesmultistreamdump` job (the dump parts `...-multistreamN.xml-pA pB.bz2` and their
`...-multistream-indexN.txt-pApB.bz2`, or one file and one index for smaller wikis) with
their sizes and sha1; every file is checked against both, and a listed size past 64 GiB is
refused (the size caps the body, so a listing cannot lift the bound on it). The index lets `pipeline run`
split a dump into byte ranges of whole bz2 streams (pipeline/formats/multistream.py).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.commands.download.fetch import Checksum
from pipeline.commands.download.options import add_common, fetcher, say
from pipeline.commands.download.untrusted import (
    URL_TEXT, GiB, MiB, file_name, hex_digest, json_count, parse_json, refused, shown, url_problem,
)
from pipeline.common.errors import UserError
from pipeline.engine.registry import source_class

WIKIMEDIA_BASE = "https://dumps.wikimedia.org"
JOB = "articlesmultistreamdump"
DATE = re.compile(r"^\d{8}$")
LANGUAGE = re.compile(r"^[a-z][a-z0-9_]*$")
STATUS_LIMIT = 8 * MiB  # a wiki's dumpstatus.json: about 100 KB for the largest
DUMP_LIMIT = 64 * GiB  # the largest listed size herd believes: enwiki's parts are under 1 GB, a whole dump 22 GB


@dataclass(frozen=True)
class DumpFile:
    name: str
    url: str | None  # absolute, or from the root of --base-url; None: beside dumpstatus.json
    size: int
    sha1: str


DESCRIPTION = "Fetch Wikipedia pages-articles multistream dumps and their indexes."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--date", required=True, help="dump date YYYYMMDD (the paper used June-August 2022 dumps; "
                   "Wikimedia keeps the last few months, older ones are on mirrors)")
    paper_languages = list(source_class("wikipedia").config_class().languages)  # the source's default: the paper's 20
    p.add_argument("--languages", nargs="+", default=paper_languages,
                   help="wiki language codes (default: the paper's 20: %(default)s)")
    add_common(p, "data/raw/wikipedia", WIKIMEDIA_BASE)


def dump_files(status: object, source: str, prefix: str) -> list[DumpFile]:
    """The multistream job's files from a parsed dumpstatus.json, sorted by name; a job not done
    is an error, and so is any file without a name starting with `prefix`, a size, a sha1 and an
    http(s) or root-relative URL (a `file://` URL would copy a local file)."""
    jobs = status.get("jobs") if isinstance(status, dict) else None
    job = jobs.get(JOB) if isinstance(jobs, dict) else None
    if not isinstance(job, dict):
        raise refused(source, f"no {JOB} job in the dump status")
    if job.get("status") != "done":
        raise refused(source, f"the {JOB} job is {shown(job.get('status'))}, not done; pick another --date")
    files = job.get("files")
    if not isinstance(files, dict) or not files:
        raise refused(source, f"the {JOB} job lists no files" if not files else f"the {JOB} job's files are not "
                      f"an object of name: {{size, sha1, url}}")
    found = []
    for name, info in sorted(files.items()):
        if not file_name(name) or not name.startswith(prefix) or not name.endswith(".bz2"):
            raise refused(source, f"unexpected file name {shown(name)}")
        if not isinstance(info, dict):
            raise refused(source, f"{name}: not an object of size, sha1 and url")
        size, sha1, url = json_count(info.get("size")), hex_digest(info.get("sha1"), "sha1"), info.get("url")
        if size is None or sha1 is None:
            raise refused(source, f"{name}: no size in bytes ({shown(info.get('size'))}) or no sha1 "
                          f"({shown(info.get('sha1'))})")
        rooted = isinstance(url, str) and url.startswith("/") and not url.startswith("//") and URL_TEXT.fullmatch(url)
        problem = None if url is None or rooted else url_problem(url)
        if problem is not None:
            raise refused(source, f"{name}: {problem}")
        found.append(DumpFile(name, url, size, sha1))
    return found


def run(a: argparse.Namespace) -> list[Path]:
    if not DATE.match(a.date):
        raise UserError(f"--date {a.date!r}: expected YYYYMMDD, e.g. 20220701")
    bad = [lang for lang in a.languages if not LANGUAGE.match(lang)]
    if bad:
        raise UserError(f"--languages: not wiki language codes: {bad}")
    base = a.base_url.rstrip("/")
    out = Path(a.out)
    get = fetcher(a)
    written = []
    for lang in a.languages:
        folder = f"{lang}wiki/{a.date}"
        status_url = f"{base}/{folder}/dumpstatus.json"
        status = parse_json(get.read(status_url, STATUS_LIMIT, "the dump status"), status_url, "a JSON dump status")
        files = dump_files(status, status_url, f"{lang}wiki-{a.date}-")
        for number, file in enumerate(files, 1):
            dest = out / file.name
            say(a, f"[{lang} {number}/{len(files)}] {dest}")
            url = f"{base}/{folder}/{file.name}" if file.url is None else (
                base + file.url if file.url.startswith("/") else file.url)
            written.append(get.fetch(url, dest, Checksum("sha1", file.sha1), file.size, DUMP_LIMIT))
    print(f"{len(written)} file(s) of {len(a.languages)} wiki(s) of {a.date} in {out}")
    return written
