"""The one HTTP fetcher every downloader uses: resumable, verified, retried, with a MB/s bar.

A file is written as `<name>.part` and renamed to its final name only once it is complete
and matches the publisher's checksum, so a file under its final name is always whole and
verified, and a rerun skips it. An interrupted download resumes from the bytes already in
the `.part` with an HTTP Range request, spliced only onto the same version of the file: the
ETag (or Last-Modified) of the first part is kept beside it (`<name>.part.version`) and sent
as If-Range, and a 200, or a 206 of another version or of other bytes, starts the file over.
Connection errors, cut bodies, 5xx and 429 answers are retried with exponential backoff; 4xx
answers, checksum mismatches and bytes that are not the file's format (an error page served
with status 200) are not (such a file is removed, so the next run starts it afresh).

Where no listed size or checksum is given, a body's end needs a witness: a Content-Length it
reached, a chunked body's final chunk (http.client raises IncompleteRead on a body closed without
it), or the downloader's own check (a gzip trailer, a Parquet footer, a book's end marker). A body
sent with neither header ends wherever the connection closed, whole or not: it is refused unless
the downloader's `end_check` or `check` finds its end (`verify`), and a file already under its
final name whose verification left no record (below) must show its end to `end_check` again.

A file already under its final name is verified again on a rerun (its format, its listed size
and checksum), never trusted for existing: one that fails is named in one line and fetched again.
A verification is recorded on the file itself (an extended attribute, `user.herd.sealed`: its
size, modification time and what it was checked against), so that resuming a download of
thousands of files does not hash or inflate again each one already checked; a file written since
(another size or time) or checked against another listing is verified again. Where the file
system keeps no extended attributes every rerun verifies every file.

Only http(s) URLs are opened, redirects included: a `file://` URL from a listing never copies
a local file. Every body is bounded: a listing by the limit its reader gives, a file by its
listed size, and a listed size by the limit of its kind (a listing cannot lift the bound).
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

from tqdm import tqdm

from pipeline.commands.download.untrusted import (
    GiB, MiB, PacedHTTPHandler, PacedHTTPSHandler, ascii_int, format_problem, paced_reads, plain, read_bounded,
    shown, size_text, too_large, url_problem,
)
from pipeline.common.errors import OUT_OF_SPACE, UserError
from pipeline.common.files import seal, sealed, with_path

if TYPE_CHECKING:
    from lxml import etree

USER_AGENT = "herd-pipeline/0.1 (LLaMA-1 corpus rebuild; pipeline download)"
BLOCK = 1 << 20
RETRYABLE = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError)
LISTING_LIMIT = 16 * MiB  # a listing read whole: the largest real one (arXiv's manifest) is about 3 MB
UNLISTED_LIMIT = 4 * GiB  # a file whose listing gives no size
CONTENT_RANGE = re.compile(r"bytes ([0-9]{1,20})-([0-9]{1,20})/([0-9]{1,20}|\*)")
HEADER_TEXT = re.compile(r"[ -~]{1,512}")  # a validator sent back in If-Range: printable ASCII
T = TypeVar("T")
Check = Callable[[Path], "str | None"]  # a downloader's own check of a whole file: why it is not whole, or None
# Why a body sent with no stated length (no Content-Length, not chunked) is refused where nothing
# else shows its end: the connection's close ends it wherever the server stopped.
UNSTATED = "sent without a Content-Length and {why}: it may be cut short"
NO_WITNESS = "no listed size, checksum or check of its format shows its end"


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
                if local_file_error(e):  # a full disk or an unwritable folder: no retry mends it
                    raise
                last = e
        raise UserError(f"{what}: failed after {self.retries + 1} attempts ({plain(last, 200)}); rerun to resume")


# Failures of this machine's files, not of the connection (a socket error names no file).
LOCAL_ERRNOS = OUT_OF_SPACE | {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG, errno.EISDIR,
                               errno.ENOTDIR, errno.ENOENT}


def local_file_error(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.filename is not None and error.errno in LOCAL_ERRNOS


class _SameHostAuth(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) URLs only, and drops the Authorization header when one
    leaves the host: the Hub redirects file downloads to a CDN's signed URLs, which must not
    receive the user's token."""

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("Location") or headers.get("URI")
        problem = url_problem(urllib.parse.urljoin(req.full_url, location)) if location else None
        if problem is not None:  # urllib itself would follow ftp://, and retry a file:// redirect
            fp.close()
            raise PermanentError(f"redirected to {problem}; refused")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        # The scheme counts too: an https URL redirected to http on the same host would send the
        # token in clear text.
        there, here = urllib.parse.urlsplit(newurl), urllib.parse.urlsplit(req.full_url)
        if new is not None and (there.scheme, there.netloc) != (here.scheme, here.netloc):
            new.remove_header("Authorization")
        return new


