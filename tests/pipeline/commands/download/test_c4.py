"""`pipeline download c4` through huggingface_hub against a Hub stand-in on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Iterator

import pytest

from pipeline.commands.download.c4 import REPO
from pipeline.commands.download import c4 as downloader
from sources.c4 import C4
from tests.pipeline.commands.download.hub_server import dataset_server, hub_args, serve_dataset
from tests.pipeline.commands.download.server import (
    Server, cli_error, cut_once, download_with, files_under, requested_by, resumed_gets,
)


def _c4_file(n: int) -> bytes:
    rows = [{"text": f"Document {n}.{i}. " * 40, "url": f"https://example.org/{n}/{i}",
             "timestamp": "2019-04-25T12:57:54Z"} for i in range(200)]
    return gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode(), mtime=0)


NAMES = [f"c4-train.{n:05d}-of-01024.json.gz" for n in range(3)] + ["c4-validation.00000-of-00008.json.gz"]


@pytest.fixture
def server() -> Iterator[Server]:
    with dataset_server(REPO, "en", {name: _c4_file(n) for n, name in enumerate(NAMES)}) as s:
        yield s


def test_train_files_from_an_offset_verified_by_their_lfs_sha256(server: Server, tmp_path: Path) -> None:
    written = download_with(downloader, hub_args(server, tmp_path, "--files", "2", "--offset", "1"))
    assert [p.name for p in written] == NAMES[1:3]
    for path in written:
        assert path.read_bytes() == server.bodies[path.name]
    assert C4().list_inputs(str(tmp_path)) == [str(p) for p in written]
    (valid,) = download_with(downloader, hub_args(server, tmp_path, "--split", "validation", "--files", "5"))
    assert valid.name == NAMES[3]
    assert files_under(tmp_path) == sorted([*NAMES[1:3], NAMES[3]])


def test_a_cut_file_resumes_with_a_range_request(server: Server, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = f"datasets/{REPO}/resolve/main/en/{NAMES[0]}"
    cut_once(server, monkeypatch, path)
    (written,) = download_with(downloader, hub_args(server, tmp_path))
    assert written.read_bytes() == server.bodies[NAMES[0]]
    assert server.gets(path) == resumed_gets(server.bodies[NAMES[0]])


def test_a_sha256_mismatch_and_a_404_are_one_line(server: Server, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    serve_dataset(server, REPO, "en", server.bodies, {NAMES[0]: "a" * 64})
    err = cli_error(["download", "c4", *hub_args(server, tmp_path)], capsys)
    got = hashlib.sha256(server.bodies[NAMES[0]]).hexdigest()
    assert f"sha256 mismatch: expected {'a' * 64}, got {got}" in err
    assert files_under(tmp_path) == []
    serve_dataset(server, REPO, "en", server.bodies)
    del server.files[f"datasets/{REPO}/resolve/main/en/{NAMES[0]}"]
    err = cli_error(["download", "c4", *hub_args(server, tmp_path)], capsys)
    assert f"/resolve/main/en/{NAMES[0]}: HTTP 404" in err
    err = cli_error(["download", "c4", *hub_args(server, tmp_path, "--revision", "nosuch")], capsys)
    assert "cannot list allenai/c4/en at nosuch (HTTP 404)" in err


def test_a_file_without_an_lfs_sha256_is_judged_by_its_gzip_trailer(server: Server, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """A file kept in git ("lfs": null) has no sha256 in the listing: a body cut in half under a
    listed size of that half was kept as whole, and every rerun kept it."""
    whole = server.bodies[NAMES[0]]
    serve_dataset(server, REPO, "en", {NAMES[0]: whole[: len(whole) // 2]}, lfs=False)
    err = cli_error(["download", "c4", *hub_args(server, tmp_path)], capsys)
    assert f"{NAMES[0]}" in err and "not a whole gzip file" in err
    assert files_under(tmp_path) == []
    serve_dataset(server, REPO, "en", {NAMES[0]: whole}, lfs=False)
    (written,) = download_with(downloader, hub_args(server, tmp_path))
    assert written.read_bytes() == whole


def test_the_token_goes_to_the_hub_but_not_to_the_cdn_it_redirects_to(server: Server, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    with Server({"signed/file.json.gz": server.bodies[NAMES[0]]}) as cdn:
        server.redirects[f"datasets/{REPO}/resolve/main/en/{NAMES[0]}"] = f"{cdn.url}/signed/file.json.gz"
        (written,) = download_with(downloader, hub_args(server, tmp_path))
        assert written.read_bytes() == server.bodies[NAMES[0]]
        assert cdn.requests == [("signed/file.json.gz", None)]
        assert "Authorization" not in cdn.headers[0]
    hub_file = [h for (p, _), h in zip(server.requests, server.headers) if p.endswith(NAMES[0])]
    assert hub_file[0]["Authorization"] == "Bearer hf_secret"


def test_a_file_already_there_is_checked_against_its_sha256_not_trusted(server: Server, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    download_with(downloader, hub_args(server, tmp_path, "--files", "2"))
    body = server.bodies[NAMES[1]]
    damaged = bytearray(body)
    damaged[-20] ^= 0xFF  # the listed size still holds: only the sha256 can tell
    (tmp_path / NAMES[1]).write_bytes(damaged)
    capsys.readouterr()
    rerun = requested_by(server, lambda: download_with(downloader, hub_args(server, tmp_path, "--files", "2")))
    assert rerun == [f"api/datasets/{REPO}/tree/main/en", f"datasets/{REPO}/resolve/main/en/{NAMES[1]}"]
    assert (tmp_path / NAMES[1]).read_bytes() == body
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path / NAMES[1]}: sha256 {hashlib.sha256(damaged).hexdigest()} where the listing says "
        f"{hashlib.sha256(body).hexdigest()}; fetched again", f"2 C4 file(s) in {tmp_path}"]


def test_a_listing_of_more_matching_files_than_herd_holds_is_refused(server: Server, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture) -> None:
    """The bound is 100,000 (pages are bounded one by one, and 1,000 of them are followed); lowered here
    below the stand-in's 3 train files, then to exactly 3."""
    from pipeline.commands.download import hub

    monkeypatch.setattr(hub, "MAX_FILES", 2)
    listing = f"api/datasets/{REPO}/tree/main/en"
    err = cli_error(["download", "c4", *hub_args(server, tmp_path)], capsys)
    assert err == (f"pipeline: error: {server.url}/{listing}?recursive=false&expand=false: the file listing names "
                   f"more than 2 files matching c4-train.*.json.gz; refused\n")
    assert [p for p, _ in server.requests] == [listing] and files_under(tmp_path) == []
    monkeypatch.setattr(hub, "MAX_FILES", 3)
    assert [p.name for p in download_with(downloader, hub_args(server, tmp_path))] == [NAMES[0]]
