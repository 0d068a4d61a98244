"""The line splitter every JSON-lines reader shares: a UTF-8 byte-order mark at the very start
of a file is dropped, however the file's reads cut it; anywhere else it is the line's data."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from pipeline.common.errors import InputError
from pipeline.engine.document import Skipped
from pipeline.formats.files import bounded_lines, decode_utf8_or_latin1, json_rows, open_text

BOM = b"\xef\xbb\xbf"


def one_member_per_byte(data: bytes) -> gzip.GzipFile:
    """`data` gzipped as one member per byte: each read1 of it gives one byte, so the mark's
    three bytes come in three reads (a concatenation of gzip members is a valid .gz file)."""
    return gzip.GzipFile(fileobj=io.BytesIO(b"".join(gzip.compress(bytes([b]), mtime=0) for b in data)))


def test_a_mark_at_the_start_is_dropped_however_the_reads_cut_it() -> None:
    data = BOM + b'{"text": "a"}\n' + BOM + b'{"text": "b"}\n{"text": "\xef\xbb\xbfc"}\n'
    expected = [b'{"text": "a"}', BOM + b'{"text": "b"}', b'{"text": "\xef\xbb\xbfc"}']
    assert data.decode("utf-8-sig").encode().split(b"\n")[:3] == expected  # Python's own reading agrees
    assert list(bounded_lines(io.BytesIO(data))) == expected
    assert list(bounded_lines(one_member_per_byte(data))) == expected


def test_a_file_of_a_mark_alone_has_no_line_and_short_files_are_whole() -> None:
    assert list(bounded_lines(io.BytesIO(BOM))) == []
    assert list(bounded_lines(one_member_per_byte(BOM + b"\n"))) == [b""]
    assert list(bounded_lines(io.BytesIO(b"\xef\xbb"))) == [b"\xef\xbb"]  # not a whole mark: data
    assert list(bounded_lines(io.BytesIO(b"x"))) == [b"x"]
    assert list(bounded_lines(io.BytesIO(b""))) == []


def test_open_text_drops_the_mark_at_the_start_only(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(gzip.compress(BOM + b'{"text": "a"}\n' + BOM + b'{"text": "b"}\n', mtime=0))
    with open_text(str(path)) as lines:
        assert list(lines) == ['{"text": "a"}\n', '\ufeff{"text": "b"}\n']


def test_a_file_none_of_whose_lines_is_json_is_an_input_error_after_its_lines_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("<html>\n\n<body>503 Service Unavailable</body>\n")
    items = []
    with pytest.raises(InputError) as caught:
        for item in json_rows(str(path)):
            items.append(item)
    assert items == [Skipped("malformed_json")] * 2
    assert (caught.value.path, caught.value.problem) == (
        str(path), "not JSON lines: no line of it is JSON; it starts with '<html>' (an error page?)")
    # One JSON line among them makes it a file of records whose bad lines are counted.
    path.write_text('<html>\n{"text": "a"}\n')
    assert list(json_rows(str(path))) == [Skipped("malformed_json"), (1, {"text": "a"})]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_text_saved_as_utf16_or_utf32_with_its_mark_is_decoded(encoding: str) -> None:
    text = "Chapter I\nCafé — “quoted”\n"
    marked = ("\ufeff" + text).encode(encoding) if encoding[-2:] in ("le", "be") else text.encode(encoding)
    assert decode_utf8_or_latin1(marked) == text


def test_utf8_and_latin1_keep_their_reading_beside_the_marks() -> None:
    assert decode_utf8_or_latin1("\ufeffCafé\n".encode()) == "Café\n"
    assert decode_utf8_or_latin1("Café\n".encode("latin-1")) == "Café\n"
    # Latin-1 text that happens to open with the bytes of a UTF-16 mark but does not decode so.
    assert decode_utf8_or_latin1(b"\xff\xfe\x00\xd8") == "\xff\xfe\x00\xd8"
