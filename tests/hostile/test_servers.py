"""`pipeline download SOURCE` against hostile servers on 127.0.0.1: every byte a server sends is
untrusted. Listings that never end or inflate without bound, listings of the wrong shape, sizes
in Arabic-Indic digits, NUL bytes, `file://` URLs, error pages served with status 200, a file
that changes between two requests of a resumed download. Each is one `pipeline: error:` line
and exit status 2 naming the URL (or a counted skip), in bounded memory, with nothing wrong
kept under a final name and no local file copied.

Every downloader that reads a listing is covered: commoncrawl (wet.paths.gz), wikipedia
(dumpstatus.json), stackexchange (archive.org's files XML), books (pg_catalog.csv), c4 and
github (the Hub's tree API), arxiv (the S3 manifest; the server stands in for S3)."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import random
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.hostile.helpers import one_error, run_script
from tests.hostile.hostile_server import ERROR_PAGE, HostileServer, endless, file, with_link
from tests.hostile.measure import cli_peak_mb

pytestmark = pytest.mark.slow  # each test runs the CLI, a fresh interpreter, end to end

MiB = 1 << 20
# Measured 26-106 MB: the interpreter with boto3 or pyarrow loaded, and at most the largest listing
# limit (the catalogue's, 64 MiB). Without the bounds these runs take gigabytes, or never end.
PEAK_MB = 200
SNAPSHOT = "CC-MAIN-2020-05"
DATE = "20220701"
WIKI_NAME = f"enwiki-{DATE}-pages-articles-multistream.xml.bz2"
C4_NAME = "c4-train.00000-of-01024.json.gz"
GITHUB_NAME = "train-00000-of-01126.parquet"
ARXIV_KEY = "src/arXiv_src_2301_001.tar"
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
PASSWD = Path("/etc/passwd")  # a local file a `file://` URL would copy


# --- one valid file of each format, in versions that differ all along ----------------------

def wet(version: int) -> bytes:
    record = b"WARC/1.0\r\nWARC-Type: conversion\r\nContent-Length: 12\r\n\r\n"
    return gzip.compress(record + f"page {version}\n".encode() * 5000, mtime=0)


def dump(version: int) -> bytes:
    return bz2.compress(f"<mediawiki><page>{version}</page></mediawiki>\n".encode() * 2000)


def seven_zip(version: int) -> bytes:
    return b"7z\xbc\xaf\x27\x1c" + bytes((i * 7 + version) % 256 for i in range(60_000))


def book(version: int) -> bytes:
    return f"The Project Gutenberg eBook, version {version}\n".encode() * 3000


def c4_file(version: int) -> bytes:
    return gzip.compress(json.dumps({"text": f"document {version} " * 30}).encode() * 500, mtime=0)


def parquet(version: int) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"code": [f"x = {version}_{i}\n" for i in range(2000)], "license": ["mit"] * 2000}), sink)
    return sink.getvalue()


def gz_paper(text: bytes) -> bytes:
    return gzip.compress(b"\\documentclass{article}\\begin{document}" + text + b"\\end{document}\n", mtime=0)


def arxiv_tar(version: int) -> bytes:
    """Three papers of incompressible bytes: over 2 MiB, so that half of it holds whole blocks of
    the 1 MiB a read of boto3's body asks for (a read cut short keeps nothing)."""
    sink = io.BytesIO()
    with tarfile.open(fileobj=sink, mode="w") as archive:
        for n in range(1, 4):
            data = gz_paper(random.Random(version * 10 + n).randbytes(800_000))
            info = tarfile.TarInfo(f"2301/2301.0000{n}.gz")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return sink.getvalue()


# --- where each downloader finds its listing and its one file --------------------------------

@dataclass(frozen=True)
class Site:
    source: str
    listing_path: str  # on the server
    data_path: str
    fetched: str  # the file's name under --out while it downloads (`<fetched>.part`)
    body: Callable[[int], bytes]  # version N of the file
    listing: Callable[[str, bytes], bytes]  # (server URL, the file) -> a listing that describes it
    args: Callable[[str], list[str]]  # server URL -> the source's own arguments
    format: str  # the name a refusal gives the format

    def url(self, server: HostileServer, path: str) -> str:
        return f"s3://arxiv/{path.removeprefix('arxiv/')}" if self.source == "arxiv" else f"{server.url}/{path}"

    def serve(self, server: HostileServer, body: bytes, **answer) -> None:
        """Publish `body` as the file, with a listing that gives its own size and checksum."""
        server.routes[self.listing_path] = file(self.listing(server.url, body))
        server.routes[self.data_path] = file(body, **answer)

    def holds(self, out: Path, body: bytes) -> bool:
        """Whether the download kept `body` (for github: its rows, the column renamed)."""
        if self.source == "github":
            kept = pq.read_table(out / self.fetched.removesuffix(".fetched"))
            sent = pq.read_table(io.BytesIO(body))
            return kept.column("content").to_pylist() == sent.column("code").to_pylist()
        return (out / self.fetched).read_bytes() == body


