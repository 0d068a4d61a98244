"""The engine end to end: stats invariants, worker-count independence, kill and resume."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.commands.run import run_source
from pipeline.common.errors import UserError
from pipeline.engine.document import Document
from pipeline.engine.shards import read_corpus, shard_paths
from pipeline.engine.stage import Stage
from tests.conftest import REPO, subprocess_env
from sources.jsonl import Jsonl
from tests.pipeline.engine.fixtures import Numbers, run, write_inputs


def _stats(output: Path) -> dict:
    return json.loads((output / "numbers" / "stats.json").read_text())


def test_stats_balance_and_match_the_shards(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in")
    run(tmp_path / "in", tmp_path / "out", workers=2)
    stats = _stats(tmp_path / "out")
    for stage in stats["stages"]:
        assert stage["in"] == stage["out"] + sum(stage["dropped"].values()), stage
    by_name = {s["name"]: s for s in stats["stages"]}
    assert by_name["read"]["in"] == 300
    # 300 numbers, 43 multiples of 7 (0, 7, ..., 294).
    assert by_name["drop_sevens"]["dropped"] == {"multiple_of_7": 43}
    # Numbers ending in 3 share one text: 30 of them, 4 are multiples of 7 (63, 133, 203, 273),
    # so 26 reach dedup and 25 are dropped.
    assert by_name["exact_dedup"]["dropped"] == {"duplicate": 25}
    rows = list(read_corpus(tmp_path / "out" / "numbers"))
    assert stats["documents_kept"] == len(rows) == 300 - 43 - 25
    manifest = json.loads((tmp_path / "out" / "numbers" / "manifest.json").read_text())
    assert manifest["documents"] == len(rows)
    assert sum(s["documents"] for s in manifest["shards"]) == len(rows)


def test_one_and_two_workers_keep_the_same_documents(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in")
    run(tmp_path / "in", tmp_path / "one", workers=1)
    run(tmp_path / "in", tmp_path / "two", workers=2)
    one = {(d.id, d.text, tuple(sorted(d.meta.items()))) for d in read_corpus(tmp_path / "one" / "numbers")}
    two = {(d.id, d.text, tuple(sorted(d.meta.items()))) for d in read_corpus(tmp_path / "two" / "numbers")}
    assert one == two and len(one) == 232
    assert _stats(tmp_path / "one")["stages"] == _stats(tmp_path / "two")["stages"]


def test_only_the_last_pass_parts_are_hashed_and_their_sha256_is_the_shards(tmp_path: Path) -> None:
    """A first pass's parts are read by the next pass and deleted: not hashed. The last pass's
    are the published shards: their recorded sha256 is the file's."""
    import hashlib

    write_inputs(tmp_path / "in")
    run(tmp_path / "in", tmp_path / "out", workers=2)
    folder = tmp_path / "out" / "numbers"
    first = [json.loads(m.read_text()) for m in sorted((folder / "_work" / "pass0").glob("task-*.done.json"))]
    last = [json.loads(m.read_text()) for m in sorted((folder / "_work" / "pass1").glob("task-*.done.json"))]
    assert len(first) == len(last) == 2
    assert all(part["documents"] > 0 and "sha256" not in part for marker in first for part in marker["parts"])
    recorded = [part["sha256"] for marker in last for part in marker["parts"]]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert recorded == [s["sha256"] for s in manifest["shards"]]
    assert recorded == [hashlib.sha256((folder / s["file"]).read_bytes()).hexdigest() for s in manifest["shards"]]


def test_progress_bar_counts_every_document_read_and_its_characters(tmp_path: Path, capfd) -> None:
    """The workers count characters only for a bar that is shown; shown, it ends at every
    document read (300) and the MB/s of their characters, whatever the workers."""
    write_inputs(tmp_path / "in")
    run(tmp_path / "in", tmp_path / "out", workers=2, show_progress=True)
    bar = capfd.readouterr().err.rsplit("\r", 1)[-1]
    # Two passes (a global stage): the bar names the pass once, with one colon.
    assert bar.startswith("numbers pass 2/2: 300 docs [") and "MB/s" in bar, bar
    run(tmp_path / "in", tmp_path / "quiet", workers=2, show_progress=False)
    assert "docs" not in capfd.readouterr().err


