"""The shared fetcher against an HTTP server on 127.0.0.1: retries, resume, verification."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Iterator

import pytest

from pipeline.commands.download import fetch, untrusted
from pipeline.commands.download.fetch import Checksum, Fetcher, NotFound, Retry, xml_listing
from pipeline.common.errors import UserError
from pipeline.common.files import SEAL
from tests.conftest import REPO, subprocess_env, xattrs_kept
from tests.hostile.helpers import file_size_limit
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


def test_a_redirect_loop_is_one_line_at_once_not_retried(server: Server, tmp_path: Path) -> None:
    server.redirects["f.bin"] = f"{server.url}/g.bin"
    server.redirects["g.bin"] = f"{server.url}/f.bin"
    with pytest.raises(UserError) as error:
        _fetcher().fetch(f"{server.url}/f.bin", tmp_path / "f.bin")
    assert str(error.value) == (f"{server.url}/f.bin: HTTP 302: a redirect that leads nowhere (in a loop, more than "
                                "10 times, or with no Location)")
    assert server.waits == [] and not list(tmp_path.iterdir())


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


def test_a_body_whose_end_nothing_witnesses_is_refused_and_never_kept(server: Server, tmp_path: Path) -> None:
    """No Content-Length, not chunked, and no listed size, checksum or format check: the body ends
    where the connection closed, which a server that stopped early looks like too."""
    server.lengths["f.bin"] = None
    with pytest.raises(UserError) as error:
        _fetcher().fetch(f"{server.url}/f.bin", tmp_path / "f.bin")
    assert str(error.value) == (f"{server.url}/f.bin: sent without a Content-Length and no listed size, checksum or "
                                "check of its format shows its end: it may be cut short; removed, rerun to fetch it "
                                "again")
    assert list(tmp_path.iterdir()) == [] and server.gets("f.bin") == [None]
    # A listed size is a witness; so is a chunked body's final chunk; a 416 to the rest of a part is not.
    assert _fetcher().fetch(f"{server.url}/f.bin", tmp_path / "f.bin", size=len(BODY)).read_bytes() == BODY
    server.chunked.add("f.bin")
    assert _fetcher().fetch(f"{server.url}/f.bin", tmp_path / "g.bin").read_bytes() == BODY
    (tmp_path / "h.bin.part").write_bytes(BODY)
    with pytest.raises(UserError, match="sent without a Content-Length and no listed size"):
        _fetcher().fetch(f"{server.url}/f.bin", tmp_path / "h.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin", "g.bin"]


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


# --- a file already under its final name is verified, never trusted for existing ---------------

def test_a_file_already_there_with_other_bytes_is_fetched_again(server: Server, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"\0" * len(BODY))  # the listed size, other bytes: a copy that is not the file
    sha256 = hashlib.sha256(BODY).hexdigest()
    zeros = hashlib.sha256(b"\0" * len(BODY)).hexdigest()
    assert _fetcher().fetch(f"{server.url}/f.bin", dest, Checksum("sha256", sha256), len(BODY)) == dest
    assert dest.read_bytes() == BODY
    assert capsys.readouterr().out == f"{dest}: sha256 {zeros} where the listing says {sha256}; fetched again\n"
    assert server.gets("f.bin") == [None]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_a_file_cut_short_under_its_final_name_is_resumed_and_checked(server: Server, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(BODY[:1000])  # what a tool that writes in place leaves when it is killed
    checksum = Checksum("sha256", hashlib.sha256(BODY).hexdigest())
    _fetcher().fetch(f"{server.url}/f.bin", dest, checksum, len(BODY))
    assert dest.read_bytes() == BODY
    assert capsys.readouterr().out == f"{dest}: 1,000 bytes where the listing says {len(BODY):,}; resumed\n"
    assert server.gets("f.bin") == ["bytes=1000-"]
    # Whole and matching now: the next run opens no connection.
    _fetcher().fetch(f"{server.url}/f.bin", dest, checksum, len(BODY))
    assert server.gets("f.bin") == ["bytes=1000-"] and capsys.readouterr().out == ""


def test_a_verified_file_is_not_hashed_again_until_it_is_written(server: Server, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    if not xattrs_kept(tmp_path):
        pytest.skip(f"{tmp_path}: the file system keeps no extended attributes (every rerun hashes every file)")
    dest = tmp_path / "f.bin"
    checksum = Checksum("sha256", hashlib.sha256(BODY).hexdigest())
    _fetcher().fetch(f"{server.url}/f.bin", dest, checksum, len(BODY))
    size, _, what = json.loads(os.getxattr(dest, SEAL))
    assert (size, json.loads(what)) == (len(BODY), ["download", ["sha256", checksum.hexdigest], ""])
    # A byte changed at once, in the clock tick of the download: the file's time still moves, and the
    # rerun hashes it, finds it changed and fetches it again.
    with open(dest, "r+b") as f:
        f.write(b"X")
    _fetcher().fetch(f"{server.url}/f.bin", dest, checksum, len(BODY))
    assert dest.read_bytes() == BODY and server.gets("f.bin") == [None, None]
    assert capsys.readouterr().out.endswith("fetched again\n")
    # Bytes changed behind the record's back, size and time put back as they were: the record is
    # what the rerun trusts, so it opens no connection and hashes nothing (the cost it saves).
    info = dest.stat()
    dest.write_bytes(b"Y" * len(BODY))
    os.utime(dest, ns=(info.st_atime_ns, info.st_mtime_ns))
    _fetcher().fetch(f"{server.url}/f.bin", dest, checksum, len(BODY))
    assert server.gets("f.bin") == [None, None] and capsys.readouterr().out == ""
    # Checked against another listing's checksum: verified again, not trusted.
    other = Checksum("sha256", hashlib.sha256(b"Y" * len(BODY)).hexdigest())
    _fetcher().fetch(f"{server.url}/f.bin", dest, other, len(BODY))
    assert server.gets("f.bin") == [None, None]
    assert json.loads(json.loads(os.getxattr(dest, SEAL))[2])[1] == ["sha256", other.hexdigest]


def test_a_file_longer_than_listed_without_a_checksum_is_fetched_from_the_start(server: Server, tmp_path: Path,
                                                                                capsys: pytest.CaptureFixture) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(BODY + b"tail")
    _fetcher().fetch(f"{server.url}/f.bin", dest, size=len(BODY))
    assert dest.read_bytes() == BODY and server.gets("f.bin") == [None]
    assert capsys.readouterr().out == f"{dest}: {len(BODY) + 4:,} bytes where the listing says {len(BODY):,}; " \
                                      f"fetched again\n"


def test_a_body_that_trickles_is_dropped_and_resumed_and_a_trickling_listing_refused(
        server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 320 bytes/s against a floor of 4 KiB in each half second: every socket read returns well
    # inside the timeout, so only the pace can tell this server from a slow but honest one.
    monkeypatch.setattr(untrusted, "PACE_WINDOW_S", 0.5)
    monkeypatch.setattr(untrusted, "PACE_MIN_BYTES", 4096)
    server.trickle_first.add("f.bin")
    dest = tmp_path / "f.bin"
    _fetcher().fetch(f"{server.url}/f.bin", dest, Checksum("sha256", hashlib.sha256(BODY).hexdigest()), len(BODY))
    assert dest.read_bytes() == BODY
    first, second = server.gets("f.bin")
    # Dropped after about half a second of 16-byte pieces, and resumed from the bytes that came.
    assert first is None and second is not None
    assert 0 < int(second.removeprefix("bytes=").rstrip("-")) < 4096
    server.files["list.json"] = b"[" + b"1," * 5000 + b"1]"
    server.trickle_first = _Always({"list.json"})  # every attempt trickles: the last failure is the one line
    with pytest.raises(UserError, match=r"list\.json.*slower than 4 KiB in 0.5 s; dropped"):
        _fetcher(retries=1).read(f"{server.url}/list.json")


@pytest.mark.parametrize("where", ["headers", "chunk"])
def test_a_trickle_inside_a_line_is_dropped_as_a_body_trickle_is(server: Server, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    # A byte every 50 ms where http.client reads a whole line (a header line, or a chunked body's
    # size line after a first chunk): each socket read returns inside the timeout, and the line's
    # 64 KiB limit is an hour away at this rate. Only a pace counted on the socket's reads ends it.
    monkeypatch.setattr(untrusted, "PACE_WINDOW_S", 0.5)
    monkeypatch.setattr(untrusted, "PACE_MIN_BYTES", 4096)
    server.trickle_lines["f.bin"] = where
    started = time.monotonic()
    with pytest.raises(UserError) as error:
        _fetcher(retries=1).fetch(f"{server.url}/f.bin", tmp_path / "f.bin")
    message = str(error.value)
    assert "failed after 2 attempts" in message and "slower than 4 KiB in 0.5 s; dropped" in message, message
    assert time.monotonic() - started < 20  # two attempts of about half a second, not the server's minute
    # The first chunk's 1,000 bytes are kept and the retry asks for the rest; no file is called whole.
    assert server.gets("f.bin") == ([None, None] if where == "headers" else [None, "bytes=1000-"])
    assert not (tmp_path / "f.bin").exists()
    with pytest.raises(UserError, match=r"slower than 4 KiB in 0.5 s; dropped"):
        _fetcher(retries=0).read(f"{server.url}/f.bin")


class _Always(set):
    """A set that keeps what is taken out of it: every GET of its paths trickles."""

    def discard(self, item: object) -> None:
        pass


def test_a_full_disk_is_one_line_at_once_not_retried_as_a_network_error(server: Server, tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pipeline.commands.download.fetch import Fetcher, Retry\n"
        "from pipeline.common.errors import exit_on_errors\n"
        "with exit_on_errors('pipeline', 'rerun the same command to resume'):\n"
        "    Fetcher(Retry(3, backoff=0.0), show_progress=False).fetch(sys.argv[1], Path(sys.argv[2]))\n")
    command = [sys.executable, "-c", script, f"{server.url}/f.bin", str(tmp_path / "f.bin")]
    full = subprocess.run(command, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=120,
                          preexec_fn=file_size_limit(64 << 10), check=False)
    assert full.returncode == 2
    assert full.stderr == (f"pipeline: error: {tmp_path / 'f.bin.part'}: cannot write: File too large (EFBIG); "
                           "free space and rerun the same command to resume\n")
    assert server.gets("f.bin") == [None]  # not asked again three times: no retry frees a disk
    again = subprocess.run(command, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=120,
                           check=False)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "f.bin").read_bytes() == BODY and server.gets("f.bin") == [None, f"bytes={64 << 10}-"]


def test_a_download_stopped_by_sigterm_keeps_its_part_says_so_and_resumes(server: Server, tmp_path: Path) -> None:
    # SIGTERM (a preempted job) while the body trickles in: the bytes that came stay in the
    # `.part`, one line says how to carry on, and the next run resumes from them.
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pipeline.commands.download.fetch import Fetcher\n"
        "from pipeline.common.errors import exit_on_errors\n"
        "with exit_on_errors('pipeline', 'rerun the same command to resume'):\n"
        "    Fetcher(show_progress=False).fetch(sys.argv[1], Path(sys.argv[2]))\n")
    server.trickle_first.add("f.bin")
    dest, part = tmp_path / "f.bin", tmp_path / "f.bin.part"
    process = subprocess.Popen([sys.executable, "-c", script, f"{server.url}/f.bin", str(dest)], cwd=REPO,
                               env=subprocess_env(), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    pause = threading.Event()  # Event.wait, not time.sleep: the downloader's sleeps are no-ops here
    while not (part.exists() and server.gets("f.bin")) and time.monotonic() < deadline:
        pause.wait(0.01)
    pause.wait(1.0)  # some 16-byte pieces in: still in the writer's buffer, flushed as the file closes
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (143, "pipeline: terminated (SIGTERM); rerun the same command to resume\n")
    kept = part.read_bytes()
    assert 0 < len(kept) < len(BODY) and BODY.startswith(kept) and not dest.exists()
    _fetcher().fetch(f"{server.url}/f.bin", dest, Checksum("sha256", hashlib.sha256(BODY).hexdigest()), len(BODY))
    assert dest.read_bytes() == BODY
    assert server.gets("f.bin")[1] == f"bytes={len(kept)}-"


def test_a_listed_size_past_the_limit_is_refused_before_any_request(server: Server, tmp_path: Path) -> None:
    """The listed size caps the body: a listing claiming 10^18 bytes would let a body that never ends
    fill the disk."""
    url = f"{server.url}/f.bin"
    with pytest.raises(UserError) as error:
        _fetcher().fetch(url, tmp_path / "f.bin", size=10**18, limit=1 << 30)
    assert str(error.value) == (f"{url}: listed as 1,000,000,000,000,000,000 bytes, more than 1 GiB, the most herd "
                                f"fetches of such a file; refused")
    assert server.requests == [] and list(tmp_path.iterdir()) == []


def test_the_token_is_dropped_when_a_redirect_changes_the_scheme_or_the_host() -> None:
    """https to http on the same host would send the token in clear text. (A policy of the redirect
    handler, asked directly: a loopback server speaks no TLS.)"""
    handler = fetch._SameHostAuth()

    def redirected(old: str, new: str) -> dict[str, str]:
        request = urllib.request.Request(old, headers={"Authorization": "Bearer hf_secret", "User-Agent": "herd"})
        return dict(handler.redirect_request(request, None, 302, "Found", Message(), new).header_items())

    assert redirected("https://hub.test/a", "https://hub.test/b") == {"Authorization": "Bearer hf_secret",
                                                                      "User-agent": "herd"}
    assert redirected("https://hub.test/a", "http://hub.test/b") == {"User-agent": "herd"}
    assert redirected("https://hub.test/a", "https://cdn.test/b") == {"User-agent": "herd"}