def wet_paths(url: str, body: bytes) -> bytes:
    return gzip.compress(f"{SITES['commoncrawl'].data_path}\n".encode(), mtime=0)


def dump_status(url: str, body: bytes) -> bytes:
    entry = {"size": len(body), "sha1": hashlib.sha1(body).hexdigest(), "url": f"/enwiki/{DATE}/{WIKI_NAME}"}
    return json.dumps({"jobs": {"articlesmultistreamdump": {"status": "done", "files": {WIKI_NAME: entry}}}}).encode()


def files_xml(url: str, body: bytes, size: str | None = None, sha1: str | None = None,
              name: str = "math.stackexchange.com.7z") -> bytes:
    size = str(len(body)) if size is None else size
    sha1 = hashlib.sha1(body).hexdigest() if sha1 is None else sha1
    return (f'<?xml version="1.0" encoding="UTF-8"?><files><file name="{name}" source="original">'
            f"<size>{size}</size><sha1>{sha1}</sha1></file></files>").encode()


def catalogue(url: str, body: bytes) -> bytes:
    return b"Text#,Type,Issued,Title,Language\n84,Text,1993-10-01,Frankenstein,en\n"


def tree(folder: str, name: str) -> Callable[[str, bytes], bytes]:
    def listing(url: str, body: bytes) -> bytes:
        lfs = {"oid": hashlib.sha256(body).hexdigest(), "size": len(body), "pointerSize": 134}
        return json.dumps([{"type": "directory", "oid": "0" * 40, "size": 0, "path": f"{folder}/sub"},
                           {"type": "file", "oid": "1" * 40, "size": len(body), "path": f"{folder}/{name}",
                            "lfs": lfs}]).encode()

    return listing


def manifest(url: str, body: bytes, key: str = ARXIV_KEY, size: str | None = None, md5: str | None = None) -> bytes:
    size = str(len(body)) if size is None else size
    md5 = hashlib.md5(body).hexdigest() if md5 is None else md5
    return (f"<arXivSRC><file><filename>{key}</filename><md5sum>{md5}</md5sum><size>{size}</size>"
            f"<yymm>2301</yymm></file></arXivSRC>").encode()


SITES = {site.source: site for site in (
    Site("commoncrawl", f"crawl-data/{SNAPSHOT}/wet.paths.gz", f"crawl-data/{SNAPSHOT}/segments/1/wet/a.warc.wet.gz",
         "a.warc.wet.gz", wet, wet_paths, lambda url: ["--snapshot", SNAPSHOT, "--base-url", url], "gzip"),
    Site("wikipedia", f"enwiki/{DATE}/dumpstatus.json", f"enwiki/{DATE}/{WIKI_NAME}", WIKI_NAME, dump, dump_status,
         lambda url: ["--date", DATE, "--languages", "en", "--base-url", url], "bz2"),
    Site("stackexchange", "stackexchange_files.xml", "math.stackexchange.com.7z", "math.stackexchange.com.7z",
         seven_zip, files_xml, lambda url: ["--sites", "math.stackexchange.com", "--base-url", url, "--no-unpack"],
         "7z"),
    Site("books", "catalogue.csv", "8/84/84-0.txt", "pg84.txt", book, catalogue,
         lambda url: ["--catalogue", f"{url}/catalogue.csv", "--delay", "0", "--base-url", url], "plain-text"),
    Site("c4", "api/datasets/allenai/c4/tree/main/en", f"datasets/allenai/c4/resolve/main/en/{C4_NAME}", C4_NAME,
         c4_file, tree("en", C4_NAME), lambda url: ["--endpoint", url], "gzip"),
    Site("github", "api/datasets/codeparrot/github-code/tree/main/data",
         f"datasets/codeparrot/github-code/resolve/main/data/{GITHUB_NAME}", f"{GITHUB_NAME}.fetched", parquet,
         tree("data", GITHUB_NAME), lambda url: ["--endpoint", url], "parquet"),
    Site("arxiv", "arxiv/src/arXiv_src_manifest.xml", f"arxiv/{ARXIV_KEY}", "arXiv_src_2301_001.tar.fetched",
         arxiv_tar, manifest, lambda url: ["--endpoint-url", url, "--keep-tars"], "tar"),
)}
HTTP_SITES = [name for name in SITES if name != "arxiv"]


