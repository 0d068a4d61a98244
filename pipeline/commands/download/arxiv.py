"""`pipeline download arxiv`: arXiv's bulk source archives from the requester-pays S3 bucket
`arxiv` (you pay the transfer; boto3 finds your AWS credentials as usual), unpacked into one
`.tar.gz` (a paper of several files) or `.gz` (a single .tex) per paper under
`data/raw/arxiv/<yymm>/`, as `pipeline run arxiv` reads them.

`src/arXiv_src_manifest.xml` lists the archives (`src/arXiv_src_YYMM_NNN.tar`, about 500 MB
each) with their md5 and size; each is fetched to `<name>.fetched` through a `.part` that a
rerun resumes with a ranged GET (spliced on only when the answer has the ETag of the first
part: a changed archive starts over), checked, unpacked a member at a time, and then removed
(--keep-tars keeps it). PDF-only submissions are counted and left out. `--endpoint-url` points at an S3-compatible
mirror or test server.

The manifest is read bounded (16 MiB; the real one is about 3 MB) and each entry is checked
(key, yymm, size in ASCII digits, md5 in hex; a size past 16 GiB is refused); a paper of more than
512 MiB (arXiv caps a submission at 50 MB; a sparse tar member can claim gigabytes behind a valid
md5) is refused. A member is unpacked only into a YYMM folder (`papers/` for one in another), so an
archive's names can never land on herd's own `.fetched`, `.part` or `.unpacked` files beside it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.commands.download.fetch import (
    LISTING_LIMIT, Checksum, PermanentError, Retry, Version, commit, continues, discard, kept, refuse_listed_size,
    verify, write_part, xml_listing,
)
from pipeline.commands.download.options import RETRIES, add_common, say
from pipeline.commands.download.untrusted import (
    NAME_LIMIT, GiB, MiB, ascii_int, hex_digest, paced_reads, plain, read_bounded, refused, shown, size_text,
    too_large,
)
from pipeline.common.config import Count, Positive, check_flags
from pipeline.common.errors import UserError
from pipeline.common.files import check_output_folder

BUCKET = "arxiv"
MANIFEST = "src/arXiv_src_manifest.xml"
PAPER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
ARCHIVE_KEY = re.compile(r"src/arXiv_src_[0-9]{4}_[0-9]{3}\.tar")
YYMM = re.compile(r"[0-9]{4}")
PAPER_LIMIT = 512 * MiB
TAR_LIMIT = 16 * GiB  # the largest listed size herd believes: the archives are about 500 MB
BLOCK = 1 << 20


@dataclass(frozen=True)
class SourceTar:
    key: str
    yymm: str
    size: int
    md5: str


DESCRIPTION = "Fetch arXiv source archives from the requester-pays S3 bucket."


def add_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group()
    which.add_argument("--months", nargs="+", help="every archive of these months, YYMM (e.g. 2301 2302)")
    which.add_argument("--files", type=int, default=1, help="the first N archives of the manifest "
                       "(from --offset; default %(default)s)")
    p.add_argument("--offset", type=int, default=0, help="with --files: skip this many archives first")
    p.add_argument("--bucket", default=BUCKET, help="(default %(default)s)")
    p.add_argument("--endpoint-url", help="an S3-compatible endpoint instead of AWS (a mirror or test server)")
    p.add_argument("--keep-tars", action="store_true", help="keep each archive after unpacking it")
    add_common(p, "data/raw/arxiv", None)


def parse_manifest(data: bytes, source: str) -> list[SourceTar]:
    root = xml_listing(data, source, "the arXiv source manifest")
    tars = []
    for number, node in enumerate(root.iter("file"), 1):
        key, yymm, size, md5 = ((node.findtext(t) or "").strip() for t in ("filename", "yymm", "size", "md5sum"))
        if not (ARCHIVE_KEY.fullmatch(key) and YYMM.fullmatch(yymm) and ascii_int(size) is not None
                and hex_digest(md5, "md5")):
            raise refused(source, f"entry {number} lacks a filename src/arXiv_src_YYMM_NNN.tar ({shown(key)}), "
                          f"yymm, size in ASCII digits ({shown(size)}) or md5sum")
        tars.append(SourceTar(key, yymm, ascii_int(size), md5.lower()))
    if not tars:
        raise refused(source, "lists no archives")
    return tars


class S3Objects:
    """Requester-pays GETs from one bucket, retried like every other download."""

    def __init__(self, bucket: str, endpoint_url: str | None, retry: Retry, show_progress: bool | None) -> None:
        try:
            import boto3
            import botocore.exceptions
        except ModuleNotFoundError:
            raise UserError("pipeline download arxiv needs boto3 (pip install 'herd[s3]')") from None
        self.bucket, self.retry, self.show_progress = bucket, retry, show_progress
        self.client = boto3.client("s3", endpoint_url=endpoint_url)
        self.errors = botocore.exceptions
        self.retryable = (botocore.exceptions.BotoCoreError, ConnectionError, TimeoutError, OSError, _Transient)

    def _get(self, key: str, first_byte: int = 0):
        """The GET response of `key` from `first_byte` on; None when the range starts at the end."""
        args = {"Bucket": self.bucket, "Key": key, "RequestPayer": "requester"}
        if first_byte:
            args["Range"] = f"bytes={first_byte}-"
        try:
            return self.client.get_object(**args)
        except self.errors.NoCredentialsError:
            raise PermanentError("no AWS credentials: the bucket is requester-pays (set AWS_ACCESS_KEY_ID and "
                                 "AWS_SECRET_ACCESS_KEY, or a profile)") from None
        except self.errors.ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = plain(e.response.get("Error", {}).get("Code", ""))
            if status == 416 or code == "InvalidRange":
                return None
            if status and 400 <= status < 500 and status not in (408, 429):
                raise PermanentError(f"HTTP {status} {code}", 404 if code == "NoSuchKey" else status) from None
            raise _Transient(f"HTTP {status} {code}") from None
        except ValueError as e:  # botocore parsing a header that is no number, a date that is none
            raise PermanentError(f"an answer herd cannot parse ({plain(e)})") from None

    def read(self, key: str, limit: int = LISTING_LIMIT, what: str = "the manifest") -> bytes:
        url = f"s3://{self.bucket}/{key}"

        def attempt() -> bytes:
            response = self._get(key)
            if response.get("ContentLength", 0) > limit:
                raise too_large(url, what, limit)
            return read_bounded(response["Body"], limit, url, what)

        return self.retry.run(url, attempt, self.retryable)

    def fetch(self, key: str, dest: Path, checksum: Checksum | None, size: int, limit: int = TAR_LIMIT) -> Path:
        refuse_listed_size(f"s3://{self.bucket}/{key}", size, limit)
        if kept(dest, checksum, size):
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")

        def attempt() -> Path:
            have = part.stat().st_size if part.exists() else 0
            version = Version.load(part) if have else None
            response = self._get(key, have)
            if have and response is not None and not continues(
                    response.get("ContentRange"), have, response.get("ETag"), version):
                # Another version of the archive (its ETag changed), or other bytes: never spliced on.
                response["Body"].close()
                discard(part)
                have, response = 0, self._get(key)
            if response is not None:  # None: the range starts at the end, the part is whole
                if not have:
                    Version.save(part, Version.of({"ETag": response.get("ETag") or ""}))
                write_part(part, have, paced_reads(response["Body"]), response.get("ContentLength"), size,
                           self.show_progress)
            verify(part, dest, checksum, size)
            return commit(part, dest)

        return self.retry.run(f"s3://{self.bucket}/{key}", attempt, self.retryable)


class _Transient(Exception):
    """A server-side S3 error (5xx, throttling) worth retrying."""


def unpack(tar_path: Path, out: Path, source: str) -> dict[str, int]:
    """Each `<yymm>/<paper>.gz` member of an arXiv source archive (from `source`) as
    `out/<yymm>/<paper>.tar.gz` (when it holds a tar) or `.gz` (a single gzipped .tex), copied a
    block at a time; other members are counted. A member over PAPER_LIMIT refuses the archive."""
    counts = {"papers": 0, "pdf_only": 0, "other": 0}
    # A regular member's bytes are stored in the tar as they are: all of them together fit in it.
    # Only a sparse member (its holes stored as a map, not as bytes) unpacks to more: a 5 KB tar of
    # four 500 MiB sparse members filled 2 GB. No arXiv paper is one.
    budget = tar_path.stat().st_size
    try:
        with tarfile.open(tar_path, "r:") as archive:
            for member in archive:
                name = member.name.rsplit("/", 1)[-1]
                if not member.isfile():
                    continue
                if name.endswith(".pdf"):
                    counts["pdf_only"] += 1
                    continue
                stem = name.removesuffix(".gz")
                if not name.endswith(".gz") or not PAPER_NAME.fullmatch(stem) or len(name) > NAME_LIMIT:
                    counts["other"] += 1
                    continue
                if member.size > PAPER_LIMIT:
                    raise refused(source, f"member {shown(member.name)} holds {member.size:,} bytes, more than "
                                  f"{size_text(PAPER_LIMIT)}, the most herd unpacks of one paper; refused")
                if member.issparse():
                    raise refused(source, f"member {shown(member.name)} is a sparse file ({member.size:,} bytes of "
                                  "mostly holes), which no arXiv paper is; refused")
                budget -= member.size
                if budget < 0:
                    raise refused(source, f"its members unpack to more bytes than the archive holds (at "
                                  f"{shown(member.name)}); refused")
                folder = member.name.rsplit("/", 2)[-2] if "/" in member.name else "papers"
                folder = folder if YYMM.fullmatch(folder) else "papers"
                tmp = out / folder / (stem + ".tmp")
                tmp.parent.mkdir(parents=True, exist_ok=True)
                with archive.extractfile(member) as data, open(tmp, "wb") as copy:
                    shutil.copyfileobj(data, copy, BLOCK)
                suffix = ".tar.gz" if _holds_tar(tmp) else ".gz"
                os.replace(tmp, out / folder / (stem + suffix))
                counts["papers"] += 1
    except (tarfile.TarError, EOFError) as e:
        raise UserError(f"{tar_path}: not a readable tar archive ({plain(e)})") from None
    return counts


def _holds_tar(gzipped: Path) -> bool:
    try:
        with gzip.open(gzipped) as f:
            head = f.read(512)
    except (OSError, EOFError):
        return False
    return len(head) >= 262 and head[257:262] == b"ustar"


def run(a: argparse.Namespace) -> list[Path]:
    check_flags(a, {**RETRIES, "files": Positive, "offset": Count})
    out = Path(a.out)
    check_output_folder(out)  # before the manifest is fetched, not at the first archive
    s3 = S3Objects(a.bucket, a.endpoint_url, Retry(a.retries), False if a.no_progress else None)
    tars = parse_manifest(s3.read(MANIFEST), f"s3://{a.bucket}/{MANIFEST}")
    if a.months:
        chosen = [t for t in tars if t.yymm in set(a.months)]
        if not chosen:
            raise UserError(f"--months {' '.join(a.months)}: no archive of those months in the manifest")
    else:
        chosen = tars[a.offset : a.offset + a.files]
        if not chosen:
            raise UserError(f"the manifest lists {len(tars)} archives; nothing at --offset {a.offset}")
    unpacked = []
    for number, tar in enumerate(chosen, 1):
        name = tar.key.rsplit("/", 1)[-1]
        marker = out / f"{name}.unpacked"
        if marker.exists():
            unpacked.append(marker)
            continue
        say(a, f"[{number}/{len(chosen)}] s3://{a.bucket}/{tar.key} ({tar.size / 1e6:,.0f} MB)")
        fetched = s3.fetch(tar.key, out / f"{name}.fetched", Checksum("md5", tar.md5), tar.size)
        counts = unpack(fetched, out, f"s3://{a.bucket}/{tar.key}")
        marker.write_text(json.dumps(counts) + "\n")
        if not a.keep_tars:
            fetched.unlink()
        say(a, f"  {counts['papers']:,} papers, {counts['pdf_only']:,} PDF-only left out")
        unpacked.append(marker)
    print(f"{len(unpacked)} arXiv archive(s) unpacked into {out}")
    return unpacked
