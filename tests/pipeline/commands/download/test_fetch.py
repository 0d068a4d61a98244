"""The shared fetcher against an HTTP server on 127.0.0.1: retries, resume, verification."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

import pytest

from pipeline.commands.download import fetch
from pipeline.commands.download.fetch import Checksum, Fetcher, NotFound, Retry, xml_listing
from pipeline.common.errors import UserError
from tests.pipeline.commands.download.server import Server

BODY = bytes(range(256)) * 4000


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    waits: list[float] = []
    monkeypatch.setattr(fetch.time, "sleep", waits.append)
    with Server({"f.bin": BODY}) as s:
        s.waits = waits
        yield s


def _fetcher(retries: int = 3) -> Fetcher:
    return Fetcher(Retry(retries, backoff=1.0), show_progress=False)


def test_a_server_error_is_retried_with_exponential_backoff(server: Server, tmp_path: Path) -> None:
    server.fail_first["f.bin"] = 503
    checksum = Checksum("sha256", hashlib.sha256(BODY).hexdigest())
    dest = _fetcher().fetch(f"{server.url}/f.bin", tmp_path / "f.bin", checksum)
    assert dest.read_bytes() == BODY
    assert server.waits == [1.0]


def test_a_connection_that_keeps_dropping_fails_after_the_retries_and_keeps_its_bytes(server: Server,
                                                                                      tmp_path: Path) -> None:
    server.always_cut.add("f.bin")
    with pytest.raises(UserError) as error:
        _fetcher(retries=2).fetch(f"{server.url}/f.bin", tmp_path / "f.bin")
    message = str(error.value)
    assert "\n" not in message and "failed after 3 attempts" in message and "rerun to resume" in message
    assert server.waits == [1.0, 2.0]
    part = tmp_path / "f.bin.part"
    # Each attempt received half of what was left: 1/2 + 1/4 + 1/8 of the file.
    assert part.read_bytes() == BODY[: part.stat().st_size] and part.stat().st_size >= len(BODY) * 7 // 8 - 2
    assert f"{part.stat().st_size:,} bytes kept" in message
    server.always_cut.clear()
    assert _fetcher().fetch(f"{server.url}/f.bin", tmp_path / "f.bin").read_bytes() == BODY


def test_a_server_that_ignores_the_range_starts_the_file_over(server: Server, tmp_path: Path) -> None:
    server.ignore_range = True
    (tmp_path / "f.bin.part").write_bytes(b"stale bytes from another file")
    assert _fetcher().fetch(f"{server.url}/f.bin", tmp_path / "f.bin").read_bytes() == BODY


def test_a_complete_part_is_finished_without_refetching(server: Server, tmp_path: Path) -> None:
    (tmp_path / "f.bin.part").write_bytes(BODY)  # the server answers 416 to a range past the end
    assert _fetcher().fetch(f"{server.url}/f.bin", tmp_path / "f.bin", size=len(BODY)).read_bytes() == BODY
    assert server.gets("f.bin") == [f"bytes={len(BODY)}-"]


def test_a_wrong_size_or_checksum_is_refused_and_removed_and_404_is_not_retried(server: Server,
                                                                                tmp_path: Path) -> None:
    with pytest.raises(UserError, match=f"size mismatch: expected {len(BODY) + 1:,} bytes, got {len(BODY):,}"):
        _fetcher().fetch(f"{server.url}/f.bin", tmp_path / "f.bin", size=len(BODY) + 1)
    with pytest.raises(UserError, match="md5 mismatch: expected 00000000000000000000000000000000, got "):
        _fetcher().fetch(f"{server.url}/f.bin", tmp_path / "f.bin", Checksum("md5", "0" * 32))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(NotFound, match="HTTP 404"):
        _fetcher().fetch(f"{server.url}/missing.bin", tmp_path / "missing.bin")
    assert server.gets("missing.bin") == [None] and server.waits == []


def test_an_xml_listing_keeps_entities_unexpanded_and_refuses_non_xml_in_one_line() -> None:
    root = xml_listing(b'<!DOCTYPE r [<!ENTITY e "boom">]><files><file name="a.7z"/>&e;</files>', "src", "a listing")
    assert [node.get("name") for node in root.iter("file")] == ["a.7z"]
    assert "boom" not in "".join(root.itertext())
    with pytest.raises(UserError, match=r"^https://x/files\.xml: not an archive\.org file listing \(.+\)$"):
        xml_listing(b"<files", "https://x/files.xml", "an archive.org file listing")