@pytest.fixture(autouse=True)
def no_aws_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 finds the keys in AWS (the server stands in for S3); a profile of this machine would win."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE",
                 "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


def download(site: Site, server: HostileServer, out: Path, *extra: str):
    """The real `pipeline download SOURCE ...` against `server`, without retries."""
    return run_script("pipeline", "download", site.source, *site.args(server.url), "--out", str(out),
                      "--no-progress", "--retries", "0", *extra, cwd=out.parent, env=AWS)


def download_measured(site: Site, server: HostileServer, out: Path) -> tuple[object, float]:
    return cli_peak_mb("pipeline", "download", site.source, *site.args(server.url), "--out", str(out),
                       "--no-progress", "--retries", "0", cwd=out.parent, env=AWS, timeout=120)


def kept_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} \
        if out.exists() else {}


def nothing_local_copied(out: Path) -> None:
    assert PASSWD.read_bytes() not in kept_files(out).values()


# --- error pages served with status 200 ---------------------------------------------------------

@pytest.mark.parametrize("source", SITES)
def test_an_error_page_served_with_status_200_is_never_kept(source: str, tmp_path: Path) -> None:
    """The listing gives the page's own size and checksum, so only its first bytes can tell."""
    site, out = SITES[source], tmp_path / "out"
    with HostileServer() as server:
        site.serve(server, ERROR_PAGE)
        line = one_error(download(site, server, out), "pipeline")
        url = site.url(server, site.data_path)
    assert line.startswith(f"{url}: not a {site.format} file: it starts with '<!DOCTYPE html>\\n<html><head>")
    assert line.endswith("(an error page?); removed")
    assert ERROR_PAGE not in kept_files(out).values()
    assert not list(out.rglob("*.part")) and not list(out.rglob("*.version"))


LISTING_AS_ERROR_PAGE = {
    "commoncrawl": "not a gzip file: it starts with '<!DOCTYPE html>\\n<html><head><title>503 S' "
                   "(an error page?); removed",
    "wikipedia": "not a JSON dump status (Expecting value: line 1 column 1 (char 0))",
    "stackexchange": "lists no site archives",
    "books": "not Gutenberg's pg_catalog.csv (no Text# column)",
    "c4": "not a Hub file listing (Expecting value: line 1 column 1 (char 0))",
    "github": "not a Hub file listing (Expecting value: line 1 column 1 (char 0))",
    "arxiv": "lists no archives",
}


@pytest.mark.parametrize("source", SITES)
def test_a_listing_that_is_an_error_page_is_one_line(source: str, tmp_path: Path) -> None:
    site, out = SITES[source], tmp_path / "out"
    with HostileServer() as server:
        site.serve(server, site.body(1))
        server.routes[site.listing_path] = file(ERROR_PAGE)
        line = one_error(download(site, server, out), "pipeline")
        listing_url = site.url(server, site.listing_path)
        if source in ("c4", "github"):
            listing_url += "?recursive=false&expand=false"
        assert line == f"{listing_url}: {LISTING_AS_ERROR_PAGE[source]}"
        assert server.gets(site.data_path) == []
    assert kept_files(out) == {}


# --- a resumed download whose file changed on the server -----------------------------------

@pytest.mark.parametrize("honours_if_range", [True, False], ids=["server honours If-Range", "server ignores it"])
@pytest.mark.parametrize("source", SITES)
def test_a_file_changed_between_two_requests_is_never_spliced(source: str, honours_if_range: bool,
                                                              tmp_path: Path) -> None:
    """Version 1 is cut halfway (a run that ends with its part kept); version 2, with a new ETag,
    is there when the download resumes. The result is version 2 whole, never half of each."""
    site, out = SITES[source], tmp_path / "out"
    first, second = site.body(1), site.body(2)
    with HostileServer() as server:
        site.serve(server, first, etag='"v1"', cut_first=True)
        one_error(download(site, server, out), "pipeline")
        kept = (out / f"{site.fetched}.part").read_bytes()
        assert kept and first.startswith(kept) and len(kept) <= len(first) // 2
        site.serve(server, second, etag='"v2"', honour_if_range=honours_if_range)
        done = download(site, server, out)
        assert done.returncode == 0, done.stderr
        resumed = server.gets(site.data_path)[1:]
    assert site.holds(out, second)
    assert resumed[0]["Range"] == f"bytes={len(kept)}-"
    if source == "arxiv":  # S3: boto3 sends no If-Range; the 206's ETag (v2) is checked, and the archive refetched
        assert "If-Range" not in resumed[0] and len(resumed) == 2 and "Range" not in resumed[1]
    elif honours_if_range:  # the server sent version 2 whole (200)
        assert resumed[0]["If-Range"] == '"v1"' and len(resumed) == 1
    else:  # it sent the rest of version 2 (206): closed unread, the file fetched again from its start
        assert resumed[0]["If-Range"] == '"v1"' and len(resumed) == 2 and "Range" not in resumed[1]
    assert not list(out.rglob("*.part")) and not list(out.rglob("*.version"))


