"""Archive members and links that point outside: tar members with ../ and absolute paths,
symbolic and hard links, device files and FIFOs; zip and 7z members alike; symbolic links in
a repository or a paper folder. Nothing outside is read, nothing is written outside the
output folder, and every refused member is counted."""

from __future__ import annotations

import io
import os
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import py7zr

from sources.arxiv import ArXiv, ArxivConfig
from sources.books import Books, BooksConfig
from sources.github import GitHub
from sources.stackexchange import StackExchange, StackExchangeConfig
from tests.hostile.helpers import failures, read_drops, run
from tests.hostile.sources_data import BOOK, PAPER, PAPER_TEXT, github_repo, se_site, write_paper

SECRET = "TOP-SECRET-LINE"


def _files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_tar_members_escaping_or_special_are_refused(tmp_path: Path) -> None:
    (tmp_path / "outside.tex").write_text(SECRET)
    members: list = [("main.tex", PAPER.replace("real.", "real. \\input{part}").encode())]
    members += [("../../escape.tex", SECRET.encode()), ("/tmp/absolute.tex", SECRET.encode()),
                ("sub/../../up.tex", SECRET.encode())]
    symlink = tarfile.TarInfo("part.tex")
    symlink.type, symlink.linkname = tarfile.SYMTYPE, str(tmp_path / "outside.tex")
    hardlink = tarfile.TarInfo("hard.tex")
    hardlink.type, hardlink.linkname = tarfile.LNKTYPE, "/etc/passwd"
    device = tarfile.TarInfo("dev.tex")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3  # /dev/null's numbers
    block = tarfile.TarInfo("disk.tex")
    block.type = tarfile.BLKTYPE
    fifo = tarfile.TarInfo("fifo.tex")
    fifo.type = tarfile.FIFOTYPE
    members += [symlink, hardlink, device, block, fifo]
    write_paper(tmp_path / "raw/2101.00001.tar.gz", members)
    before = _files_under(tmp_path)
    stats, docs = run(ArXiv(ArxivConfig(min_chars=1)), tmp_path / "raw", tmp_path / "out")
    assert read_drops(stats) == {"unsafe_member_path": 3, "link_member": 2, "special_member": 3}
    assert [d.text for d in docs] == [PAPER_TEXT]  # the link's target was never inlined
    # Only the output folder is new: no member landed anywhere.
    assert {p for p in _files_under(tmp_path) - before if not p.startswith("out")} == set()
    assert not Path("/tmp/absolute.tex").exists()


def test_zip_members_escaping_or_links_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "raw/gutenberg"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "books.zip", "w") as archive:
        archive.writestr("good.txt", BOOK)
        archive.writestr("../../escape.txt", SECRET)
        archive.writestr("/abs/olute.txt", SECRET)
        link = zipfile.ZipInfo("link.txt")
        link.external_attr = (0o120777 << 16)  # a symbolic link, as Info-ZIP stores one
        archive.writestr(link, "/etc/passwd")
        fifo = zipfile.ZipInfo("fifo.txt")
        fifo.external_attr = (0o010644 << 16)
        archive.writestr(fifo, "")
    before = _files_under(tmp_path)
    stats, docs = run(Books(BooksConfig(min_chars=1)), tmp_path / "raw", tmp_path / "out")
    assert [d.id for d in docs] == ["gutenberg/books.zip:good"]
    assert read_drops(stats) == {"unsafe_member_path": 2, "link_member": 1, "special_member": 1}
    assert {p for p in _files_under(tmp_path) - before if not p.startswith("out")} == set()


