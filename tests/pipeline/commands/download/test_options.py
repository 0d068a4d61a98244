"""The numeric flags every downloader takes (--retries) and each one's own (--files, --offset,
--segments, --largest, --ids, --limit, --delay): out of bounds, one line and exit 2 before any
request is sent or anything is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipeline.commands.download.server import Server, cli_error


@pytest.fixture
def server() -> Iterator[Server]:
    with Server({}) as s:  # answers 404 to everything: a request sent is a test failed anyway
        yield s


def _base(name: str, url: str) -> list[str]:
    """The flags `pipeline download NAME` needs besides the one under test, pointed at `url`."""
    return {
        "commoncrawl": ["--snapshot", "CC-MAIN-2020-05", "--base-url", url],
        "c4": ["--endpoint", url],
        "github": ["--endpoint", url],
        "wikipedia": ["--date", "20220701", "--languages", "en", "--base-url", url],
        "books": ["--ids", "1", "--base-url", url, "--delay", "0"],
        "arxiv": ["--endpoint-url", url],
        "stackexchange": ["--base-url", url],
    }[name]


DOWNLOADERS = ["commoncrawl", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange"]


@pytest.mark.parametrize("name", DOWNLOADERS)
@pytest.mark.parametrize(("retries", "message"), [
    # Retries wait 1, 2, 4, ... s: 10^20 of them never ended (and sleep() overflowed on the way).
    ("13", "--retries must be at most 12, got 13"),
    ("100000000000000000000", "--retries must be at most 12, got 100000000000000000000"),
    ("-1", "--retries must not be negative, got -1"),
])
def test_retries_out_of_bounds_are_one_line_before_any_request(name: str, retries: str, message: str, server: Server,
                                                              tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    err = cli_error(["download", name, *_base(name, server.url), "--out", str(out), "--no-progress",
                     "--retries", retries], capsys)
    assert err == f"pipeline: error: {message}\n"
    assert server.requests == [] and not out.exists()


@pytest.mark.parametrize(("name", "flags", "message"), [
    ("commoncrawl", ["--segments", "0"], "--segments must be at least 1, got 0"),
    ("commoncrawl", ["--offset", "-1"], "--offset must not be negative, got -1"),
    ("commoncrawl", ["--offset", "99999999999999999999"],
     "--offset must be at most 9223372036854775807, got 99999999999999999999"),
    ("c4", ["--files", "0"], "--files must be at least 1, got 0"),
    ("github", ["--offset", "-2"], "--offset must not be negative, got -2"),
    ("arxiv", ["--files", "0"], "--files must be at least 1, got 0"),
    ("arxiv", ["--offset", "-1"], "--offset must not be negative, got -1"),
    # Checked after the listing was fetched, before.
    ("stackexchange", ["--largest", "0"], "--largest must be at least 1, got 0"),
    # sleep(1e300) was an OverflowError after the first book; an hour between requests is a stall already.
    ("books", ["--delay", "1e300"], "--delay must be at most 3600.0, got 1e+300"),
    ("books", ["--delay", "nan"], "--delay must be finite, got nan"),
    ("books", ["--delay", "-1"], "--delay must not be negative, got -1.0"),
    ("books", ["--ids", "1", "0"], "--ids must be at least 1, got 0"),
    ("books", ["--ids", "99999999999999999999"], "--ids must be at most 9223372036854775807, got 99999999999999999999"),
])
def test_a_downloaders_own_numbers_out_of_bounds_are_one_line_before_any_request(
        name: str, flags: list[str], message: str, server: Server, tmp_path: Path,
        capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    err = cli_error(["download", name, *_base(name, server.url), "--out", str(out), "--no-progress", *flags], capsys)
    assert err == f"pipeline: error: {message}\n"
    assert server.requests == [] and not out.exists()


def test_a_catalogue_limit_below_one_is_one_line_before_the_catalogue_is_read(
        server: Server, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    err = cli_error(["download", "books", "--catalogue", f"{server.url}/pg_catalog.csv", "--limit", "0", "--out",
                     str(out), "--no-progress"], capsys)
    assert err == "pipeline: error: --limit must be at least 1, got 0\n"
    assert server.requests == [] and not out.exists()
