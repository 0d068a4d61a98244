"""File names that are not UTF-8 wherever a name from a folder or an archive becomes text: a file
or folder inside a GitHub repository, a zip member whose header says UTF-8, a 7z member whose
UTF-16 name holds a lone surrogate. Each is counted with its reason through the real CLI, never
a traceback, and the rest of the input is kept. (Input files themselves: the engine's
"file name is not valid UTF-8", tests/hostile/test_one_error_path.py; tar members are read as
Latin-1, test_member_names_with_byte_ff_inside_an_arxiv_tar_are_read there.)"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
import zlib
from pathlib import Path

import py7zr
import pytest

from pipeline.engine.shards import read_corpus
from tests.hostile.helpers import assert_balanced, read_drops, run_script
from tests.hostile.sources_data import BOOK, github_repo, se_site

pytestmark = pytest.mark.slow  # each test runs the CLI in subprocesses


def _run(tmp_path: Path, source: str) -> dict:
    done = run_script("pipeline", "run", source, "--input", "raw", "--corpus", "corpus", "--workers", "1",
                      "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    stats = json.loads((tmp_path / "corpus" / source / "stats.json").read_text())
    assert_balanced(stats)
    return stats


def _failed(stats: dict) -> dict[str, str]:
    return {Path(f["path"]).name: f["problem"] for f in stats["files"]["failed"]}


def test_github_files_and_folders_named_with_byte_ff_are_counted(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    repo = github_repo(raw, "r", {"a.py": "x = 1\n"})
    (Path(os.fsdecode(bytes(repo) + b"/bad\xff.py"))).write_text("y = 2\n")
    folder = Path(os.fsdecode(bytes(repo) + b"/sub\xff"))
    folder.mkdir()
    (folder / "c.py").write_text("z = 3\n")
    other = github_repo(raw, "other", {"b.py": "w = 4\n"})
    os.rename(other, os.fsdecode(bytes(raw) + b"/other\xff"))  # a repository folder: one input
    github_repo(raw, "ok", {"d.py": "v = 5\n"})
    stats = _run(tmp_path, "github")
    assert read_drops(stats) == {"file_name_not_utf8": 2, "license_file": 2}
    assert _failed(stats) == {"other\ufffd": "file name is not valid UTF-8"}
    assert sorted(d.id for d in read_corpus(tmp_path / "corpus/github")) == ["ok/d.py", "r/a.py"]


def _zip(names: list[str], renames: dict[bytes, bytes]) -> bytes:
    """A zip of BOOK under each name, then the name bytes in `renames` replaced in both headers
    (same length). zipfile flags a non-ASCII name as UTF-8 (APPNOTE 4.4.4, bit 11), an ASCII one not."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, BOOK)
    data = buffer.getvalue()
    for old, new in renames.items():
        data = data.replace(old, new)
    return data


def test_a_zip_member_flagged_utf8_that_is_not_fails_that_archive_alone(tmp_path: Path) -> None:
    books = tmp_path / "raw/gutenberg"
    books.mkdir(parents=True)
    flagged = "QQQ\u00e9"  # five bytes in UTF-8
    (books / "flagged.zip").write_bytes(_zip([f"{flagged}.txt", "good.txt"], {flagged.encode(): b"bad\xff\xff"}))
    # No flag: the name is CP437 by the zip format's rule, and every byte is a CP437 character.
    (books / "plain.zip").write_bytes(_zip(["QQQQ.txt"], {b"QQQQ": b"ba\xffd"}))
    stats = _run(tmp_path, "books")
    (problem,) = _failed(stats).values()
    assert list(_failed(stats)) == ["flagged.zip"] and problem.startswith("member_name_not_utf8 (")
    assert [d.id for d in read_corpus(tmp_path / "corpus/books")] == ["gutenberg/plain.zip:" + b"ba\xffd".decode("cp437")]


def _seven_zip_with_surrogate_name(data: bytes) -> bytes:
    """A 7z of `data` as `xPosts.xml` whose name's first UTF-16 unit is then made a lone high
    surrogate (the unencoded header patched, its CRCs redone), which no text can hold."""
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as archive:
        archive.set_encoded_header_mode(False)
        archive.writestr(data, "xPosts.xml")
    raw = bytearray(buffer.getvalue())
    at = raw.index("xPosts.xml".encode("utf-16-le"))
    raw[at : at + 2] = b"\x00\xd8"  # U+D800
    offset, size = struct.unpack_from("<QQ", raw, 12)
    struct.pack_into("<I", raw, 28, zlib.crc32(bytes(raw[32 + offset : 32 + offset + size])))
    struct.pack_into("<I", raw, 8, zlib.crc32(bytes(raw[12:32])))
    return bytes(raw)


def test_a_7z_member_name_with_a_lone_surrogate_fails_that_site_alone(tmp_path: Path) -> None:
    (tmp_path / "raw/good").mkdir(parents=True)
    (tmp_path / "raw/good/Posts.xml").write_bytes(se_site())
    (tmp_path / "raw/bad.7z").write_bytes(_seven_zip_with_surrogate_name(se_site()))
    stats = _run(tmp_path, "stackexchange")
    (problem,) = _failed(stats).values()
    assert list(_failed(stats)) == ["bad.7z"] and problem.startswith("a member's name is not valid UTF-16 (")
    assert [d.id for d in read_corpus(tmp_path / "corpus/stackexchange")] == ["good/1"]