@pytest.mark.parametrize("source", HTTP_SITES)
def test_a_206_of_other_bytes_than_asked_is_never_spliced(source: str, tmp_path: Path) -> None:
    """A part kept without a version (from an older herd): the Range alone is sent, and a 206
    whose Content-Range starts elsewhere than where the part ends starts the file over."""
    site, out = SITES[source], tmp_path / "out"
    body = site.body(1)
    out.mkdir()
    (out / f"{site.fetched}.part").write_bytes(body[: len(body) // 2])
    with HostileServer() as server:
        site.serve(server, body)
        server.routes[site.data_path] = _range_from_zero(body)
        done = download(site, server, out)
        assert done.returncode == 0, done.stderr
        gets = server.gets(site.data_path)
    assert site.holds(out, body)
    assert [g.get("Range") for g in gets] == [f"bytes={len(body) // 2}-", None]


def _range_from_zero(body: bytes):
    """Answers every GET with status 206 and the whole file, whatever range was asked."""
    def answer(h) -> None:
        h.send_response(206)
        h.send_header("Content-Range", f"bytes 0-{len(body) - 1}/{len(body)}")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return answer


# --- listings that never end, or inflate without bound ------------------------------------------

NEVER_ENDS = {  # what each reader says, and the limit it holds to
    "commoncrawl": "larger than 16 MiB (its listed size, or the most herd fetches of such a file); removed",
    "wikipedia": "the dump status is larger than 8 MiB, the most herd reads of it; refused",
    "stackexchange": "the listing is larger than 16 MiB, the most herd reads of it; refused",
    "books": "the catalogue is larger than 64 MiB, the most herd reads of it; refused",
    "c4": "a page of the file listing is larger than 8 MiB, the most herd reads of it; refused",
    "github": "a page of the file listing is larger than 8 MiB, the most herd reads of it; refused",
    "arxiv": "the manifest is larger than 16 MiB, the most herd reads of it; refused",
}


@pytest.mark.parametrize("source", SITES)
def test_a_listing_that_never_ends_is_refused_in_bounded_memory(source: str, tmp_path: Path) -> None:
    site, out = SITES[source], tmp_path / "out"
    with HostileServer() as server:
        site.serve(server, site.body(1))
        server.routes[site.listing_path] = endless(head=site.listing(server.url, site.body(1))[:20])
        done, peak = download_measured(site, server, out)
        line = one_error(done, "pipeline")
        listing_url = site.url(server, site.listing_path)
        if source in ("c4", "github"):
            listing_url += "?recursive=false&expand=false"
    assert line == f"{listing_url}: {NEVER_ENDS[source]}"
    assert peak < PEAK_MB
    assert kept_files(out) == {}


def _gzip_bomb(block: bytes, gib: float = 1.5) -> bytes:
    """A gzip file of `gib` GiB inflated: one gzip member of a MiB of `block`, repeated."""
    member = gzip.compress((block * (MiB // len(block) + 1))[:MiB], mtime=0)
    return member * int(gib * 1024)


@pytest.mark.parametrize("block, problem", [
    (b"\0", "the list has a line longer than 4 KiB; refused"),
    (b"\n", "the list (decompressed) is larger than 64 MiB, the most herd reads of it; refused"),
    (f"crawl-data/{SNAPSHOT}/segments/1/wet/a.warc.wet.gz\n".encode(),
     "the list (decompressed) is larger than 64 MiB, the most herd reads of it; refused"),
], ids=["one line of zeros", "empty lines", "valid paths"])
def test_a_compressed_listing_that_inflates_without_bound_is_refused(block: bytes, problem: str,
                                                                     tmp_path: Path) -> None:
    """1.5 MB of wet.paths.gz (5 MB of valid paths) that inflates to 1.5 GiB: read as a stream, refused
    at the limit."""
    site, out = SITES["commoncrawl"], tmp_path / "out"
    bomb = _gzip_bomb(block)
    assert len(bomb) < 5 * MiB  # under the 16 MiB fetched: what refuses it is the inflated size
    with HostileServer() as server:
        site.serve(server, site.body(1))
        server.routes[site.listing_path] = file(bomb)
        done, peak = download_measured(site, server, out)
        line = one_error(done, "pipeline")
        assert line == f"{server.url}/{site.listing_path}: {problem}"
        assert server.gets(site.data_path) == []
    assert peak < PEAK_MB
    assert kept_files(out) == {}  # the listing is not trusted on the next run


# --- files whose contents take unbounded memory to convert ----------------------------------

def _parquet_of_a_huge_row_group(dictionary: bool) -> bytes:
    """One row group of 1,500 values of 1 MB each: 1.5 GB once read, in a small file (the one
    value stored once in a dictionary; or plain, compressed by zstd)."""
    value = pa.array(["x" * 1_000_000])
    table = pa.table({"code": pa.chunked_array([value] * 1500),
                      "license": pa.chunked_array([pa.array(["mit"])] * 1500)})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=10_000, use_dictionary=dictionary, compression="zstd")
    return sink.getvalue()


@pytest.mark.parametrize("dictionary", [True, False], ids=["dictionary-encoded", "plain"])
def test_a_parquet_row_group_of_1_5_gb_is_refused_in_bounded_memory(dictionary: bool, tmp_path: Path) -> None:
    site, out = SITES["github"], tmp_path / "out"
    body = _parquet_of_a_huge_row_group(dictionary)
    assert len(body) < 2 * MiB
    with HostileServer() as server:
        site.serve(server, body)
        done, peak = download_measured(site, server, out)
        line = one_error(done, "pipeline")
        url = f"{server.url}/{site.data_path}"
    assert re.fullmatch(re.escape(url) + r": row group 0 holds 1,5\d\d,\d\d\d,\d\d\d bytes, more than 512 MiB, "
                        r"the most herd holds in memory; removed", line), line
    assert peak < PEAK_MB
    assert kept_files(out) == {}


def _sparse_member_tar(name: str, real_size: int) -> bytes:
    """A tar with a paper, then an old-GNU sparse member ('S') of `real_size` bytes that stores
    one byte (the rest is a hole): a few KB that tarfile unpacks to `real_size` bytes."""
    sink = io.BytesIO()
    archive = tarfile.open(fileobj=sink, mode="w", format=tarfile.GNU_FORMAT)
    data = gz_paper(b"a small paper")
    info = tarfile.TarInfo("2301/2301.00001.gz")
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))
    end = archive.offset  # before the end-of-archive blocks
    archive.close()
    small = sink.getvalue()[:end]
    info = tarfile.TarInfo(name)
    info.size, info.type = 1, tarfile.GNUTYPE_SPARSE
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    header[386:410] = b"%011o\0%011o\0" % (real_size - 1, 1)  # one struct: 1 byte stored at the end
    header[483:495] = b"%011o\0" % real_size  # realsize
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(small + header + b"x".ljust(512, b"\0") + b"\0" * 1024)


def test_a_sparse_3_gb_tar_member_behind_a_valid_md5_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    site, out = SITES["arxiv"], tmp_path / "out"
    body = _sparse_member_tar("2301/2301.00002.gz", 3_000_000_000)
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:  # what an unpacker is told
        assert [(m.name, m.size, m.issparse()) for m in archive] == [
            ("2301/2301.00001.gz", len(gz_paper(b"a small paper")), False), ("2301/2301.00002.gz", 3_000_000_000, True)]
    with HostileServer() as server:
        site.serve(server, body)
        done, peak = download_measured(site, server, out)
        line = one_error(done, "pipeline")
    assert line == (f"s3://arxiv/{ARXIV_KEY}: member '2301/2301.00002.gz' holds 3,000,000,000 bytes, more than "
                    f"512 MiB, the most herd unpacks of one paper; refused")
    assert peak < PEAK_MB
    assert "2301/2301.00002.gz" not in kept_files(out)


# --- listings of the wrong shape, non-ASCII digits, NUL bytes, file:// URLs -------------------

def _hub_entry(**fields) -> dict:
    body = c4_file(1)
    return {"type": "file", "oid": "1" * 40, "size": len(body), "path": f"en/{C4_NAME}",
            "lfs": {"oid": hashlib.sha256(body).hexdigest(), "size": len(body), "pointerSize": 134}, **fields}


def _wiki(files: object) -> bytes:
    return json.dumps({"jobs": {"articlesmultistreamdump": {"status": "done", "files": files}}}).encode()


SHA1 = "a" * 40
WIKI_INFO = {"size": 12, "sha1": SHA1}
# (source, listing, the error after "<listing URL>: "); a trailing * : the rest is Python's or
# lxml's own wording. A listing may be a function of the server's URL.
WRONG = {
    "wiki: a list, not an object": ("wikipedia", b"[]", "no articlesmultistreamdump job in the dump status"),
    "wiki: jobs a list": ("wikipedia", b'{"jobs": [1]}', "no articlesmultistreamdump job in the dump status"),
    "wiki: files a list": ("wikipedia", _wiki([WIKI_NAME]),
                           "the articlesmultistreamdump job's files are not an object of name: {size, sha1, url}"),
    "wiki: a file not an object": ("wikipedia", _wiki({WIKI_NAME: [12, SHA1]}),
                                   f"{WIKI_NAME}: not an object of size, sha1 and url"),
    "wiki: size in Arabic-Indic digits": ("wikipedia", _wiki({WIKI_NAME: {**WIKI_INFO, "size": "١٢"}}),
                                          f"{WIKI_NAME}: no size in bytes ('١٢') or no sha1 ('{SHA1}')"),
    "wiki: size a boolean": ("wikipedia", _wiki({WIKI_NAME: {**WIKI_INFO, "size": True}}),
                             f"{WIKI_NAME}: no size in bytes (True) or no sha1 ('{SHA1}')"),
    "wiki: no sha1": ("wikipedia", _wiki({WIKI_NAME: {"size": 12}}),
                      f"{WIKI_NAME}: no size in bytes (12) or no sha1 (None)"),
    "wiki: NUL in a name": ("wikipedia", _wiki({f"enwiki-{DATE}-\0.bz2": WIKI_INFO}),
                            f"unexpected file name 'enwiki-{DATE}-\\x00.bz2'"),
    "wiki: file:// URL": ("wikipedia", _wiki({WIKI_NAME: {**WIKI_INFO, "url": "file:///etc/passwd"}}),
                          f"{WIKI_NAME}: 'file:///etc/passwd' is not an http(s) URL"),
    "wiki: ftp:// URL": ("wikipedia", _wiki({WIKI_NAME: {**WIKI_INFO, "url": "ftp://127.0.0.1/a.bz2"}}),
                         f"{WIKI_NAME}: 'ftp://127.0.0.1/a.bz2' is not an http(s) URL"),
    "wiki: NUL in a URL": ("wikipedia", _wiki({WIKI_NAME: {**WIKI_INFO, "url": "/enwiki/\0.bz2"}}),
                           f"{WIKI_NAME}: '/enwiki/\\x00.bz2' is not a URL of printable ASCII characters"),
    "wiki: nested too deeply": ("wikipedia", b"[" * 200_000 + b"]" * 200_000,
                                "not a JSON dump status (nested too deeply)"),
    "wiki: NaN": ("wikipedia", b'{"jobs": NaN}', "not a JSON dump status (NaN is not JSON)"),
    "wiki: an integer of 5,000 digits": ("wikipedia", b'{"jobs": ' + b"9" * 5000 + b"}",
                                         "not a JSON dump status (Exceeds the limit (4300 digits)*"),
    "wiki: invalid UTF-8": ("wikipedia", b'{"jobs": "\xff"}', "not a JSON dump status ('utf-8' codec can't decode*"),
    "hub: an object, not a list": ("c4", b'{"files": []}', "not a Hub file listing (a JSON dict, not a list)"),
    "hub: an entry not an object": ("c4", json.dumps([f"en/{C4_NAME}"]).encode(),
                                    f"entry 0 is not an object with a path: 'en/{C4_NAME}'"),
    "hub: size in Arabic-Indic digits": ("c4", json.dumps([_hub_entry(size="١٢")]).encode(),
                                         f"entry 0 ({C4_NAME}): no size in bytes ('١٢') or an LFS sha256*"),
    "hub: sha256 not hex": ("github", json.dumps([{**_hub_entry(path=f"data/{GITHUB_NAME}"),
                                                   "lfs": {"oid": "z" * 64}}]).encode(),
                            f"entry 0 ({GITHUB_NAME}): no size in bytes (*"),
    "hub: NUL in a path": ("c4", json.dumps([_hub_entry(path="en/c4-train.\0.json.gz")]).encode(),
                           "entry 0: 'en/c4-train.\\x00.json.gz' is not a file name in en/"),
    "hub: a path outside the folder": ("c4", json.dumps([_hub_entry(path=f"../{C4_NAME}")]).encode(),
                                       f"entry 0: '../{C4_NAME}' is not a file name in en/"),
    "hub: nested too deeply": ("github", b"[" * 200_000 + b"]" * 200_000, "not a Hub file listing (nested too deeply)"),
    "se: size in Arabic-Indic digits": ("stackexchange", files_xml("", b"", size="١٢", sha1=SHA1),
                                        f"math.stackexchange.com.7z has no size in bytes ('١٢') or no sha1 ('{SHA1}')"),
    "se: size in superscript digits": ("stackexchange", files_xml("", b"", size="²", sha1=SHA1),
                                       f"math.stackexchange.com.7z has no size in bytes ('²') or no sha1 ('{SHA1}')"),
    "se: sha1 not hex": ("stackexchange", files_xml("", b"", size="12", sha1="not-hex"),
                         "math.stackexchange.com.7z has no size in bytes ('12') or no sha1 ('not-hex')"),
    "se: not a site's name": ("stackexchange", files_xml("", b"", name="mäth.stackexchange.com.7z"),
                              "'mäth.stackexchange.com.7z' is not the archive of a site"),
    "se: a NUL byte": ("stackexchange", files_xml("", b"").replace(b"<size>", b"<size>\0"),
                       "not an archive.org file listing (*"),
    "se: JSON, not XML": ("stackexchange", b'{"files": []}', "not an archive.org file listing (*"),
    "arxiv: size in Arabic-Indic digits": ("arxiv", manifest("", b"", size="١٢", md5="b" * 32),
                                           f"entry 1 lacks a filename src/arXiv_src_YYMM_NNN.tar ('{ARXIV_KEY}'), "
                                           "yymm, size in ASCII digits ('١٢') or md5sum"),
    "arxiv: file:// key": ("arxiv", manifest("", b"", key="file:///etc/passwd", size="12", md5="b" * 32),
                           "entry 1 lacks a filename src/arXiv_src_YYMM_NNN.tar ('file:///etc/passwd'), "
                           "yymm, size in ASCII digits ('12') or md5sum"),
    "arxiv: a NUL byte": ("arxiv", manifest("", b"").replace(b"<size>", b"<size>\0"),
                          "not the arXiv source manifest (*"),
    "books: a field past csv's limit": ("books", b"Text#,Type,Title\n84,Text," + b"x" * 200_000 + b"\n",
                                        "not a readable CSV catalogue (after line 1: field larger than field limit "
                                        "(131072))"),
    "books: JSON, not CSV": ("books", b'{"books": [84]}', "not Gutenberg's pg_catalog.csv (no Text# column)"),
    "cc: a file:// URL": ("commoncrawl", b"file:///etc/passwd\n",
                          "path 1: 'file:///etc/passwd' is not a relative path of a WET file"),
    "cc: an absolute URL": ("commoncrawl", b"http://127.0.0.2/a.warc.wet.gz\n",
                            "path 1: 'http://127.0.0.2/a.warc.wet.gz' is not a relative path of a WET file"),
    "cc: a climbing path": ("commoncrawl", b"crawl-data/../../etc/passwd\n",
                            "path 1: 'crawl-data/../../etc/passwd' is not a relative path of a WET file"),
    "cc: a NUL byte, on line 2": ("commoncrawl", b"crawl-data/a.warc.wet.gz\ncrawl-data/\0.warc.wet.gz\n",
                                  "path 2: 'crawl-data/\\x00.warc.wet.gz' is not a relative path of a WET file"),
    "cc: Arabic-Indic digits": ("commoncrawl", "crawl-data/١٢.warc.wet.gz\n".encode(),
                                "path 1: 'crawl-data/\\xd9\\xa1\\xd9\\xa2.warc.wet.gz' is not a relative path of a "
                                "WET file"),
}


@pytest.mark.parametrize("case", WRONG)
def test_a_wrong_listing_is_one_line_and_fetches_nothing(case: str, tmp_path: Path) -> None:
    source, listing, expected = WRONG[case]
    site, out = SITES[source], tmp_path / "out"
    with HostileServer() as server:
        site.serve(server, site.body(1))
        server.routes[site.listing_path] = file(gzip.compress(listing, mtime=0) if source == "commoncrawl" else listing)
        line = one_error(download(site, server, out), "pipeline")
        listing_url = site.url(server, site.listing_path)
        if source in ("c4", "github"):
            listing_url += "?recursive=false&expand=false"
        assert server.gets(site.data_path) == []
    if expected.endswith("*"):
        assert line.startswith(f"{listing_url}: {expected[:-1]}"), line
    else:
        assert line == f"{listing_url}: {expected}"
    assert kept_files(out) == {}
    nothing_local_copied(out)


@pytest.mark.parametrize("next_link, problem", [
    ("http://127.0.0.2:9/api/next", "'http://127.0.0.2:9/api/next' is not on 127.0.0.1:{port}"),
    ("file:///etc/passwd", "'file:///etc/passwd' is not an http(s) URL"),
], ids=["another host (the token goes with it)", "a local file"])
def test_a_hub_next_page_elsewhere_is_refused(next_link: str, problem: str, tmp_path: Path) -> None:
    site, out = SITES["c4"], tmp_path / "out"
    with HostileServer() as server:
        site.serve(server, site.body(1))
        server.routes[site.listing_path] = with_link(site.listing(server.url, site.body(1)), next_link)
        line = one_error(download(site, server, out), "pipeline")
        port = server.httpd.server_address[1]
        listing_url = f"{server.url}/{site.listing_path}?recursive=false&expand=false"
        assert line == f"{listing_url}: the next page of the file listing: {problem.format(port=port)}; refused"
        assert server.gets(site.data_path) == [] and len(server.gets(site.listing_path)) == 1


def test_a_hub_listing_whose_pages_never_end_is_refused(tmp_path: Path) -> None:
    site, out = SITES["c4"], tmp_path / "out"
    with HostileServer() as server:
        listing_url = f"{server.url}/{site.listing_path}?recursive=false&expand=false"
        site.serve(server, site.body(1))
        server.routes[site.listing_path] = with_link(site.listing(server.url, site.body(1)), listing_url)
        line = one_error(download(site, server, out), "pipeline")
        assert line == f"{listing_url}: the file listing goes on past 1,000 pages; refused"
        assert len(server.gets(site.listing_path)) == 1000 and server.gets(site.data_path) == []


def test_catalogue_rows_without_an_ascii_number_are_skipped_and_counted(tmp_path: Path) -> None:
    """`'١٢٣'.isdigit()` is true and `int('١٢٣')` is 123: such a row must not fetch book 123."""
    site, out = SITES["books"], tmp_path / "out"
    rows = "Text#,Type,Issued,Title,Language\n84,Text,,A,en\n١٢٣,Text,,B,en\n1\0,Text,,C,en\n²,Text,,D,en\n"
    with HostileServer() as server:
        site.serve(server, site.body(1))
        server.routes[site.listing_path] = file(rows.encode())
        done = download(site, server, out)
        assert done.returncode == 0, done.stderr
        assert [path for path, _ in server.requests] == ["catalogue.csv", "8/84/84-0.txt"]
    assert done.stdout.splitlines()[-1] == (f"1 book(s) in {out}; 3 catalogue row(s) skipped: Text# is no number "
                                            f"in ASCII digits")
    assert kept_files(out) == {"pg84.txt": site.body(1)}


# --- answers whose headers or redirects are hostile ----------------------------------------

@pytest.mark.parametrize("source", SITES)
def test_a_content_length_that_is_no_number_is_one_line(source: str, tmp_path: Path) -> None:
    """`int('²')` raises, and '²'.isdigit() is true: the header is refused, never guessed at."""
    site, out = SITES[source], tmp_path / "out"
    with HostileServer() as server:
        site.serve(server, site.body(1), headers={"Content-Length": "²³"})
        line = one_error(download(site, server, out), "pipeline")
        url = site.url(server, site.data_path)
    if source == "arxiv":  # botocore parses the header itself
        assert line == f"{url}: an answer herd cannot parse (invalid literal for int() with base 10: '??')"
    else:
        assert line == f"{url}: a Content-Length that is no number of bytes ('²³'); refused"
    assert kept_files(out).keys() <= {f"{SNAPSHOT}.wet.paths.gz"}


@pytest.mark.parametrize("source", HTTP_SITES)
def test_a_redirect_to_a_local_file_is_refused(source: str, tmp_path: Path) -> None:
    site, out = SITES[source], tmp_path / "out"
    with HostileServer() as server:
        site.serve(server, PASSWD.read_bytes())  # the listing even gives the local file's size and checksum

        def to_passwd(h) -> None:
            h.send_response(302)
            h.send_header("Location", "file:///etc/passwd")
            h.send_header("Content-Length", "0")
            h.end_headers()

        server.routes[site.data_path] = to_passwd
        line = one_error(download(site, server, out), "pipeline")
        assert line == (f"{server.url}/{site.data_path}: redirected to 'file:///etc/passwd' is not an http(s) URL; "
                        "refused")
    nothing_local_copied(out)


@pytest.mark.parametrize("source", ["wikipedia", "stackexchange", "books", "c4", "github"])
def test_a_body_longer_than_its_listed_size_or_limit_stops_as_it_arrives(source: str, tmp_path: Path) -> None:
    """The file's body never ends: refused at its listed size (books have none: at 128 MiB; a
    WET file's 1 GiB is not streamed here), written to disk a block at a time, never held."""
    site, out = SITES[source], tmp_path / "out"
    body = site.body(1)
    cap = "128 MiB" if source == "books" else f"{len(body):,} bytes"
    with HostileServer() as server:
        site.serve(server, body)
        server.routes[site.data_path] = endless(head=body)
        done, peak = download_measured(site, server, out)
        line = one_error(done, "pipeline")
        assert line == (f"{server.url}/{site.data_path}: larger than {cap} (its listed size, or the most "
                        f"herd fetches of such a file); removed")
    assert peak < PEAK_MB
    assert not list(out.rglob("*.part"))
