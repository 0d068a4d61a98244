"""The one HTTP fetcher every downloader uses: resumable, verified, retried, with a MB/s bar.

A file is written as `<name>.part` and renamed to its final name only once it is complete
and matches the publisher's checksum, so a file under its final name is always whole and
verified, and a rerun skips it. An interrupted download resumes from the bytes already in
the `.part` with an HTTP Range request. Connection errors, cut bodies, 5xx and 429 answers
are retried with exponential backoff; 4xx answers and checksum mismatches are not (a
mismatching file is removed, so the next run starts it afresh).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

from tqdm import tqdm

from pipeline.common.errors import UserError

if TYPE_CHECKING:
    from lxml import etree

USER_AGENT = "herd-pipeline/0.1 (LLaMA-1 corpus rebuild; pipeline download)"
BLOCK = 1 << 20
RETRYABLE = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError)
T = TypeVar("T")


class PermanentError(Exception):
    """A failure no retry can fix (404, 403, a checksum mismatch); `status` is the HTTP code, if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(UserError):
    """The server says the file is not there (HTTP 404 or 410)."""


@dataclass(frozen=True)
class Checksum:
    """A publisher's checksum of a file: `algorithm` is a hashlib name (sha1, md5, sha256)."""

    algorithm: str
    hexdigest: str


@dataclass
class Retry:
    """How often and how patiently a request is retried."""

    retries: int = 5
    backoff: float = 1.0  # seconds before the first retry; doubles each time

    def run(self, what: str, attempt: Callable[[], T], retryable: tuple[type[BaseException], ...] = RETRYABLE) -> T:
        """`attempt()` until it succeeds; a PermanentError or the last failure is one UserError line."""
        last: BaseException | None = None
        for number in range(self.retries + 1):
            if number:
                time.sleep(self.backoff * 2 ** (number - 1))
            try:
                return attempt()
            except PermanentError as e:
                raise (NotFound if e.status in (404, 410) else UserError)(f"{what}: {e}") from None
            except retryable as e:
                last = e
        raise UserError(f"{what}: failed after {self.retries + 1} attempts ({last}); rerun to resume")


class _SameHostAuth(urllib.request.HTTPRedirectHandler):
    """Follows redirects but drops the Authorization header when one leaves the host: the Hub
    redirects file downloads to a CDN's signed URLs, which must not receive the user's token."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_SameHostAuth)


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def verify(part: Path, dest: Path, checksum: Checksum | None, size: int | None) -> None:
    """Raise PermanentError (removing `part`) unless it has the published size and checksum."""
    if size is not None and part.stat().st_size != size:
        got = part.stat().st_size
        part.unlink()
        raise PermanentError(f"size mismatch: expected {size:,} bytes, got {got:,}; removed, rerun to fetch it again")
    if checksum is not None:
        got_digest = file_digest(part, checksum.algorithm)
        if got_digest.lower() != checksum.hexdigest.lower():
            part.unlink()
            raise PermanentError(f"{checksum.algorithm} mismatch: expected {checksum.hexdigest}, got {got_digest}; "
                                 f"removed, rerun to fetch it again")


def xml_listing(data: bytes, source: str, expected: str) -> etree._Element:
    """The root element of the XML file listing `data` (from `source`), parsed without entities
    or network access; one UserError line saying it is not `expected` when it is not XML."""
    from lxml import etree

    try:
        return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as e:
        raise UserError(f"{source}: not {expected} ({e})") from None


def progress_bar(name: str, total: int | None, initial: int, show: bool | None) -> tqdm:
    """Bytes with SI prefixes, so the rate reads in MB/s."""
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=name,
                disable=None if show is None else not show, leave=False, mininterval=0.5)


@dataclass
class Fetcher:
    """Downloads URLs to files; one instance carries the settings of one command."""

    retry: Retry = field(default_factory=Retry)
    timeout: float = 60.0
    headers: dict[str, str] = field(default_factory=dict)
    show_progress: bool | None = None  # None: a bar only on a terminal

    def fetch(self, url: str, dest: Path, checksum: Checksum | None = None, size: int | None = None) -> Path:
        """`dest`, downloaded from `url` unless already there, verified against `checksum`/`size`."""
        if dest.exists():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")

        def attempt() -> Path:
            self._fetch_once(url, part)
            verify(part, dest, checksum, size)
            os.replace(part, dest)
            return dest

        try:
            return self.retry.run(url, attempt)
        except UserError as e:
            have = part.stat().st_size if part.exists() else 0
            raise type(e)(f"{e} ({dest}: {have:,} bytes kept)" if have else str(e)) from None

    def read(self, url: str) -> bytes:
        """The whole body of a small resource (a listing, a status file), retried like a download."""

        def attempt() -> bytes:
            with self._open(url, {}) as response:
                length = response.headers.get("Content-Length")
                body = response.read()
                if length is not None and len(body) < int(length):
                    raise ConnectionError(f"connection closed after {len(body):,} of {int(length):,} bytes")
                return body

        return self.retry.run(url, attempt)

    def _open(self, url: str, extra: dict[str, str]) -> http.client.HTTPResponse:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **self.headers, **extra})
        try:
            return _OPENER.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            e.close()
            if 400 <= e.code < 500 and e.code not in (408, 429):
                raise PermanentError(f"HTTP {e.code} {e.reason}", e.code) from None
            raise

    def _fetch_once(self, url: str, part: Path) -> None:
        have = part.stat().st_size if part.exists() else 0
        try:
            response = self._open(url, {"Range": f"bytes={have}-"} if have else {})
        except PermanentError as e:
            if have and e.status == 416:  # nothing after what we have: the part is complete
                return
            raise
        with response:
            if have and response.status != 206:
                have = 0  # the server ignored the range: start over
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            with open(part, "ab" if have else "wb") as out, progress_bar(
                part.name.removesuffix(".part"), total, have, self.show_progress
            ) as bar:
                received = 0
                while block := response.read(BLOCK):
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
            if length is not None and received < int(length):
                raise ConnectionError(f"connection closed after {have + received:,} of {total:,} bytes")
