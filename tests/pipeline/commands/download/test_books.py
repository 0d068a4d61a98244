"""`pipeline download books` against a Gutenberg-mirror-like HTTP server on 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from pipeline.commands.download import books
from pipeline.commands.download.books import mirror_folder
from pipeline.commands.download import books as downloader
from pipeline.commands.download.fetch import USER_AGENT
from sources.books import Books
from tests.conftest import xattrs_kept
from tests.hostile.helpers import one_error, run_script
from tests.pipeline.commands.download.server import Server, cli_error, cut_once, files_under, resumed_gets, download_with

CATALOGUE = (
    "Text#,Type,Issued,Title,Language,Authors,Subjects,LoCC,Bookshelves\n"
    "1342,Text,1998-06-01,Pride and Prejudice,en,\"Austen, Jane\",,,\n"
    "84,Text,1993-10-01,Frankenstein,en,\"Shelley, Mary\",,,\n"
    "2000,Text,1999-12-01,Don Quijote,es,\"Cervantes\",,,\n"
    "9999,Sound,2003-01-01,An audio book,en,,,,\n"
    "7,Text,1971-12-01,A short one,en,,,,\n"
)


def _book(number: int) -> bytes:
    return (f"The Project Gutenberg eBook #{number}\n*** START OF THE PROJECT GUTENBERG EBOOK ***\n"
            + f"Chapter {number}.\n" * 4000 + "*** END OF THE PROJECT GUTENBERG EBOOK ***\n").encode()


@pytest.fixture
def server() -> Iterator[Server]:
    files = {f"{mirror_folder(n)}/{n}-0.txt": _book(n) for n in (1342, 84, 2000)}
    files[f"{mirror_folder(7)}/7.txt"] = _book(7)  # an old book with only the ASCII file
    with Server(files) as s:
        s.files["catalogue.csv"] = CATALOGUE.encode()
        yield s


def _args(server: Server, out: Path, *extra: str) -> list[str]:
    return ["--base-url", server.url, "--out", str(out), "--no-progress", "--delay", "0", *extra]


def test_mirror_layout() -> None:
    assert mirror_folder(1342) == "1/3/4/1342"
    assert mirror_folder(84) == "8/84"
    assert mirror_folder(7) == "0/7"


def test_books_by_id_and_from_the_catalogue_politely(server: Server, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "gutenberg"
    written = download_with(downloader, _args(server, out, "--ids", "1342", "7"))
    assert [p.name for p in written] == ["pg1342.txt", "pg7.txt"]
    assert (out / "pg1342.txt").read_bytes() == _book(1342)
    assert (out / "pg7.txt").read_bytes() == _book(7)  # N-0.txt was missing: N.txt instead
    assert all(h["User-Agent"] == USER_AGENT and "herd" in h["User-Agent"] for h in server.headers)
    # The catalogue: English texts only; a delay before every request but the first.
    pauses: list[float] = []
    monkeypatch.setattr(books.time, "sleep", pauses.append)
    catalogue = ["--catalogue", f"{server.url}/catalogue.csv", "--delay", "1.5"]  # the last --delay counts
    written = download_with(downloader, _args(server, out, *catalogue, "--language", "en"))
    assert [p.name for p in written] == ["pg1342.txt", "pg84.txt", "pg7.txt"]
    assert pauses == []  # only 84 was fetched: one request, nothing to wait for
    download_with(downloader, _args(server, out, *catalogue))
    assert pauses == []  # 2000 is fetched with one request
    (out / "pg84.txt").unlink()
    (out / "pg2000.txt").unlink()
    download_with(downloader, _args(server, out, "--ids", "84", "2000", "--delay", "1.5"))
    assert pauses == [1.5]
    assert files_under(tmp_path) == ["gutenberg/pg1342.txt", "gutenberg/pg2000.txt", "gutenberg/pg7.txt",
                                     "gutenberg/pg84.txt"]
    assert Books().list_inputs(str(tmp_path)) == sorted(str(p) for p in out.iterdir())


def test_a_local_catalogue_or_out_it_cannot_use_is_one_line_before_any_request(
        server: Server, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    os.mkfifo(tmp_path / "fifo")  # no writer: reading it would wait for ever (a subprocess, a short timeout)
    done = run_script("pipeline", "download", "books", *_args(server, tmp_path / "out", "--catalogue", "fifo"),
                      cwd=tmp_path, timeout=30)
    assert one_error(done, "pipeline") == "fifo: a FIFO, not a catalogue file"
    monkeypatch.setattr(books, "CATALOGUE_LIMIT", 1 << 10)  # 64 MiB, made small: read no further
    (tmp_path / "catalogue.csv").write_text(CATALOGUE + "\n" * (1 << 10))
    local = str(tmp_path / "catalogue.csv")
    err = cli_error(["download", "books", *_args(server, tmp_path / "out", "--catalogue", local)], capsys)
    assert err == f"pipeline: error: {local}: larger than 0.000976562 MiB, not a Gutenberg catalogue\n"
    err = cli_error(["download", "books", *_args(server, Path("/dev/null"), "--ids", "84")], capsys)
    assert err == "pipeline: error: /dev/null: a device, not a folder (give another output folder)\n"
    assert server.requests == [] and sorted(p.name for p in tmp_path.iterdir()) == ["catalogue.csv", "fifo"]


def test_a_cut_book_resumes_with_a_range_request(server: Server, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = f"{mirror_folder(84)}/84-0.txt"
    cut_once(server, monkeypatch, path)
    download_with(downloader, _args(server, tmp_path, "--ids", "84"))
    assert (tmp_path / "pg84.txt").read_bytes() == _book(84)
    assert server.gets(path) == resumed_gets(_book(84))


def test_a_missing_book_is_one_line(server: Server, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # Gutenberg publishes no checksums: a whole, Content-Length-checked file is all there is to verify.
    err = cli_error(["download", "books", *_args(server, tmp_path, "--ids", "4242")], capsys)
    assert "/4/2/4/4242/4242.txt: HTTP 404" in err
    assert [p for p, _ in server.requests] == ["4/2/4/4242/4242-0.txt", "4/2/4/4242/4242.txt"]
    assert files_under(tmp_path) == []


def test_a_book_already_there_that_is_an_error_page_is_fetched_again(server: Server, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    """Gutenberg publishes no checksums: a kept book is checked for what can be, not empty and not markup."""
    (tmp_path / "pg84.txt").write_bytes(b"<html><body>503 Service Unavailable</body></html>\n")
    (tmp_path / "pg7.txt").write_bytes(_book(7))
    download_with(downloader, _args(server, tmp_path, "--ids", "84", "7"))
    assert (tmp_path / "pg84.txt").read_bytes() == _book(84)
    assert [p for p, _ in server.requests] == [f"{mirror_folder(84)}/84-0.txt"]
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{tmp_path / 'pg84.txt'}: not a plain-text file: it starts with '<html><body>503 Service Unavailable</bod' "
        f"(an error page?); fetched again")  # its first 40 bytes


# --- a book sent without a Content-Length: only its end-of-book marker shows it whole ---

def _book_ending(number: int, footer: str) -> bytes:
    """Book `number` with `footer` (an END line as Gutenberg wrote it over the years, or none) and
    the licence after it, in CRLF as most real files are."""
    body = f"The Project Gutenberg eBook #{number}\r\n*** START OF THE PROJECT GUTENBERG EBOOK ***\r\n"
    body += f"Chapter {number}.\r\n" * 4000
    return (body + (footer + "\r\n" if footer else "") + "Section 1. General Terms of Use\r\n" * 50).encode()


CUT_WITHOUT_LENGTH = "sent without a Content-Length and no end-of-book marker: it may be cut short; removed, " \
                     "rerun to fetch it again"


def test_a_book_cut_where_a_server_without_content_length_stopped_is_refused_and_fetched_again(
        server: Server, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Without a Content-Length the body ends where the connection closes: the first half of the
    book looks whole to HTTP. Gutenberg publishes no checksum, so the END marker is the witness."""
    path = f"{mirror_folder(84)}/84-0.txt"
    server.lengths[path] = None
    server.cut_first.add(path)
    err = cli_error(["download", "books", *_args(server, tmp_path, "--ids", "84")], capsys)
    assert err == f"pipeline: error: {server.url}/{path}: {CUT_WITHOUT_LENGTH}\n"
    assert files_under(tmp_path) == []  # nothing kept, under the book's name or as a .part
    assert server.gets(path) == [None]  # refused, not retried: another try may stop short too
    # The rerun fetches it again: whole, still without a Content-Length, it holds its END marker.
    download_with(downloader, _args(server, tmp_path, "--ids", "84"))
    assert (tmp_path / "pg84.txt").read_bytes() == _book(84)
    assert server.gets(path) == [None, None]