@pytest.mark.slow
def test_killed_run_resumes_to_identical_shards_and_stats(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in", files=8, per_file=40)
    run(tmp_path / "in", tmp_path / "straight", workers=2, tasks=4)

    cmd = [sys.executable, "-m", "tests.pipeline.engine.fixtures", str(tmp_path / "in"), str(tmp_path / "killed")]
    env = dict(subprocess_env(), HERD_TEST_DELAY="0.01")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True)
    markers = tmp_path / "killed" / "numbers" / "_work" / "pass0"
    deadline = time.monotonic() + 120
    while not list(markers.glob("task-*.done.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(markers.glob("task-*.done.json")))
    assert 1 <= done < 4
    assert not (tmp_path / "killed" / "numbers" / "manifest.json").exists()

    run(tmp_path / "in", tmp_path / "killed", workers=2, tasks=4)
    a = [p.read_bytes() for p in shard_paths(tmp_path / "straight" / "numbers")]
    b = [p.read_bytes() for p in shard_paths(tmp_path / "killed" / "numbers")]
    assert a == b and len(a) >= 2
    assert _stats(tmp_path / "straight") == _stats(tmp_path / "killed")
    assert (tmp_path / "straight" / "numbers" / "manifest.json").read_text() == (
        tmp_path / "killed" / "numbers" / "manifest.json"
    ).read_text()


def test_rerun_of_finished_run_changes_nothing(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in", files=2)
    run(tmp_path / "in", tmp_path / "out", workers=1)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / "numbers").glob("shard-*.arrow")}
    report = run(tmp_path / "in", tmp_path / "out", workers=2)
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / "numbers").glob("shard-*.arrow")}
    assert before == after and report.documents_kept == 100 - 15 - 8


