"""`pipeline download stackexchange` against an archive.org-like HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

import pytest

from pipeline.commands.download import stackexchange as downloader
from sources.stackexchange import StackExchange
from tests.pipeline.commands.download.server import Server, cli_error, cut_once, files_under, resumed_gets, download_with

ARCHIVES = {  # name -> size of a stand-in body (the downloader never opens the archives)
    "math.stackexchange.com.7z": 90_000,
    "stackoverflow.com-Posts.7z": 120_000,
    "stackoverflow.com-Users.7z": 150_000,  # another table of Stack Overflow: not fetched
    "meta.stackexchange.com.7z": 80_000,  # a meta site: not fetched
    "physics.stackexchange.com.7z": 50_000,
    "tex.stackexchange.com.7z": 60_000,
}


def _listing(bodies: dict[str, bytes], sha1: dict[str, str] | None = None) -> bytes:
    entries = "".join(
        f'<file name="{name}" source="original"><mtime>1</mtime><size>{len(body)}</size>'
        f"<md5>{hashlib.md5(body).hexdigest()}</md5><sha1>{(sha1 or {}).get(name, hashlib.sha1(body).hexdigest())}"
        f"</sha1><format>7z</format></file>"
        for name, body in bodies.items()
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><files>{entries}<file name="stackexchange_meta.xml" ' \
           f'source="metadata"><format>Metadata</format></file></files>'.encode()


@pytest.fixture
def server() -> Iterator[Server]:
    bodies = {name: bytes((i * 13 + size) % 256 for i in range(size)) for name, size in ARCHIVES.items()}
    with Server(dict(bodies)) as s:
        s.files["stackexchange_files.xml"] = _listing(bodies)
        s.bodies = bodies
        yield s


def _args(server: Server, out: Path, *extra: str) -> list[str]:
    return ["--base-url", server.url, "--out", str(out), "--no-progress", *extra]


def test_the_largest_sites_posts_archives_verified(server: Server, tmp_path: Path) -> None:
    written = download_with(downloader, _args(server, tmp_path, "--largest", "2"))
    # By size: Stack Overflow's Posts (its Users table and meta sites are not candidates), then math.
    assert [p.name for p in written] == ["stackoverflow.com.7z", "math.stackexchange.com.7z"]
    assert (tmp_path / "stackoverflow.com.7z").read_bytes() == server.bodies["stackoverflow.com-Posts.7z"]
    assert (tmp_path / "math.stackexchange.com.7z").read_bytes() == server.bodies["math.stackexchange.com.7z"]
    assert files_under(tmp_path) == ["math.stackexchange.com.7z", "stackoverflow.com.7z"]
    assert StackExchange().list_inputs(str(tmp_path)) == sorted(str(p) for p in written)
    written = download_with(downloader, _args(server, tmp_path, "--sites", "tex.stackexchange.com"))
    assert [p.name for p in written] == ["tex.stackexchange.com.7z"]


def test_a_cut_archive_resumes_with_a_range_request(server: Server, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cut_once(server, monkeypatch, "physics.stackexchange.com.7z")
    download_with(downloader, _args(server, tmp_path, "--sites", "physics.stackexchange.com"))
    body = server.bodies["physics.stackexchange.com.7z"]
    assert (tmp_path / "physics.stackexchange.com.7z").read_bytes() == body
    assert server.gets("physics.stackexchange.com.7z") == resumed_gets(body)


def test_a_sha1_mismatch_a_404_and_an_unknown_site_are_one_line(server: Server, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    server.files["stackexchange_files.xml"] = _listing(server.bodies, {"tex.stackexchange.com.7z": "f" * 40})
    err = cli_error(["download", "stackexchange", *_args(server, tmp_path, "--sites", "tex.stackexchange.com")], capsys)
    assert "tex.stackexchange.com.7z: sha1 mismatch: expected ffff" in err
    assert files_under(tmp_path) == []
    del server.files["math.stackexchange.com.7z"]
    math = _args(server, tmp_path, "--sites", "math.stackexchange.com")
    err = cli_error(["download", "stackexchange", *math], capsys)
    assert "/math.stackexchange.com.7z: HTTP 404" in err
    err = cli_error(["download", "stackexchange", *_args(server, tmp_path, "--sites", "nosuch.stackexchange.com")],
                    capsys)
    assert "--sites: not in the dump: ['nosuch.stackexchange.com']" in err
