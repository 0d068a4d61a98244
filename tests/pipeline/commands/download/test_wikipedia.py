"""`pipeline download wikipedia` against a Wikimedia-like HTTP server on 127.0.0.1."""

from __future__ import annotations

import bz2
import hashlib
from pathlib import Path
from typing import Iterator

import pytest

from pipeline.commands.download import wikipedia as downloader
from sources.samples.wikipedia import Page, write_dump
from sources.wikipedia import Wikipedia, WikipediaConfig
from tests.pipeline.commands.download.server import Server, cli_error, cut_once, files_under, requested_by, resumed_gets, download_with

DATE = "20220701"
DUMP = f"enwiki-{DATE}-pages-articles-multistream1.xml-p1p41242.bz2"
INDEX = f"enwiki-{DATE}-pages-articles-multistream-index1.txt-p1p41242.bz2"


def _status(files: dict[str, bytes], sha1: dict[str, str] | None = None, status: str = "done") -> dict:
    listing = {name: {"size": len(body), "url": f"/enwiki/{DATE}/{name}",
                      "sha1": (sha1 or {}).get(name, hashlib.sha1(body).hexdigest()),
                      "md5": hashlib.md5(body).hexdigest()} for name, body in files.items()}
    return {"jobs": {"articlesmultistreamdump": {"status": status, "updated": "2022-07-02 10:00:00",
                                                 "files": listing},
                     "xmlstubsdump": {"status": "done", "files": {}}},
            "version": "0.8"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    write_dump(tmp_path / "dump.bz2", "en", [Page(f"Title {i}", f"Text {i} " * 500, i) for i in range(1, 40)], 4)
    bodies = {DUMP: (tmp_path / "dump.bz2").read_bytes(), INDEX: bz2.compress(b"600:1:Title 1\n")}
    with Server({f"enwiki/{DATE}/{name}": body for name, body in bodies.items()}) as s:
        s.add_json(f"enwiki/{DATE}/dumpstatus.json", _status(bodies))
        s.bodies = bodies
        yield s


def _args(server: Server, out: Path) -> list[str]:
    return ["--date", DATE, "--languages", "en", "--base-url", server.url, "--out", str(out), "--no-progress"]


def test_fetches_every_file_of_the_multistream_job_verified(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    written = download_with(downloader, _args(server, out))
    assert sorted(p.name for p in written) == sorted([DUMP, INDEX])
    assert files_under(out) == sorted([DUMP, INDEX])
    for path in written:
        assert path.read_bytes() == server.bodies[path.name]
    # The dump (not the index, nor an unfinished download) is what `pipeline run wikipedia` reads.
    (out / DUMP.replace("multistream1", "multistream2")).with_suffix(".bz2.part").write_bytes(b"BZh")
    assert Wikipedia(WikipediaConfig(task_bytes=0)).list_inputs(str(out)) == [str(out / DUMP)]
    (out / DUMP.replace("multistream1", "multistream2")).with_suffix(".bz2.part").unlink()
    # A rerun fetches nothing again.
    assert requested_by(server, lambda: download_with(downloader, _args(server, out))) == [f"enwiki/{DATE}/dumpstatus.json"]


def test_a_cut_download_resumes_with_a_range_request(server: Server, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = f"enwiki/{DATE}/{DUMP}"
    cut_once(server, monkeypatch, path)
    download_with(downloader, _args(server, tmp_path))
    assert (tmp_path / DUMP).read_bytes() == server.bodies[DUMP]
    assert server.gets(path) == resumed_gets(server.bodies[DUMP])


def test_a_sha1_mismatch_is_refused_in_one_line(server: Server, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    server.add_json(f"enwiki/{DATE}/dumpstatus.json", _status(server.bodies, {DUMP: "0" * 40}))
    err = cli_error(["download", "wikipedia", *_args(server, tmp_path)], capsys)
    assert f"{DUMP}: sha1 mismatch: expected {'0' * 40}, got {hashlib.sha1(server.bodies[DUMP]).hexdigest()}" in err
    assert not (tmp_path / DUMP).exists() and not (tmp_path / f"{DUMP}.part").exists()


def test_a_missing_dump_or_an_unfinished_job_is_one_line(server: Server, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    err = cli_error(["download", "wikipedia", *_args(server, tmp_path), "--date", "20220801"], capsys)
    assert "/enwiki/20220801/dumpstatus.json: HTTP 404" in err
    server.add_json(f"enwiki/{DATE}/dumpstatus.json", _status(server.bodies, status="in-progress"))
    err = cli_error(["download", "wikipedia", *_args(server, tmp_path)], capsys)
    assert "job is 'in-progress', not done" in err
    err = cli_error(["download", "wikipedia", "--date", "2022-07-01"], capsys)
    assert "expected YYYYMMDD" in err


def test_a_listed_size_past_64_gib_or_a_name_of_300_characters_is_refused_before_its_download(
        server: Server, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The listed size caps the body: 2^50 bytes would let a body that never ends fill the disk."""
    out = tmp_path / "raw"  # the fixture writes its dump into tmp_path
    status_path = f"enwiki/{DATE}/dumpstatus.json"
    status = _status(server.bodies)
    status["jobs"]["articlesmultistreamdump"]["files"][DUMP]["size"] = 2**50
    server.add_json(status_path, status)
    err = cli_error(["download", "wikipedia", *_args(server, out)], capsys)
    assert err == (f"pipeline: error: {server.url}/enwiki/{DATE}/{DUMP}: listed as 1,125,899,906,842,624 bytes, more "
                   f"than 64 GiB, the most herd fetches of such a file; refused\n")
    long_name = f"enwiki-{DATE}-" + "a" * 300 + ".bz2"
    server.add_json(status_path, _status({long_name: server.bodies[DUMP]}))
    err = cli_error(["download", "wikipedia", *_args(server, out)], capsys)
    assert err == (f"pipeline: error: {server.url}/{status_path}: unexpected file name "
                   f"'enwiki-{DATE}-{'a' * 40}...\n")
    # The index (listed first, and within bounds) was fetched; the dump never was.
    assert [p for p, _ in server.requests] == [status_path, f"enwiki/{DATE}/{INDEX}", status_path]
    assert files_under(out) == [INDEX]


def test_a_dump_cut_short_under_its_final_name_is_resumed_and_verified(server: Server, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    """Copied in by hand, or kept by a tool that writes in place: a rerun checks the size and sha1
    the listing gives, not that the file is there."""
    out = tmp_path / "raw"
    out.mkdir()
    body = server.bodies[DUMP]
    half = len(body) // 2
    (out / DUMP).write_bytes(body[:half])
    (out / INDEX).write_bytes(server.bodies[INDEX])
    download_with(downloader, _args(server, out))
    assert (out / DUMP).read_bytes() == body
    assert server.gets(f"enwiki/{DATE}/{DUMP}") == [f"bytes={half}-"] and server.gets(f"enwiki/{DATE}/{INDEX}") == []
    assert capsys.readouterr().out.splitlines()[0] == (f"{out / DUMP}: {half:,} bytes where the listing says "
                                                       f"{len(body):,}; resumed")
    assert files_under(out) == sorted([DUMP, INDEX])
