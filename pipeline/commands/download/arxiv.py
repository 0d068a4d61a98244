"""`pipeline download arxiv`: arXiv's bulk source archives from the requester-pays S3 bucket
`arxiv` (you pay the transfer; boto3 finds your AWS credentials as usual), unpacked into one
`.tar.gz` (a paper of several files) or `.gz` (a single .tex) per paper under
`data/raw/arxiv/<yymm>/`, as `pipeline run arxiv` reads them.

`src/arXiv_src_manifest.xml` lists the archives (`src/arXiv_src_YYMM_NNN.tar`, about 500 MB
each) with their md5 and size; each is fetched to `<name>.fetched` through a `.part` that a
rerun resumes with a ranged GET, checked, unpacked, and then removed (--keep-tars keeps it).
PDF-only submissions are counted and left out. `--endpoint-url` points at an S3-compatible
mirror or test server.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.commands.download.fetch import Checksum, PermanentError, Retry, progress_bar, verify, xml_listing
from pipeline.commands.download.options import add_common, say
from pipeline.common.errors import UserError

BUCKET = "arxiv"
MANIFEST = "src/arXiv_src_manifest.xml"
PAPER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
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
    for node in root.iter("file"):
        key, yymm, size, md5 = (node.findtext(t) for t in ("filename", "yymm", "size", "md5sum"))
        if not (key and yymm and size and size.isdigit() and md5):
            raise UserError(f"{source}: an entry lacks filename, yymm, size or md5sum")
        tars.append(SourceTar(key.strip(), yymm.strip(), int(size), md5.strip()))
    if not tars:
        raise UserError(f"{source}: lists no archives")
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
            code = e.response.get("Error", {}).get("Code", "")
            if status == 416 or code == "InvalidRange":
                return None
            if status and 400 <= status < 500 and status not in (408, 429):
                raise PermanentError(f"HTTP {status} {code}", 404 if code == "NoSuchKey" else status) from None
            raise _Transient(f"HTTP {status} {code}") from None

    def read(self, key: str) -> bytes:
        def attempt() -> bytes:
            response = self._get(key)
            return response["Body"].read()

        return self.retry.run(f"s3://{self.bucket}/{key}", attempt, self.retryable)

    def fetch(self, key: str, dest: Path, checksum: Checksum | None, size: int | None) -> Path:
        if dest.exists():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")

        def attempt() -> Path:
            have = part.stat().st_size if part.exists() else 0
            response = self._get(key, have)
            if response is not None:  # None: the range starts at the end, the part is whole
                length = response["ContentLength"]
                with open(part, "ab" if have else "wb") as out, progress_bar(
                        dest.name, have + length, have, self.show_progress) as bar:
                    received = 0
                    body = response["Body"]
                    while block := body.read(BLOCK):
                        out.write(block)
                        received += len(block)
                        bar.update(len(block))
                if received < length:
                    raise ConnectionError(f"connection closed after {have + received:,} of {have + length:,} bytes")
            verify(part, dest, checksum, size)
            os.replace(part, dest)
            return dest

        return self.retry.run(f"s3://{self.bucket}/{key}", attempt, self.retryable)


class _Transient(Exception):
    """A server-side S3 error (5xx, throttling) worth retrying."""


def unpack(tar_path: Path, out: Path) -> dict[str, int]:
    """Each `<yymm>/<paper>.gz` member of an arXiv source archive as `out/<yymm>/<paper>.tar.gz`
    (when it holds a tar) or `.gz` (a single gzipped .tex); other members are counted."""
    counts = {"papers": 0, "pdf_only": 0, "other": 0}
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
                if not name.endswith(".gz") or not PAPER_NAME.match(stem):
                    counts["other"] += 1
                    continue
                folder = member.name.rsplit("/", 2)[-2] if "/" in member.name else "papers"
                folder = folder if PAPER_NAME.match(folder) else "papers"
                data = archive.extractfile(member).read()
                suffix = ".tar.gz" if _holds_tar(data) else ".gz"
                dest = out / folder / (stem + suffix)
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = dest.with_name(dest.name + ".tmp")
                tmp.write_bytes(data)
                os.replace(tmp, dest)
                counts["papers"] += 1
    except (tarfile.TarError, EOFError) as e:
        raise UserError(f"{tar_path}: not a readable tar archive ({e})") from None
    return counts


def _holds_tar(gzipped: bytes) -> bool:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(gzipped)) as f:
            head = f.read(512)
    except (OSError, EOFError):
        return False
    return len(head) >= 262 and head[257:262] == b"ustar"


def run(a: argparse.Namespace) -> list[Path]:
    if a.files < 1 or a.offset < 0 or a.retries < 0:
        raise UserError("--files must be at least 1, --offset and --retries at least 0")
    out = Path(a.out)
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
        counts = unpack(fetched, out)
        marker.write_text(json.dumps(counts) + "\n")
        if not a.keep_tars:
            fetched.unlink()
        say(a, f"  {counts['papers']:,} papers, {counts['pdf_only']:,} PDF-only left out")
        unpacked.append(marker)
    print(f"{len(unpacked)} arXiv archive(s) unpacked into {out}")
    return unpacked
