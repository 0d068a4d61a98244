"""`pipeline download wikipedia`: the pages-articles multistream dumps of the chosen languages
for one dump date, with their index files, into `data/raw/wikipedia/`.

For each language, Wikimedia's `<lang>wiki/<date>/dumpstatus.json` lists the files of the
`articlesmultistreamdump` job (the dump parts `...-multistreamN.xml-pA pB.bz2` and their
`...-multistream-indexN.txt-pApB.bz2`, or one file and one index for smaller wikis) with
their sizes and sha1; every file is checked against both. The index lets `pipeline run`
split a dump into byte ranges of whole bz2 streams (pipeline/formats/multistream.py).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from pipeline.commands.download.fetch import Checksum
from pipeline.commands.download.options import add_common, fetcher, say
from pipeline.common.errors import UserError
from pipeline.engine.registry import source_class

WIKIMEDIA_BASE = "https://dumps.wikimedia.org"
JOB = "articlesmultistreamdump"
DATE = re.compile(r"^\d{8}$")
LANGUAGE = re.compile(r"^[a-z][a-z0-9_]*$")


DESCRIPTION = "Fetch Wikipedia pages-articles multistream dumps and their indexes."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--date", required=True, help="dump date YYYYMMDD (the paper used June-August 2022 dumps; "
                   "Wikimedia keeps the last few months, older ones are on mirrors)")
    paper_languages = list(source_class("wikipedia").config_class().languages)  # the source's default: the paper's 20
    p.add_argument("--languages", nargs="+", default=paper_languages,
                   help="wiki language codes (default: the paper's 20: %(default)s)")
    add_common(p, "data/raw/wikipedia", WIKIMEDIA_BASE)


def dump_files(status: dict, source: str) -> dict[str, dict]:
    """The multistream job's files from a parsed dumpstatus.json; a job not done is an error."""
    job = status.get("jobs", {}).get(JOB) if isinstance(status, dict) else None
    if not isinstance(job, dict):
        raise UserError(f"{source}: no {JOB} job in the dump status")
    if job.get("status") != "done":
        raise UserError(f"{source}: the {JOB} job is '{job.get('status')}', not done; pick another --date")
    files = job.get("files") or {}
    if not files:
        raise UserError(f"{source}: the {JOB} job lists no files")
    return files


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
        status_url = f"{base}/{lang}wiki/{a.date}/dumpstatus.json"
        try:
            status = json.loads(get.read(status_url))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{status_url}: not a JSON dump status ({e})") from None
        files = dump_files(status, status_url)
        for number, (name, info) in enumerate(sorted(files.items()), 1):
            if "/" in name or not name.startswith(f"{lang}wiki-{a.date}-"):
                raise UserError(f"{status_url}: unexpected file name {name!r}")
            url = info.get("url") or f"/{lang}wiki/{a.date}/{name}"
            checksum = Checksum("sha1", info["sha1"]) if info.get("sha1") else None
            dest = out / name
            say(a, f"[{lang} {number}/{len(files)}] {dest}")
            written.append(get.fetch(base + url if url.startswith("/") else url, dest, checksum, info.get("size")))
    print(f"{len(written)} file(s) of {len(a.languages)} wiki(s) of {a.date} in {out}")
    return written