def test_kept_dropped_documents_carry_stage_and_reason(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in", files=1)
    run(tmp_path / "in", tmp_path / "out", workers=1, keep_dropped=True)
    dropped = list(read_corpus(tmp_path / "out" / "numbers" / "dropped"))
    reasons = sorted({(d.meta["drop_stage"], d.meta["drop_reason"]) for d in dropped})
    assert reasons == [("drop_sevens", "multiple_of_7"), ("exact_dedup", "duplicate")]
    assert len(dropped) == 8 + 4  # 0,7,...,49 ; 13,23,33,43 duplicate 3


def test_every_run_in_one_process_sets_up_and_loads_its_own_stages(tmp_path: Path) -> None:
    # Stage objects of a finished run are freed and their ids reused; set-up must not be skipped.
    write_inputs(tmp_path / "in", files=2)
    kept = [run(tmp_path / "in", tmp_path / f"out{i}", workers=1).documents_kept for i in range(5)]
    assert kept == [77] * 5


def test_a_run_in_process_leaves_the_interpreters_settings_as_it_found_them(tmp_path: Path) -> None:
    import gc

    # The document loop collects and switches threads less often; the caller's settings return.
    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    write_inputs(tmp_path / "in", files=2)
    run(tmp_path / "in", tmp_path / "out", workers=1)
    assert gc.get_threshold() == threshold and sys.getswitchinterval() == interval


class _Broken(Stage):
    """A stage that raises on every document: a bug, not a hostile document."""

    name = "broken"

    def process(self, doc: Document) -> Document:
        raise KeyError("no such field")


class _BrokenNumbers(Numbers):
    def stages(self) -> list[Stage]:
        return [_Broken()]


def test_a_stage_raising_on_every_document_gives_up_with_one_line_naming_the_error(tmp_path: Path) -> None:
    """A stage's exception on a document drops that document (`stage_error`) in the worker; one
    that raises on every document is given up at its 25th in a row, with the error and where it
    was raised, not dropped document by document through the whole corpus."""
    write_inputs(tmp_path / "in", files=1, per_file=40)
    with pytest.raises(UserError) as raised:
        run_source(_BrokenNumbers(), str(tmp_path / "in"), str(tmp_path / "out"), 1, show_progress=False)
    message = str(raised.value)
    raised_at = next(n for n, line in enumerate(Path(__file__).read_text().splitlines(), 1)
                     if line.strip() == 'raise KeyError("no such field")')
    assert message == (f"task 0 of pass 0: stage broken raised KeyError: 'no such field' "
                       f"(at engine/test_executor.py:{raised_at}) on 25 documents in a row, the last "
                       f"{tmp_path / 'in' / 'in-00.jsonl'} record 24; giving up: the stage fails, not the documents "
                       "(rerun the same command to try again)")
    assert not (tmp_path / "out" / "numbers" / "manifest.json").exists()


class _RaisesOnSome(Stage):
    """A transform that changes each document in place, and a library's error on some documents
    (those whose number is a multiple of 5), as a parser raises on markup nobody foresaw: when it
    raises, the documents before in its batch are changed already."""

    name = "picky"

    def process(self, doc: Document) -> Document:
        doc.text += " [picked]"
        doc.meta["picked"] = doc.meta.get("picked", 0) + 1
        if int(doc.id.rsplit("-", 1)[-1]) % 5 == 0:
            raise ValueError("unexpected markup")
        return doc


class _PickyJsonl(Jsonl):
    name = "picky"

    def fields(self) -> list[pa.Field]:
        return [*super().fields(), pa.field("picked", pa.int64())]

    def stages(self) -> list[Stage]:
        return [_RaisesOnSome()]


def test_documents_a_stage_raises_on_are_dropped_in_the_worker_however_many(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    """Each document a stage raises on is dropped and listed, and the task goes on: 40 of them in
    one file, where each used to fail the task twice and 13 ended the run (its failures ran out)."""
    write_inputs(tmp_path / "in", files=1, per_file=200)
    report = run_source(_PickyJsonl(), str(tmp_path / "in"), str(tmp_path / "out"), 1, show_progress=False,
                        keep_dropped=True)
    raising = [n for n in range(200) if n % 5 == 0]
    picky = report.stats["stages"][-1]
    assert (picky["name"], picky["in"], picky["out"], picky["dropped"]) == ("picky", 200, 160, {"stage_error": 40})
    source = str(tmp_path / "in" / "in-00.jsonl")
    assert [(f["input"], f["record"], f["id"], f["stage"], f["reason"]) for f in report.stats["documents_failed"]] == [
        (source, n, f"f0-{n}", "picky", "stage_error") for n in raising]
    kept = read_corpus(tmp_path / "out" / "picky")
    assert {d.id for d in kept} == {f"f0-{n}" for n in range(200) if n % 5}
    # Each kept document went through the stage once, as it came in: those its batch had changed
    # before the raise were given back their text and metadata before going again alone.
    originals = {json.loads(line)["id"]: json.loads(line)["text"]
                 for line in (tmp_path / "in" / "in-00.jsonl").read_text().splitlines()}
    assert all(d.text == originals[d.id] + " [picked]" and d.meta["picked"] == 1 for d in kept)
    # A dropped one is kept (--keep-dropped) as it came into the stage.
    dropped = read_corpus(tmp_path / "out" / "picky" / "dropped")
    assert sorted((d.id, d.text, d.meta.get("picked"), d.meta["drop_reason"]) for d in dropped) == sorted(
        (f"f0-{n}", originals[f"f0-{n}"], None, "stage_error") for n in raising)
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 40 and warnings[0].startswith(
        f"warning: task 0 of pass 0, {source} record 0: raised ValueError: unexpected markup in stage picky (at ")
    assert warnings[0].endswith("; the document is dropped as stage_error")
    timings = json.loads((tmp_path / "out" / "picky" / "timings.json").read_text())
    assert timings["workers_lost"] == []  # no worker died and no task ran again


class ScoredByAModel(Stage):
    """A stage that loads a model file (its path only, as a stage holds until setup)."""

    name = "scored"

    def __init__(self, model: str) -> None:
        self.model = model

    def model_files(self) -> list[Path]:
        return [Path(self.model)]

    def process(self, doc: Document) -> Document:
        return doc


class NumbersScored(Numbers):
    def __init__(self, model: Path) -> None:
        super().__init__()
        self.model = str(model)

    def stages(self) -> list[Stage]:
        return [*super().stages(), ScoredByAModel(self.model)]


def test_a_finished_run_is_not_called_complete_once_a_model_it_loads_has_changed(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in", files=2)
    model = tmp_path / "models" / "scorer.bin"
    model.parent.mkdir()
    model.write_bytes(b"the first model")

    def rerun(restart: bool = False):
        return run_source(NumbersScored(model), str(tmp_path / "in"), str(tmp_path / "out"), workers=1,
                          show_progress=False, restart=restart)

    first = rerun()
    plan = json.loads((tmp_path / "out" / "numbers" / "_work" / "plan.json").read_text())
    assert plan["models"] == {"scored": {"scorer.bin": hashlib.sha256(b"the first model").hexdigest()}}
    assert rerun().documents_kept == first.documents_kept  # the same model: complete
    model.write_bytes(b"a model trained again")
    with pytest.raises(UserError) as refused:
        rerun()
    assert str(refused.value) == (
        f"{tmp_path / 'out' / 'numbers'}: the scored model scorer.bin is not the one the run started there used "
        f"(sha256 {hashlib.sha256(b'the first model').hexdigest()[:12]}, now "
        f"{hashlib.sha256(b'a model trained again').hexdigest()[:12]}: trained again or replaced since); pass "
        "--restart to run with it, or put that model back to resume")
    model.write_bytes(b"the first model")  # put back: the run resumes, complete
    assert rerun().documents_kept == first.documents_kept
    model.write_bytes(b"a model trained again")
    rerun(restart=True)
    plan = json.loads((tmp_path / "out" / "numbers" / "_work" / "plan.json").read_text())
    assert plan["models"]["scored"]["scorer.bin"] == hashlib.sha256(b"a model trained again").hexdigest()


EDITED_STAGE = '''
from pipeline.engine.stage import Filter


class KeepAll(Filter):
    name = "keep_all"

    def keep(self, doc):
        return True
'''


def test_a_rerun_after_the_code_of_a_stage_changed_says_so_and_keeps_what_was_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    (tmp_path / "code").mkdir()
    module_file = tmp_path / "code" / "edited_stage.py"
    module_file.write_text(EDITED_STAGE)
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    stage_class = importlib.import_module("edited_stage").KeepAll

    class NumbersKeptAll(Numbers):
        def stages(self) -> list[Stage]:
            return [*super().stages(), stage_class()]

    write_inputs(tmp_path / "in", files=2)
    output = tmp_path / "out" / "numbers"

    def rerun(restart: bool = False) -> str:
        run_source(NumbersKeptAll(), str(tmp_path / "in"), str(tmp_path / "out"), workers=1, show_progress=False,
                   restart=restart)
        return capsys.readouterr().err

    assert "changed since" not in rerun()
    plan = json.loads((output / "_work" / "plan.json").read_text())
    assert plan["code"]["edited_stage"] == hashlib.sha256(EDITED_STAGE.encode()).hexdigest()
    assert {"sources.jsonl", "pipeline.dedup.exact", "pipeline.engine.stage"} <= set(plan["code"])
    shards = {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in output.glob("shard-*.arrow")}
    assert "changed since" not in rerun()  # the same code: complete, without a word
    module_file.write_text(EDITED_STAGE.replace("return True", "return doc.id != 'f0-1'"))  # as an upgrade would
    warned = [line for line in rerun().splitlines() if "changed since" in line]
    assert warned == [f"warning: {output}: the code of edited_stage changed since the run there started (another "
                      "herd, or an edit); what it finished stays as that code wrote it: pass --restart to make all "
                      "of it with this code"]
    assert {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in output.glob("shard-*.arrow")} == shards
    assert "changed since" not in rerun(restart=True)
    assert "changed since" not in rerun()