def _seven_zip_named(data: bytes, name: str) -> bytes:
    """A 7z holding `data` under `name`, which py7zr would refuse to write: written under a
    harmless name of the same length, then the (unencoded) header patched and its CRCs redone."""
    buffer = io.BytesIO()
    placeholder = "a" * len(name)
    with py7zr.SevenZipFile(buffer, "w") as archive:
        archive.set_encoded_header_mode(False)
        archive.writestr(data, placeholder)
    raw = bytearray(buffer.getvalue())
    at = raw.index(placeholder.encode("utf-16-le"))
    raw[at : at + 2 * len(name)] = name.encode("utf-16-le")
    offset, size = struct.unpack_from("<QQ", raw, 12)
    struct.pack_into("<I", raw, 28, zlib.crc32(bytes(raw[32 + offset : 32 + offset + size])))
    struct.pack_into("<I", raw, 8, zlib.crc32(bytes(raw[12:32])))
    return bytes(raw)


def test_7z_posts_escaping_or_linked_is_refused(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "good").mkdir(parents=True)
    (raw / "good/Posts.xml").write_bytes(se_site())
    (raw / "up.7z").write_bytes(_seven_zip_named(se_site(), "./../../../../../Posts.xml"))
    (raw / "abs.7z").write_bytes(_seven_zip_named(se_site(), f"{tmp_path}/evil/Posts.xml"))
    (tmp_path / "target").mkdir()
    os.symlink("/etc/passwd", tmp_path / "target/Posts.xml")
    with py7zr.SevenZipFile(raw / "link.7z", "w") as archive:
        archive.write(tmp_path / "target/Posts.xml", "Posts.xml")
    before = _files_under(tmp_path)
    stats, docs = run(StackExchange(StackExchangeConfig(largest_sites=0)), raw, tmp_path / "out")
    assert [d.id for d in docs] == ["good/1"]
    assert sorted(failures(stats)) == ["abs.7z", "link.7z", "up.7z"]
    assert all(p.startswith("refused: Posts.xml is a link or has an unsafe path") for p in failures(stats).values())
    assert {p for p in _files_under(tmp_path) - before if not p.startswith("out")} == set()


def test_repository_symlinks_are_never_followed(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret.py").write_text(f"# {SECRET}\n")
    repo = github_repo(tmp_path / "raw", "r", {"a.py": "x = 1\n"})
    github_repo(tmp_path / "raw", "other", {"b.py": f"# {SECRET}\n"})
    os.symlink("/etc/passwd", repo / "passwd.py")
    os.symlink(tmp_path / "outside/secret.py", repo / "secret.py")
    os.symlink("../other/b.py", repo / "sibling.py")
    os.symlink(tmp_path / "outside", repo / "vendor")  # a linked folder
    os.symlink("/", repo / "root")
    os.symlink(".", repo / "loop")
    os.mkfifo(repo / "pipe.py")  # reading it would block forever
    stats, docs = run(GitHub(GitHub.config_class(licenses="MIT")), tmp_path / "raw", tmp_path / "out")
    assert sorted(d.id for d in docs) == ["other/b.py", "r/a.py"]
    assert read_drops(stats) == {"license_file": 2, "symlink": 6, "special_file": 1}
    assert not any(SECRET in d.text and d.id.startswith("r/") or "root:" in d.text for d in docs)


def test_paper_folder_symlinks_and_climbing_inputs_are_not_inlined(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret.tex").write_text(SECRET)
    paper = tmp_path / "raw/2101.00001"
    paper.mkdir(parents=True)
    main = PAPER.replace("real.", "real. \\input{linked} \\input{../../outside/secret} \\input{/etc/passwd}")
    (paper / "main.tex").write_text(main)
    os.symlink(tmp_path / "outside/secret.tex", paper / "linked.tex")
    os.symlink(tmp_path / "outside/secret.tex", paper / "second.tex")  # a linked main candidate
    stats, docs = run(ArXiv(ArxivConfig(min_chars=1)), tmp_path / "raw", tmp_path / "out")
    assert [(d.id, d.text) for d in docs] == [("2101.00001/main.tex", PAPER_TEXT)]
    assert stats["documents_read"] == 1  # the linked .tex files are not inputs