@pytest.mark.parametrize("footer", [
    "*** END OF THE PROJECT GUTENBERG EBOOK FRANKENSTEIN ***",
    "*** END OF THIS PROJECT GUTENBERG EBOOK FRANKENSTEIN ***",
    "End of the Project Gutenberg EBook of Frankenstein, by Mary Wollstonecraft Shelley",
    "End of Project Gutenberg's Frankenstein, by Mary Wollstonecraft Shelley",
])
def test_a_whole_book_without_content_length_is_kept_by_each_end_marker_gutenberg_used(
        server: Server, tmp_path: Path, footer: str) -> None:
    path = f"{mirror_folder(84)}/84-0.txt"
    server.files[path] = _book_ending(84, footer)
    server.lengths[path] = None
    download_with(downloader, _args(server, tmp_path, "--ids", "84"))
    assert (tmp_path / "pg84.txt").read_bytes() == _book_ending(84, footer)


def test_a_book_without_end_marker_is_kept_when_a_header_states_its_length(
        server: Server, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A Content-Length, or a chunked body (http.client refuses one missing its final chunk), is
    the witness; a book without a marker is then kept, and a rerun keeps it without a request."""
    unmarked = _book_ending(84, "")
    server.files[f"{mirror_folder(84)}/84-0.txt"] = server.files[f"{mirror_folder(1342)}/1342-0.txt"] = unmarked
    server.chunked.add(f"{mirror_folder(1342)}/1342-0.txt")
    download_with(downloader, _args(server, tmp_path, "--ids", "84", "1342"))
    assert (tmp_path / "pg84.txt").read_bytes() == (tmp_path / "pg1342.txt").read_bytes() == unmarked
    if xattrs_kept(tmp_path):  # the witness is recorded on the file: the rerun asks nothing
        before = len(server.requests)
        capsys.readouterr()
        download_with(downloader, _args(server, tmp_path, "--ids", "84", "1342"))
        assert len(server.requests) == before and capsys.readouterr().out == f"2 book(s) in {tmp_path}\n"
    server.lengths[f"{mirror_folder(84)}/84-0.txt"] = None
    (tmp_path / "pg84.txt").unlink()
    err = cli_error(["download", "books", *_args(server, tmp_path, "--ids", "84")], capsys)
    assert err == f"pipeline: error: {server.url}/{mirror_folder(84)}/84-0.txt: {CUT_WITHOUT_LENGTH}\n"


def test_a_chunked_book_cut_before_its_last_chunk_is_resumed_not_kept(
        server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = f"{mirror_folder(84)}/84-0.txt"
    server.files[path] = _book_ending(84, "")  # no marker: only the missing final chunk tells the cut
    server.chunked.add(path)
    cut_once(server, monkeypatch, path)
    download_with(downloader, _args(server, tmp_path, "--ids", "84"))
    assert (tmp_path / "pg84.txt").read_bytes() == _book_ending(84, "")
    half = -(-len(_book_ending(84, "")) // 4096) // 2 * 4096  # the first half of its 4 KiB chunks
    assert server.gets(path) == [None, f"bytes={half}-"]


def test_a_book_kept_by_an_older_herd_without_end_marker_is_fetched_again(
        server: Server, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Nothing records that a header stated its length: it may be a book cut where a server
    without a Content-Length stopped (as herd kept them before). One with its marker is kept."""
    (tmp_path / "pg84.txt").write_bytes(_book(84)[: len(_book(84)) // 2])
    (tmp_path / "pg7.txt").write_bytes(_book(7))
    download_with(downloader, _args(server, tmp_path, "--ids", "84", "7"))
    assert (tmp_path / "pg84.txt").read_bytes() == _book(84)
    assert [p for p, _ in server.requests] == [f"{mirror_folder(84)}/84-0.txt"]
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{tmp_path / 'pg84.txt'}: no end-of-book marker, and no record that a header stated its length: "
        f"it may be cut short; fetched again")


def test_a_catalogue_sent_without_content_length_is_refused(server: Server, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    """A CSV cut at a line's end is a catalogue of fewer books: only a header can show it whole."""
    server.lengths["catalogue.csv"] = None
    catalogue = ["--catalogue", f"{server.url}/catalogue.csv", "--language", "en"]
    err = cli_error(["download", "books", *_args(server, tmp_path, *catalogue)], capsys)
    assert err == (f"pipeline: error: {server.url}/catalogue.csv: sent without a Content-Length and the catalogue "
                   "shows no end of its own: it may be cut short; refused\n")
    assert server.gets("catalogue.csv") == [None] and files_under(tmp_path) == []
    server.chunked.add("catalogue.csv")  # its final chunk is the witness
    written = download_with(downloader, _args(server, tmp_path, *catalogue))
    assert [p.name for p in written] == ["pg1342.txt", "pg84.txt", "pg7.txt"]
