"""Repeated ids resolved at finalising (pipeline/engine/unique_ids.py) survive a kill in the middle
and a rerun after an input changed. What a user sees of them (exit status, warnings, stats, verify,
worker counts) is tested through the CLI in tests/sources/test_unique_ids.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.commands.run import run_source
from pipeline.engine import unique_ids
from pipeline.engine.shards import read_corpus, shard_paths
from sources.jsonl import Jsonl
from tests.pipeline.engine.fixtures import run


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler catches it."""


def _jsonl(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": doc_id, "text": text}) + "\n" for doc_id, text in rows))


def _inputs(raw: Path) -> None:
    _jsonl(raw / "a.jsonl", [("doc-1", "first copy of one"), ("doc-2", "first copy of two")])
    _jsonl(raw / "b.jsonl", [("doc-1", "one again in b"), ("doc-3", "three")])
    _jsonl(raw / "c.jsonl", [("doc-2", "two again in c"), ("doc-4", "four")])


def test_a_finalise_killed_while_it_rewrites_parts_resumes_to_the_same_corpus(tmp_path: Path, monkeypatch) -> None:
    _inputs(tmp_path / "raw")
    run_source(Jsonl(), str(tmp_path / "raw"), str(tmp_path / "straight"), 1, 3, show_progress=False)

    # The second rename of a rewritten part never happens: one part is in place, its marker
    # not yet updated, the other part still beside its original.
    renames = []

    def replace_then_die(src: str | Path, dst: str | Path) -> None:
        if renames:
            raise Killed
        renames.append(dst)
        os.replace(src, dst)

    monkeypatch.setattr(unique_ids, "os", SimpleNamespace(replace=replace_then_die))
    with pytest.raises(Killed):
        run_source(Jsonl(), str(tmp_path / "raw"), str(tmp_path / "killed"), 1, 3, show_progress=False)
    assert len(renames) == 1 and not (tmp_path / "killed/jsonl/manifest.json").exists()
    monkeypatch.undo()

    report = run_source(Jsonl(), str(tmp_path / "raw"), str(tmp_path / "killed"), 1, 3, show_progress=False)
    assert report.documents_kept == 4
    straight, killed = (shard_paths(tmp_path / name / "jsonl") for name in ("straight", "killed"))
    assert [p.read_bytes() for p in straight] == [p.read_bytes() for p in killed]
    for name in ("manifest.json", "stats.json"):
        assert (tmp_path / "straight/jsonl" / name).read_text() == (tmp_path / "killed/jsonl" / name).read_text()
    assert {d.id: d.text for d in read_corpus(tmp_path / "killed/jsonl")} == {
        "doc-1": "first copy of one", "doc-2": "first copy of two", "doc-3": "three", "doc-4": "four"}


def test_an_input_changed_after_the_run_resolves_the_ids_afresh(tmp_path: Path) -> None:
    _inputs(tmp_path / "raw")
    out = str(tmp_path / "out")
    run_source(Jsonl(), str(tmp_path / "raw"), out, 1, 3, show_progress=False)
    # a.jsonl no longer holds doc-1 and doc-2: the copies dropped from b.jsonl and c.jsonl come back.
    _jsonl(tmp_path / "raw/a.jsonl", [("doc-9", "nine, a new document")])
    report = run_source(Jsonl(), str(tmp_path / "raw"), out, 1, 3, show_progress=False)
    assert {d.id: d.text for d in read_corpus(tmp_path / "out/jsonl")} == {
        "doc-9": "nine, a new document", "doc-1": "one again in b", "doc-3": "three", "doc-2": "two again in c",
        "doc-4": "four"}
    assert report.stats["documents_kept"] == 5 and "duplicate_ids" not in report.stats
    assert [s["name"] for s in report.stats["stages"]] == ["read", "min_chars"]


def test_the_first_copy_in_plan_order_wins_across_tasks_and_passes(tmp_path: Path) -> None:
    # Numbers has an exact-dedup pass, so rows reach the shards through a second pass. With two
    # tasks, task 0 reads in-00 and in-02 and its parts come first in the shards; in-01 (task 1)
    # still comes before in-02 in the plan, so its copy is the one kept.
    raw = tmp_path / "raw"
    _jsonl(raw / "in-00.jsonl", [("f0-1", "one in zero " * 5), ("f0-2", "two in zero " * 5)])
    _jsonl(raw / "in-01.jsonl", [("f0-3", "three in one " * 5), ("f0-4", "four in one " * 5)])
    _jsonl(raw / "in-02.jsonl", [("f0-3", "three in two " * 5), ("f0-5", "five in two " * 5),
                                 ("f0-3", "three again in two " * 5)])
    for tasks in (1, 2, 3):
        report = run(raw, tmp_path / f"out{tasks}", workers=1, tasks=tasks)
        docs = {d.id: d.text for d in read_corpus(tmp_path / f"out{tasks}/numbers")}
        assert docs == {"f0-1": "one in zero " * 5, "f0-2": "two in zero " * 5, "f0-3": "three in one " * 5,
                        "f0-4": "four in one " * 5, "f0-5": "five in two " * 5}, tasks
        assert report.stats["stages"][-1] == {"name": "unique_ids", "in": 7, "out": 5, "dropped": {"duplicate_id": 2}}
        assert report.stats["duplicate_ids"]["listed"] == [
            {"id": "f0-3", "kept_in": str(raw / "in-01.jsonl"), "dropped_in": str(raw / "in-02.jsonl")}] * 2
