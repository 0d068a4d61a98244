"""Ids are unique in a source whatever layout its inputs come in: made unique by the readers
(GitHub folders beside rows, allenai/c4's en/ beside realnewslike/), refused up front where
they cannot be (a Stack Exchange site given twice), and refused by the engine where shards are
written when a reader repeats one anyway (a JSON-lines file with repeated `id` fields)."""

from __future__ import annotations

import json
from pathlib import Path

import py7zr
import pytest

from pipeline.commands.run import run_source
from pipeline.engine.shards import read_corpus
from sources.c4 import C4
from sources.github import GitHub
from sources.samples.stackexchange import posts_xml
from tests.hostile.helpers import cli, write_lines
from tests.hostile.sources_data import CODE, MIT, c4_lines

pytestmark = pytest.mark.slow  # runs end to end, through the CLI too


def _ids(folder: Path) -> list[str]:
    return [doc.id for doc in read_corpus(folder)]


def test_github_file_as_folder_and_as_rows_gets_unique_ids(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "r").mkdir(parents=True)
    (raw / "r/LICENSE").write_text(MIT)
    (raw / "r/a.py").write_text(CODE)
    row = {"repo_name": "r", "path": "a.py", "content": CODE, "license": "mit"}
    changed = dict(row, content=CODE + "print(area(2, 3))\n")
    # The folder's file again as a row, a changed version of it, and the first row once more.
    write_lines(raw / "rows.jsonl", [json.dumps(r).encode() for r in (row, changed, row)])
    for workers in (1, 2):  # the folder and the rows in one task, or in two
        report = run_source(GitHub(), str(raw), str(tmp_path / f"out{workers}"), workers=workers, show_progress=False)
        ids = _ids(tmp_path / f"out{workers}/github")
        assert len(ids) == len(set(ids))
        # Before: three documents with the id r/a.py, and exact dedup kept two copies.
        assert sorted(ids) == ["r/a.py", "rows.jsonl:1"]
        stages = {s["name"]: s for s in report.stats["stages"]}
        assert stages["exact_dedup"]["dropped"] == {"duplicate": 2}


def test_c4_en_and_realnewslike_files_of_one_name_get_unique_ids(tmp_path: Path) -> None:
    raw = tmp_path / "c4"
    name = "c4-validation.00000-of-00001.json.gz"  # allenai/c4's variants share file names
    for variant in ("en", "en.noblocklist", "realnewslike"):
        write_lines(raw / variant / name, c4_lines(2))
    write_lines(raw / name, c4_lines(1))  # and one directly under the root
    run_source(C4(), str(raw), str(tmp_path / "out"), workers=2, show_progress=False)
    assert sorted(_ids(tmp_path / "out/c4")) == [
        "c4-validation.00000-of-00001:0",
        "en.noblocklist/c4-validation.00000-of-00001:0", "en.noblocklist/c4-validation.00000-of-00001:1",
        "en/c4-validation.00000-of-00001:0", "en/c4-validation.00000-of-00001:1",
        "realnewslike/c4-validation.00000-of-00001:0", "realnewslike/c4-validation.00000-of-00001:1",
    ]
    # The same files read from the variant's own folder keep their bare names.
    run_source(C4(), str(raw / "en"), str(tmp_path / "en"), show_progress=False)
    assert _ids(tmp_path / "en/c4") == ["c4-validation.00000-of-00001:0", "c4-validation.00000-of-00001:1"]


def test_a_stackexchange_site_given_twice_is_refused(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    rows = [{"Id": 1, "PostTypeId": 1, "Score": 1, "Title": "Q", "Body": "<p>How?</p>"}]
    (raw / "s.example").mkdir(parents=True)
    (raw / "s.example/Posts.xml").write_bytes(posts_xml(rows))
    with py7zr.SevenZipFile(raw / "s.example.7z", "w") as archive:
        archive.writestr(posts_xml(rows), "Posts.xml")
    done = cli("stackexchange", raw, tmp_path / "out")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("pipeline: error: ") and "s.example" in line and "given as" in line
    assert not (tmp_path / "out").exists()


def test_the_engine_refuses_repeated_ids_where_shards_are_written(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    rows = [{"id": "doc-1", "text": "one " * 40}, {"id": "doc-2", "text": "two " * 40}]
    write_lines(raw / "a.jsonl", [json.dumps(r).encode() for r in rows])
    write_lines(raw / "b.jsonl", [json.dumps(dict(rows[0], text="again " * 40)).encode()])
    done = cli("jsonl", raw, tmp_path / "out")
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line == (f"pipeline: error: {tmp_path / 'out' / 'jsonl'}: 1 id(s) are carried by more than one document, "
                    "e.g. doc-1; ids must be unique in a source (a record given twice, or a reader's bug): "
                    "nothing was published")
    assert not (tmp_path / "out/jsonl/manifest.json").exists()
    assert not list((tmp_path / "out/jsonl").glob("shard-*.arrow"))
