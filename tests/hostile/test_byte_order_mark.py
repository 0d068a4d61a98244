"""A UTF-8 byte-order mark at the start of a JSON-lines file (Windows tools write one), through
`pipeline run SOURCE` for every source that reads JSON lines, plain and gzipped: the first record
is kept like the others. The mark is dropped only at the start of the file: one at the start of a
later line is that line's data (not JSON, so skipped as malformed_json), and one inside a string
is text. What is kept is judged against Python's own utf-8-sig decoding and json.loads."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from pipeline.engine.shards import read_corpus
from tests.hostile.helpers import assert_balanced, cli, write_lines
from tests.hostile.sources_data import C4_PAGE, CODE

pytestmark = pytest.mark.slow  # each test runs the CLI in subprocesses

BOM = b"\xef\xbb\xbf"


def book(n: int) -> str:
    """A book of its own words, long enough to be kept, far from the others (no near-duplicate)."""
    return " ".join(f"word{n}x{i}" for i in range(250)) + "."


def record(source: str, n: int) -> bytes:
    """The `n`th record of a JSON-lines file of `source`, one that the source keeps."""
    if source == "c4":
        row = {"text": C4_PAGE, "url": f"https://a.example/{n}", "timestamp": "2019-04-25T12:57:54Z"}
        return json.dumps(row).encode()
    if source == "github":
        return json.dumps({"repo_name": "o/r", "path": f"f{n}.py", "content": CODE.replace("area", f"area{n}"),
                           "license": "mit"}).encode()
    if source == "books":
        return json.dumps({"text": book(n), "title": f"Book {n}"}).encode()
    return json.dumps({"text": f"Record {n} of the file, with a \ufeff inside its text."}).encode()


# Where each source finds its JSON-lines files, plain and gzipped.
FILES = {
    "jsonl": ("a.jsonl", "b.jsonl.gz"),
    "c4": ("a.json", "b.json.gz"),  # C4 is read from .json(.gz): allenai/c4's names
    "books": ("books3/a.jsonl", "books3/b.jsonl.gz"),
    "github": ("a.jsonl", "b.jsonl.gz"),
}


def independent_records(path: Path) -> list[dict]:
    """The file's JSON records by Python's own reading: utf-8-sig drops a mark at the start only."""
    data = path.read_bytes()
    text = (gzip.decompress(data) if path.name.endswith(".gz") else data).decode("utf-8-sig")
    records = []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # the line that starts with a mark of its own
    return records


def kept_text(source: str, row: dict) -> str:
    return row["content"] if source == "github" else row["text"]


@pytest.mark.parametrize("source", sorted(FILES))
def test_a_byte_order_mark_at_the_start_of_the_file_loses_no_record(source: str, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    expected = []
    for k, name in enumerate(FILES[source]):
        first, second, third = (record(source, 10 * k + n) for n in range(3))
        # A mark at the start of the file, and one at the start of the second line: that one is data.
        path = write_lines(raw / name, [BOM + first, BOM + second, third])
        assert path.read_bytes().startswith(b"\x1f\x8b" if name.endswith(".gz") else BOM)
        rows = independent_records(path)
        assert rows == [json.loads(first), json.loads(third)]
        expected.extend(kept_text(source, row) for row in rows)
    done = cli(source, raw, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    stats = json.loads((tmp_path / "out" / source / "stats.json").read_text())
    assert_balanced(stats)
    docs = list(read_corpus(tmp_path / "out" / source))
    assert sorted(d.text for d in docs) == sorted(expected)
    # The first record of each file is record 0 of it; the second line is the one skipped.
    numbers = sorted(d.id.rsplit(":", 1)[1] for d in docs)
    assert numbers == ["0", "0", "2", "2"], [d.id for d in docs]
    assert stats["stages"][0]["dropped"] == {"malformed_json": 2}
    assert stats["files"]["failed"] == []
    if source == "jsonl":  # a mark inside a string is text
        assert all("\ufeff" in d.text for d in docs)