def _http_only_opener() -> urllib.request.OpenerDirector:
    """build_opener's chain without its file:, ftp: and data: handlers (a server's URL is
    never a way to read a local file), and with paced http(s) handlers (no trickle holds a
    request, its headers included)."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(), PacedHTTPHandler(),
                    PacedHTTPSHandler(), urllib.request.HTTPDefaultErrorHandler(), _SameHostAuth(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


_OPENER = _http_only_opener()


@dataclass(frozen=True)
class Version:
    """Which version of a remote file the bytes of a `.part` came from: the strong ETag the
    server sent with them, else their Last-Modified (`header` says which)."""

    header: str
    value: str

    @staticmethod
    def of(headers: Message | dict[str, str]) -> Version | None:
        etag = headers.get("ETag")
        if etag and not etag.startswith("W/") and HEADER_TEXT.fullmatch(etag):
            return Version("ETag", etag)  # a weak ETag never matches an If-Range
        modified = headers.get("Last-Modified")
        return Version("Last-Modified", modified) if modified and HEADER_TEXT.fullmatch(modified) else None

    @staticmethod
    def beside(part: Path) -> Path:
        return part.with_name(part.name + ".version")

    @staticmethod
    def load(part: Path) -> Version | None:
        try:
            stored = json.loads(Version.beside(part).read_text())
            version = Version(stored["header"], stored["value"])
        except (OSError, ValueError, TypeError, KeyError):
            return None  # none kept (a part from an older herd), or unreadable: resumed on the Range alone
        ok = version.header in ("ETag", "Last-Modified") and HEADER_TEXT.fullmatch(str(version.value))
        return version if ok else None

    @staticmethod
    def save(part: Path, version: Version | None) -> None:
        if version is None:
            Version.beside(part).unlink(missing_ok=True)
        else:
            Version.beside(part).write_text(json.dumps({"header": version.header, "value": version.value}) + "\n")


def discard(part: Path) -> None:
    """Remove a `.part` and the version kept beside it."""
    part.unlink(missing_ok=True)
    Version.beside(part).unlink(missing_ok=True)


def commit(part: Path, dest: Path) -> Path:
    """The verified part under its final name."""
    os.replace(part, dest)
    Version.beside(part).unlink(missing_ok=True)
    return dest


def content_length(headers: Message) -> int | None:
    """The Content-Length header in ASCII digits; another value is refused, never guessed at."""
    value = headers.get("Content-Length")
    if value is None:
        return None
    length = ascii_int(value)
    if length is None:
        raise PermanentError(f"a Content-Length that is no number of bytes ({shown(value)}); refused")
    return length


def write_part(part: Path, have: int, read: Callable[[int], bytes], length: int | None, cap: int,
               show_progress: bool | None) -> None:
    """A response body (`length` bytes, when the server said) after the first `have` bytes of
    `part` (all of it when `have` is 0). Past `cap` bytes (the listed size, or a limit) the part
    is removed and the body refused as it arrives, so a body that never ends fills no disk; a
    body cut short is a ConnectionError, retried from where it stopped."""
    total = have + length if length is not None else None
    received = 0
    try:
        if total is not None and total > cap:
            raise _past(cap)
        try:
            out = open(part, "ab" if have else "wb")
        except OSError as e:
            raise with_path(e, part) from e
        with out, progress_bar(part.name.removesuffix(".part"), total, have, show_progress) as bar:
            while block := read(BLOCK):
                received += len(block)
                if have + received > cap:
                    raise _past(cap)
                try:
                    out.write(block)
                except OSError as e:  # named, so that Retry tells it from a network error
                    raise with_path(e, part) from e
                bar.update(len(block))
    except _TooLarge:
        discard(part)
        raise
    if length is not None and received < length:
        raise ConnectionError(f"connection closed after {have + received:,} of {total:,} bytes")


def continues(content_range: str | None, have: int, served: str | None, version: Version | None) -> bool:
    """Whether a partial answer (its Content-Range, and its `version.header` value `served`)
    holds the bytes from `have` on of the version the part came from: only then is it spliced on."""
    span = CONTENT_RANGE.fullmatch(content_range or "")
    if span is None or int(span[1]) != have:
        return False
    return version is None or served == version.value


class _TooLarge(PermanentError):
    """A body past its listed size or limit: the part is removed."""


def _past(cap: int) -> _TooLarge:
    return _TooLarge(f"larger than {size_text(cap)} (its listed size, or the most herd fetches of such a file); "
                     f"removed")


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def verify(part: Path, dest: Path, checksum: Checksum | None, size: int | None, check: Check | None = None,
           end_check: Check | None = None, stated: bool = True) -> None:
    """Raise PermanentError (removing `part`) unless it is of the format `dest`'s name says (not an
    error page served with status 200), has the published size and checksum, and passes `check`;
    and, when no header `stated` its length and no size or checksum was listed, unless `end_check`
    (else `check`) shows its end."""
    problem = format_problem(part, dest.name)
    if problem is not None:
        discard(part)
        raise PermanentError(f"{problem}; removed")
    if size is not None and part.stat().st_size != size:
        got = part.stat().st_size
        discard(part)
        raise PermanentError(f"size mismatch: expected {size:,} bytes, got {got:,}; removed, rerun to fetch it again")
    if checksum is not None:
        got_digest = file_digest(part, checksum.algorithm)
        if got_digest.lower() != checksum.hexdigest.lower():
            discard(part)
            raise PermanentError(f"{checksum.algorithm} mismatch: expected {checksum.hexdigest}, got {got_digest}; "
                                 f"removed, rerun to fetch it again")
    problem = check(part) if check is not None else None
    if problem is None and not stated and size is None and checksum is None:
        problem = _unwitnessed_end(part, check, end_check)
    if problem is not None:
        discard(part)
        raise PermanentError(f"{problem}; removed, rerun to fetch it again")
    record_verified(part, checksum, check, end_check)


def _unwitnessed_end(part: Path, check: Check | None, end_check: Check | None) -> str | None:
    """Why a body whose length no header stated, and no listing gave, may be cut short: its
    `end_check` finds no end, or nothing (no `check` of its format either) can tell; else None."""
    if end_check is None and check is not None:
        return None  # the format's own check (a gzip trailer, a Parquet footer) has found its end
    why = end_check(part) if end_check is not None else NO_WITNESS
    return UNSTATED.format(why=why) if why is not None else None


def _verification(checksum: Checksum | None, check: Check | None, end_check: Check | None = None) -> str:
    """What a verification establishes, as sealed on the file (pipeline/common/files.py seal). With
    an `end_check`, that the body's end was witnessed (a header, or the check): a seal of an older
    herd, which kept a body of unstated length as whole, names none and counts for nothing."""
    against = [checksum.algorithm, checksum.hexdigest.lower()] if checksum else []
    ends = [end_check.__name__] if end_check is not None else []
    return json.dumps(["download", against, getattr(check, "__name__", ""), *ends])


def record_verified(path: Path, checksum: Checksum | None, check: Check | None = None,
                    end_check: Check | None = None) -> None:
    """Record on `path` that it passed verification (kept across the rename that commits it)."""
    seal(path, _verification(checksum, check, end_check))


def verified_before(path: Path, checksum: Checksum | None, check: Check | None = None,
                    end_check: Check | None = None) -> bool:
    """Whether `path` is unchanged since a verification against the same checksums and checks."""
    return sealed(path, _verification(checksum, check, end_check)) is True


def refuse_listed_size(url: str, size: int | None, limit: int) -> None:
    """A listed size is the cap of the body: one past `limit` (a listing claiming exabytes) would let a
    body that never ends fill the disk, so it is refused before any request."""
    if size is not None and size > limit:
        raise UserError(f"{url}: listed as {size:,} bytes, more than {size_text(limit)}, the most herd fetches of "
                        f"such a file; refused")


def kept(dest: Path, checksum: Checksum | None, size: int | None, check: Check | None = None,
         end_check: Check | None = None) -> bool:
    """Whether the file at `dest` is there and is the published one. Its existence proves nothing: a
    copy left by an older herd or another tool, a listing that changed since, a crash that kept the
    rename but not the bytes. One that fails is named in one line (stdout) and set aside: as the
    `.part` to resume when it is shorter than listed (the checksum then judges the splice), else
    removed, so the caller fetches it again. With no size or checksum listed, one whose seal does
    not record a witnessed end (`verify`) must show its end to `end_check`: whether a header stated
    its length when it came is known no more."""
    if not dest.is_file():
        return False
    have = dest.stat().st_size
    problem, resumable = format_problem(dest, dest.name), False
    if problem is None and size is not None and have != size:
        problem, resumable = f"{have:,} bytes where the listing says {size:,}", have < size and checksum is not None
    if problem is None and verified_before(dest, checksum, check, end_check):
        return True  # checked by an earlier run and not written since: hashing it again proves nothing more
    if problem is None and checksum is not None:
        digest = file_digest(dest, checksum.algorithm)
        if digest != checksum.hexdigest.lower():
            problem = f"{checksum.algorithm} {digest} where the listing says {checksum.hexdigest.lower()}"
    if problem is None and check is not None:
        problem = check(dest)
    if problem is None and end_check is not None and size is None and checksum is None:
        why = end_check(dest)
        problem = f"{why}, and no record that a header stated its length: it may be cut short" if why else None
    if problem is None:
        record_verified(dest, checksum, check, end_check)
        return True
    part = dest.with_name(dest.name + ".part")
    discard(part)
    if resumable:
        os.replace(dest, part)
    else:
        dest.unlink()
    print(f"{dest}: {problem}; {'resumed' if resumable else 'fetched again'}", flush=True)
    return False


def xml_listing(data: bytes, source: str, expected: str) -> etree._Element:
    """The root element of the XML file listing `data` (from `source`), parsed without entities
    or network access; one UserError line saying it is not `expected` when it is not XML."""
    from lxml import etree

    try:
        return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as e:
        raise UserError(f"{source}: not {expected} ({plain(e, 120)})") from None


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

    def fetch(self, url: str, dest: Path, checksum: Checksum | None = None, size: int | None = None,
              limit: int = UNLISTED_LIMIT, check: Check | None = None, end_check: Check | None = None) -> Path:
        """`dest`, downloaded from `url` unless already there and verified, verified against
        `checksum`/`size` and `check`, and its end shown by `end_check` where nothing else shows it
        (see the module's docstring); a body past `size` (or, without one, past `limit`) is refused as
        it arrives, and a `size` past `limit` before any request."""
        refuse_listed_size(url, size, limit)
        if kept(dest, checksum, size, check, end_check):
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")

        def attempt() -> Path:
            stated = self._fetch_once(url, part, size if size is not None else limit)
            verify(part, dest, checksum, size, check, end_check, stated)
            return commit(part, dest)

        try:
            return self.retry.run(url, attempt)
        except UserError as e:
            have = part.stat().st_size if part.exists() else 0
            raise type(e)(f"{e} ({dest}: {have:,} bytes kept)" if have else str(e)) from None

    def read(self, url: str, limit: int = LISTING_LIMIT, what: str = "the listing", ends_itself: bool = True) -> bytes:
        """The whole body of a listing or status file, retried like a download; past `limit`
        bytes it is refused (a listing that never ends). A format that shows no end of its own
        (CSV, where JSON and XML fail to parse when cut) is refused when no header states its
        length (`ends_itself` False): a catalogue cut short would pass for a shorter one."""
        return self.read_with_headers(url, limit, what, ends_itself)[0]

    def read_with_headers(self, url: str, limit: int = LISTING_LIMIT, what: str = "the listing",
                          ends_itself: bool = True) -> tuple[bytes, Message]:
        def attempt() -> tuple[bytes, Message]:
            with self._open(url, {}) as response:
                length = content_length(response.headers)
                if length is not None and length > limit:
                    raise too_large(url, what, limit)
                body = read_bounded(response, limit, url, what)  # one that never ends: refused at `limit`
                if length is not None and len(body) < length:
                    raise ConnectionError(f"connection closed after {len(body):,} of {length:,} bytes")
                if not ends_itself and length is None and not response.chunked:
                    raise PermanentError(UNSTATED.format(why=f"{what} shows no end of its own") + "; refused")
                return body, response.headers

        return self.retry.run(url, attempt)

    def _open(self, url: str, extra: dict[str, str]) -> http.client.HTTPResponse:
        problem = url_problem(url)
        if problem is not None:
            raise PermanentError(f"{problem}; refused")
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **self.headers, **extra})
        try:
            return _OPENER.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            e.close()
            # A redirect urllib gave up on is the server's answer each time: not retried, as a 4xx is not.
            if 300 <= e.code < 400:
                raise PermanentError(f"HTTP {e.code}: a redirect that leads nowhere (in a loop, more than "
                                     f"{urllib.request.HTTPRedirectHandler.max_redirections} times, or with no "
                                     "Location)", e.code) from None
            if 400 <= e.code < 500 and e.code not in (408, 429):
                raise PermanentError(f"HTTP {e.code} {plain(e.reason)}", e.code) from None
            raise

    def _fetch_once(self, url: str, part: Path, cap: int) -> bool:
        """The rest of `part` from `url`; whether a header stated the length of the body that ended it
        (a Content-Length it reached, or a chunked body's final chunk, which http.client requires)."""
        have = part.stat().st_size if part.exists() else 0
        version = Version.load(part) if have else None
        resume = {"Range": f"bytes={have}-", **({"If-Range": version.value} if version else {})} if have else {}
        try:
            response = self._open(url, resume)
        except PermanentError as e:
            if have and e.status == 416:  # nothing after what we have, says the server: which states no length
                return False
            raise
        if have and response.status == 206 and not continues(
                response.headers.get("Content-Range"), have, response.headers.get(version.header) if version else None,
                version):
            # A 206 of another version of the file, or of other bytes: never spliced on.
            response.close()
            discard(part)
            have, response = 0, self._open(url, {})
        with response:
            if have and response.status != 206:
                have = 0  # a 200: the server ignored the range, or the file changed: start over
            length = content_length(response.headers)
            if not have:
                Version.save(part, Version.of(response.headers))
            write_part(part, have, paced_reads(response), length, cap, self.show_progress)
            return length is not None or response.chunked
