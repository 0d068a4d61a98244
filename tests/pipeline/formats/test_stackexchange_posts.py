"""Posts.xml by byte ranges: cuts where rows start, every row read once in order, judged by lxml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from pipeline.common.errors import InputError
from pipeline.formats.stackexchange_posts import Answer, Question, open_rows, read_rows, split_rows
from sources.samples.stackexchange import posts_xml


def _posts(path: Path, count: int) -> Path:
    rows = [{"Id": i, "PostTypeId": 1 if i % 3 == 1 else 2, "ParentId": i - i % 3 + 1, "Score": i % 7,
             "Title": f"Question {i}", "Body": f"<p>body {i} " + "x" * (i % 50) + "</p>"} for i in range(1, count + 1)]
    for row in rows:
        if row["PostTypeId"] == 1:
            del row["ParentId"]
    rows.insert(5, {"Id": 9999, "PostTypeId": 5, "Body": "a tag wiki"})
    path.write_bytes(posts_xml(rows))
    return path


def _ids(path: str, tmp: Path) -> list[int | str]:
    with open_rows(path, tmp, 100) as stream:
        return [p.id if isinstance(p, (Question, Answer)) else p for p in read_rows(path, stream)]


def test_ranges_hold_every_row_once_in_order(tmp_path: Path) -> None:
    posts = _posts(tmp_path / "Posts.xml", 300)
    data = posts.read_bytes()
    ranges = split_rows(str(posts), 1000)
    spans = [tuple(map(int, re.fullmatch(r".*#rows=(\d+)-(\d+)", r).groups())) for r in ranges]
    assert len(spans) >= 10 and spans[0][0] == 0 and spans[-1][1] == len(data)
    assert all(a[1] == b[0] and data[b[0]:b[0] + 5] == b"<row " for a, b in zip(spans, spans[1:]))
    expected = [int(r.get("Id")) if r.get("PostTypeId") in ("1", "2") else "other_post_type"
                for r in etree.fromstring(data).iter("row")]
    assert [i for r in ranges for i in _ids(r, tmp_path)] == expected == _ids(str(posts), tmp_path)


@pytest.mark.parametrize("markup", ["<!-- {rows} -->", "<![CDATA[ {rows} ]]>", "<?note {rows} ?>"])
def test_rows_inside_a_comment_cdata_or_instruction_are_never_read_as_rows(tmp_path: Path, markup: str) -> None:
    """A cut at a `<row` inside a comment made its rows documents of the next range (36 phantom
    questions of 20 real ones): such a file is read whole, as lxml reads it."""
    posts = _posts(tmp_path / "Posts.xml", 60)
    data = posts.read_bytes()
    phantoms = " ".join(f'<row Id="{900 + j}" PostTypeId="1" Score="5" Title="PHANTOM" Body="&lt;p&gt;x&lt;/p&gt;" />'
                        for j in range(40))
    middle = data.index(b"<row", len(data) // 2)
    posts.write_bytes(data[:middle] + markup.format(rows=phantoms).encode() + b"\n  " + data[middle:])
    ranges = split_rows(str(posts), 1000)
    assert ranges == [str(posts)]
    expected = [int(r.get("Id")) if r.get("PostTypeId") in ("1", "2") else "other_post_type"
                for r in etree.parse(str(posts)).getroot().iter("row")]
    assert 900 not in expected and [i for r in ranges for i in _ids(r, tmp_path)] == expected


def test_a_file_under_the_range_size_is_one_input(tmp_path: Path) -> None:
    posts = _posts(tmp_path / "Posts.xml", 10)
    assert split_rows(str(posts), 1 << 20) == [str(posts)]
    assert split_rows(str(posts), 0) == [str(posts)]


def test_a_range_of_a_file_cut_since_planning_is_one_clear_error(tmp_path: Path) -> None:
    posts = _posts(tmp_path / "Posts.xml", 300)
    last = split_rows(str(posts), 1000)[-1]
    posts.write_bytes(posts.read_bytes()[:2000])
    with pytest.raises(InputError, match=r"not a range of rows of .*Posts.xml \(2,000 bytes"):
        _ids(last, tmp_path)


def test_reading_many_archives_keeps_no_decoder_alive(tmp_path: Path) -> None:
    """Each archive's LZMA decoder (a 16 MiB dictionary at py7zr's settings) sits in reference
    cycles: with the cyclic collector as idle as the document loop keeps it, a task of many
    sites grew by a dictionary per archive. Python's traced memory stays flat over eight."""
    import gc
    import tracemalloc

    import py7zr

    from pipeline.formats.stackexchange_posts import open_posts_xml

    archive = tmp_path / "cooking.stackexchange.com.7z"
    with py7zr.SevenZipFile(archive, "w") as out:
        out.writestr(_posts(tmp_path / "Posts.xml", 30).read_bytes(), "Posts.xml")
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        growth = []
        for i in range(8):
            with open_posts_xml(str(archive), tmp_path / f"unpacked{i}", 100) as stream:
                assert stream.read().count(b"<row ") == 31
            growth.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
        gc.enable()
    assert growth[-1] - growth[0] < 2 << 20, [g >> 20 for g in growth]


@pytest.mark.parametrize("header_encryption", [False, True])
def test_an_encrypted_archive_is_one_clear_error_naming_it(tmp_path: Path, header_encryption: bool) -> None:
    """py7zr raises PasswordRequired, no ArchiveError, for an AES-encrypted archive (or one whose
    header is encrypted too): it ended the run with a traceback; it is the archive's InputError."""
    import py7zr

    from pipeline.formats.stackexchange_posts import open_posts_xml

    archive = tmp_path / "cooking.stackexchange.com.7z"
    with py7zr.SevenZipFile(archive, "w", password="secret", header_encryption=header_encryption) as out:
        out.writestr(_posts(tmp_path / "Posts.xml", 3).read_bytes(), "Posts.xml")
    with pytest.raises(InputError) as raised:
        with open_posts_xml(str(archive), tmp_path / "unpacked", 100):
            pass
    assert str(raised.value) == f"{archive}: encrypted 7z archive: there is no password to read it with"


@pytest.mark.parametrize("document, root", [
    (b"<html><head><title>404 Not Found</title></head><body><p>No such site</p></body></html>\n", "html"),
    (b"<?xml version='1.0' encoding='utf-8'?>\n<comments>\n  <row Id=\"1\" Text=\"a comment\" />\n</comments>\n",
     "comments"),
])
def test_well_formed_xml_of_another_kind_is_no_posts_xml_of_no_rows(tmp_path: Path, document: bytes,
                                                                    root: str) -> None:
    # A server's error page, or another table of the dump, saved as Posts.xml.
    path = tmp_path / "Posts.xml"
    path.write_bytes(document)
    with pytest.raises(InputError) as caught:
        _ids(str(path), tmp_path)
    assert caught.value.problem == f"not a Stack Exchange Posts.xml: its root element is <{root}>, not <posts>"
