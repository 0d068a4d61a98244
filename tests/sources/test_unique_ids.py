"""Ids are unique in a source whatever layout its inputs come in: made unique by the readers
(GitHub folders beside rows, allenai/c4's en/ beside realnewslike/), refused up front where
they cannot be (a Stack Exchange site given twice), and where a reader repeats one anyway (a
JSON-lines file with repeated `id` fields, in one file or two), the engine keeps the first copy in
plan order and drops the others as `duplicate_id` where shards are written."""

from __future__ import annotations

import json
from pathlib import Path

import py7zr
import pytest

from pipeline.commands.run import run_source
from pipeline.engine.shards import read_corpus, shard_paths
from sources.c4 import C4
from sources.github import GitHub
from sources.samples.stackexchange import posts_xml
from tests.hostile.helpers import cli, run_script, write_lines
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


def _jsonl(path: Path, rows: list[tuple[str, str]]) -> None:
    write_lines(path, [json.dumps({"id": doc_id, "text": text}).encode() for doc_id, text in rows])


def test_repeated_ids_keep_the_first_copy_in_plan_order_and_drop_the_rest(tmp_path: Path) -> None:
    # Before: the run ended with exit 2 after all its work ("N id(s) are carried by more than one
    # document") and published nothing. Now the first copy in plan order (a.jsonl before b.jsonl,
    # then the earlier row) is kept, the others are counted drops naming both inputs.
    raw = tmp_path / "raw"
    _jsonl(raw / "a.jsonl", [("doc-1", "first copy " * 20), ("doc-2", "two " * 20), ("doc-1", "again in a " * 20)])
    _jsonl(raw / "b.jsonl", [("doc-3", "three " * 20), ("doc-1", "again in b " * 20), ("doc-4", "four " * 20)])
    runs = {name: tmp_path / name for name in ("one", "two", "tasks1")}
    done = {
        "one": cli("jsonl", raw, runs["one"], "--tasks", "2"),
        "two": cli("jsonl", raw, runs["two"], "--tasks", "2", "--workers", "2"),  # the later flag wins
        "tasks1": cli("jsonl", raw, runs["tasks1"], "--tasks", "1"),
    }
    for name, result in done.items():
        assert result.returncode == 0, (name, result.stderr)
        warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
        assert warnings == [
            f"warning: {runs[name] / 'jsonl'}: 1 document id(s) repeated within {raw / 'a.jsonl'} (e.g. doc-1); "
            "the later copies are dropped as duplicate_id",
            f"warning: {runs[name] / 'jsonl'}: 1 document id(s) of {raw / 'b.jsonl'} already read from "
            f"{raw / 'a.jsonl'} (e.g. doc-1); the later copies are dropped as duplicate_id",
        ], result.stderr
        folder = runs[name] / "jsonl"
        docs = {doc.id: doc.text for doc in read_corpus(folder)}
        assert docs == {"doc-1": "first copy " * 20, "doc-2": "two " * 20, "doc-3": "three " * 20,
                        "doc-4": "four " * 20}
        stats = json.loads((folder / "stats.json").read_text())
        assert stats["stages"][-1] == {"name": "unique_ids", "in": 6, "out": 4, "dropped": {"duplicate_id": 2}}
        assert stats["documents_read"] == 6 and stats["documents_kept"] == 4
        assert stats["duplicate_ids"] == {"total": 2, "listed": [
            {"id": "doc-1", "kept_in": str(raw / "a.jsonl"), "dropped_in": str(raw / "a.jsonl")},
            {"id": "doc-1", "kept_in": str(raw / "a.jsonl"), "dropped_in": str(raw / "b.jsonl")},
        ]}
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["documents"] == 4 == sum(shard["documents"] for shard in manifest["shards"])
        verified = run_script("pipeline", "verify", str(folder), cwd=tmp_path)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        rerun = cli("jsonl", raw, runs[name], "--tasks", "2" if name != "tasks1" else "1")
        assert rerun.returncode == 0 and "warning" not in rerun.stderr, rerun.stderr  # complete: nothing to redo
    # Two tasks on one worker or on two: the same bytes.
    one, two = (shard_paths(runs[name] / "jsonl") for name in ("one", "two"))
    assert [p.read_bytes() for p in one] == [p.read_bytes() for p in two]


def test_repeated_ids_under_keep_dropped_are_kept_for_audit(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _jsonl(raw / "a.jsonl", [("doc-1", "first copy " * 20)])
    _jsonl(raw / "b.jsonl", [("doc-1", "again in b " * 20)])
    done = cli("jsonl", raw, tmp_path / "out", "--tasks", "2", "--keep-dropped")
    assert done.returncode == 0, done.stderr
    dropped = list(read_corpus(tmp_path / "out/jsonl/dropped"))
    assert [(d.id, d.text, d.meta["drop_stage"], d.meta["drop_reason"]) for d in dropped] == [
        ("doc-1", "again in b " * 20, "unique_ids", "duplicate_id")]
    assert [d.text for d in read_corpus(tmp_path / "out/jsonl")] == ["first copy " * 20]
