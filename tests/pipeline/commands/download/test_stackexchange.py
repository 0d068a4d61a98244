"""`pipeline download stackexchange` against an archive.org-like HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Iterator

import py7zr
import pytest

from pipeline.commands.download import stackexchange as downloader
from pipeline.common.errors import InputError
from sources.stackexchange import StackExchange, StackExchangeConfig
from tests.pipeline.commands.download.server import Server, cli_error, cut_once, files_under, resumed_gets, download_with

ARCHIVES = {  # name -> size of a stand-in body (opened only to unpack: these tests pass --no-unpack)
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


def _args(server: Server, out: Path, *extra: str, unpack: bool = False) -> list[str]:
    return ["--base-url", server.url, "--out", str(out), "--no-progress", *([] if unpack else ["--no-unpack"]), *extra]


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


def test_an_archive_already_there_with_a_flipped_byte_is_fetched_again(server: Server, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    body = server.bodies["tex.stackexchange.com.7z"]
    tex = _args(server, tmp_path, "--sites", "tex.stackexchange.com")
    download_with(downloader, tex)
    damaged = bytearray(body)
    damaged[1000] ^= 0xFF  # the listed size still holds: only the sha1 can tell
    (tmp_path / "tex.stackexchange.com.7z").write_bytes(damaged)
    capsys.readouterr()
    download_with(downloader, tex)
    assert (tmp_path / "tex.stackexchange.com.7z").read_bytes() == body
    assert server.gets("tex.stackexchange.com.7z") == [None, None]
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{tmp_path / 'tex.stackexchange.com.7z'}: sha1 {hashlib.sha1(damaged).hexdigest()} where the listing says "
        f"{hashlib.sha1(body).hexdigest()}; fetched again")


def test_a_listed_size_past_64_gib_or_a_site_name_of_300_characters_is_refused(server: Server, tmp_path: Path,
                                                                               capsys: pytest.CaptureFixture) -> None:
    """The listed size caps the body: 2^50 bytes would let a body that never ends fill the disk."""
    listing = _listing(server.bodies).replace(f"<size>{ARCHIVES['tex.stackexchange.com.7z']}</size>".encode(),
                                              f"<size>{2**50}</size>".encode())
    server.files["stackexchange_files.xml"] = listing
    err = cli_error(["download", "stackexchange", *_args(server, tmp_path, "--sites", "tex.stackexchange.com")],
                    capsys)
    assert err == (f"pipeline: error: {server.url}/tex.stackexchange.com.7z: listed as 1,125,899,906,842,624 bytes, "
                   f"more than 64 GiB, the most herd fetches of such a file; refused\n")
    site = "a" * 300 + ".stackexchange.com"
    server.files["stackexchange_files.xml"] = _listing({f"{site}.7z": b"7z"})
    err = cli_error(["download", "stackexchange", *_args(server, tmp_path)], capsys)
    assert err == (f"pipeline: error: {server.url}/stackexchange_files.xml: '{'a' * 56}... is not the archive of "
                   f"a site\n")
    assert [p for p, _ in server.requests] == ["stackexchange_files.xml"] * 2
    assert files_under(tmp_path) == []
    # A site named like herd's own files: its folder would be another site's archive ("ab.cd" + ".7z").
    for site in ("ab.cd.7z", "ab.cd.7z.part"):
        server.files["stackexchange_files.xml"] = _listing({"ab.cd.7z": b"7z", f"{site}.7z": b"7z"})
        err = cli_error(["download", "stackexchange", *_args(server, tmp_path, "--largest", "2")], capsys)
        assert err == f"pipeline: error: {server.url}/stackexchange_files.xml: '{site}.7z' is not the archive of a site\n"
    assert files_under(tmp_path) == []


def _posts_xml(rows: int, seed: int) -> bytes:
    """A Posts.xml of `rows` questions, each with one answer, in words no archive compresses away."""
    rng = random.Random(seed)
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<posts>"]
    for qid in range(1, rows + 1):
        words = " ".join("".join(rng.choice("abcdefghij") for _ in range(6)) for _ in range(30))
        lines.append(f'  <row Id="{qid}" PostTypeId="1" Score="1" Title="Q{qid}" Body="&lt;p&gt;{words}&lt;/p&gt;" />')
        lines.append(f'  <row Id="{10_000 + qid}" PostTypeId="2" ParentId="{qid}" Score="2" '
                     f'Body="&lt;p&gt;answer {words[:40]}&lt;/p&gt;" />')
    lines.append("</posts>")
    return ("\n".join(lines) + "\n").encode()


def _seven_zip(posts: bytes, folder: Path, name: str) -> bytes:
    path = folder / name
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.writestr(posts, "Posts.xml")
    return path.read_bytes()


def test_archives_are_unpacked_into_site_folders_that_a_run_reads_in_ranges(tmp_path: Path) -> None:
    """By default each site's Posts.xml is unpacked into <site>/Posts.xml and its archive removed:
    a run splits it into byte ranges, tasks of their own. A rerun fetches nothing; an archive left
    beside its unpacked Posts.xml is removed; a damaged archive is one line and leaves no folder."""
    posts = {"stackoverflow.com-Posts.7z": _posts_xml(400, 1), "math.stackexchange.com.7z": _posts_xml(150, 2)}
    made = tmp_path / "made"
    made.mkdir()
    bodies = {name: _seven_zip(xml, made, name) for name, xml in posts.items()}
    out = tmp_path / "raw"
    with Server(dict(bodies)) as server:
        server.files["stackexchange_files.xml"] = _listing(bodies)
        written = download_with(downloader, _args(server, out, "--largest", "2", unpack=True))
        assert written == [out / "stackoverflow.com" / "Posts.xml", out / "math.stackexchange.com" / "Posts.xml"]
        assert files_under(out) == ["math.stackexchange.com/Posts.xml", "stackoverflow.com/Posts.xml"]
        assert (out / "stackoverflow.com" / "Posts.xml").read_bytes() == posts["stackoverflow.com-Posts.7z"]
        assert (out / "math.stackexchange.com" / "Posts.xml").read_bytes() == posts["math.stackexchange.com.7z"]
        # Ranges of about 20 KB: Stack Overflow's Posts.xml is several inputs, each a task.
        inputs = StackExchange(StackExchangeConfig(task_bytes=20_000)).list_inputs(str(out))
        so_ranges = [i for i in inputs if "/stackoverflow.com/Posts.xml#rows=" in i]
        assert len(so_ranges) >= len(posts["stackoverflow.com-Posts.7z"]) // 20_000

        before = len(server.requests)
        (out / "math.stackexchange.com.7z").write_bytes(bodies["math.stackexchange.com.7z"])  # stopped before removal
        again = download_with(downloader, _args(server, out, "--largest", "2", unpack=True))
        assert again == written and len(server.requests) == before + 1  # the listing only
        assert files_under(out) == ["math.stackexchange.com/Posts.xml", "stackoverflow.com/Posts.xml"]

    damaged = dict(bodies, **{"tex.stackexchange.com.7z": bodies["math.stackexchange.com.7z"][:-200]})
    with Server(dict(damaged)) as server:
        server.files["stackexchange_files.xml"] = _listing(damaged)
        with pytest.raises(InputError, match=r"tex\.stackexchange\.com\.7z: truncated or corrupt 7z archive"):
            download_with(downloader, _args(server, out, "--sites", "tex.stackexchange.com", unpack=True))
    assert not (out / "tex.stackexchange.com").exists()
    assert not list(out.glob(".*unpacking"))


REAL_ARCHIVE = Path(__file__).resolve().parents[4] / "../shared/realdata/stackexchange/genai.stackexchange.com.7z"


@pytest.mark.skipif(not REAL_ARCHIVE.is_file(), reason="the real Stack Exchange archive is absent: "
                    "only on the project's machines (../shared/realdata/stackexchange)")
def test_a_real_site_archive_unpacks_to_its_whole_posts_xml(tmp_path: Path) -> None:
    """The real genai.stackexchange.com.7z: its Posts.xml comes out as long as the archive's own
    header says, is well-formed XML to lxml, and the source reads the same records from it as
    from the archive."""
    import argparse
    import shutil

    from lxml import etree

    with py7zr.SevenZipFile(REAL_ARCHIVE) as archive:
        [listed] = [m.uncompressed for m in archive.list() if m.filename == "Posts.xml"]
    raw = tmp_path / "raw"
    raw.mkdir()
    archive_copy = raw / REAL_ARCHIVE.name
    shutil.copy(REAL_ARCHIVE, archive_copy)
    posts = downloader.unpack(argparse.Namespace(no_progress=True), archive_copy,
                              raw / "genai.stackexchange.com" / "Posts.xml")
    assert not archive_copy.exists() and posts.stat().st_size == listed
    rows = sum(1 for _, element in etree.iterparse(str(posts), tag="row"))
    assert rows > 100
    from_folder = _records(StackExchange(), str(posts))
    packed = tmp_path / "packed"
    packed.mkdir()
    shutil.copy(REAL_ARCHIVE, packed / REAL_ARCHIVE.name)
    assert from_folder == _records(StackExchange(), str(packed / REAL_ARCHIVE.name)) and len(from_folder) > 50


def _records(source: StackExchange, path: str) -> list[tuple[str, str]]:
    """The (id, text) of every question and answer record the source reads from `path`."""
    from pipeline.engine.document import Document

    return [(d.id, d.text) for d in source.read(path) if isinstance(d, Document)]
