"""One task of one pass, run in this process on real files: which inputs a task reads, the
stages applied in order with every document counted (in == out + dropped, per stage and for the
reader), the survivors written to Arrow parts whose sizes and sha256 the result lists, the
dropped ones written with their stage and reason, unreadable inputs reported and counted, the
completion marker that makes a rerun skip the task, and what an earlier failed attempt taught
(a poisoned document dropped at its stage, a file cut at the record a reader died on).

Parts are read back with pyarrow and hashed with hashlib, not with the engine's own reader."""

from __future__ import annotations

import hashlib
import json
import pickle
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pytest

from pipeline.common.errors import InputError
from pipeline.engine.document import Document, Skipped
from pipeline.engine.runner import RunSpec, TaskResult, run_task
from pipeline.engine.source import Source
from pipeline.engine.stage import Filter, GlobalStage, Result, Stage
from pipeline.engine.supervisor import Attempt

# ---------------------------------------------------------------------------------------------
# A source and stages small enough to predict every count by hand.


class LibraryError(Exception):
    """A library's own error type, as a reader's library raises on input it cannot take (py7zr's
    PasswordRequired, zipfile's RuntimeError for an encrypted member): none a reader expects."""


class Lines(Source):
    """One document per line, `id<TAB>text`. `SKIP <reason>` is a record the reader cannot use
    (`SKIP+ <reason>` one it still has a document for); `BOOM` damages the rest of the file;
    `UNUSABLE` makes the whole file unusable; `ODD` raises an error of a type no reader expects."""

    name = "lines"

    def read(self, path: str) -> Iterator[Document | Skipped]:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f):
                line = line.rstrip("\n")
                if line == "BOOM":
                    raise ValueError(f"damaged after {number} lines")
                if line == "UNUSABLE":
                    raise InputError(path, "not a lines file")
                if line == "ODD":
                    raise LibraryError("password required")
                if line.startswith("SKIP+ "):
                    yield Skipped(line[6:], Document(f"{Path(path).stem}-{number}", "a redirect", self.name))
                elif line.startswith("SKIP "):
                    yield Skipped(line[5:])
                else:
                    doc_id, text = line.split("\t")
                    yield Document(doc_id, text, self.name)


class Upper(Stage):
    name = "upper"

    def process(self, doc: Document) -> Result:
        doc.text = doc.text.upper()
        return doc


class DropShort(Filter):
    name = "drop_short"

    def keep(self, doc: Document) -> bool | str:
        return len(doc.text) >= 5 or "shorter_than_5"


class CountChars(Stage):
    name = "count_chars"

    def fields(self) -> list[pa.Field]:
        return [pa.field("chars", pa.int64())]

    def process(self, doc: Document) -> Result:
        doc.meta["chars"] = len(doc.text)
        return doc


class NeedsSetup(Stage):
    """Usable only after `setup`; counts the set-ups made in this process."""

    name = "needs_setup"
    setups = 0

    def setup(self) -> None:
        NeedsSetup.setups += 1
        self.ready = True

    def process(self, doc: Document) -> Result:
        assert self.ready
        return doc


class KeepAtLeastMeanLength(GlobalStage):
    """Drops documents shorter than the mean length of the whole run: every task's lengths are
    collected, merged, then loaded before the second pass decides."""

    name = "at_least_mean"

    def __init__(self, collect_only: int | None = None) -> None:
        self.collect_only = collect_only  # a collector that stops early, after this many documents

    def collect(self, docs: Iterable[Document], partial: Path) -> None:
        lengths = []
        for doc in docs:
            lengths.append(len(doc.text))
            if len(lengths) == self.collect_only:
                break
        partial.write_text(json.dumps(lengths))

    def merge(self, partials: list[Path], artefact: Path) -> None:
        lengths = [n for p in partials for n in json.loads(p.read_text())]
        artefact.write_text(json.dumps(sum(lengths) / len(lengths)))

    def load(self, artefact: Path) -> None:
        self.mean = json.loads(artefact.read_text())

    def process(self, doc: Document) -> Result:
        return doc if len(doc.text) >= self.mean else "below_mean_length"


class CarriesLength(KeepAtLeastMeanLength):
    """The same, with each document's length computed in the collecting pass and carried through
    its parts to the deciding pass, which records what it was handed (`seen`) and removes it."""

    name = "carries_length"

    def carried_fields(self) -> list[pa.Field]:
        return [pa.field("_length", pa.int64())]

    def fields(self) -> list[pa.Field]:
        return [pa.field("seen", pa.int64())]

    def annotate(self, docs: list[Document]) -> None:
        for doc in docs:
            doc.meta["_length"] = len(doc.text)

    def collect(self, docs: Iterable[Document], partial: Path) -> None:
        partial.write_text(json.dumps([doc.meta["_length"] for doc in docs]))

    def process(self, doc: Document) -> Result:
        doc.meta["seen"] = doc.meta.pop("_length", -1)  # -1: nothing was carried
        return doc if doc.meta["seen"] >= self.mean else "below_mean_length"


class WrongCount(Stage):
    name = "wrong_count"

    def process_batch(self, docs: list[Document]) -> list[Result]:
        return docs[:1]


class WritesTemporaries(Stage):
    """Leaves a temporary file behind for each document and records where it went."""

    name = "writes_temporaries"
    seen: list[str] = []

    def process(self, doc: Document) -> Result:
        with tempfile.NamedTemporaryFile(delete=False) as f:
            WritesTemporaries.seen.append(f.name)
        return doc


# ---------------------------------------------------------------------------------------------


def write_lines(path: Path, lines: list[str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def spec_of(tmp_path: Path, inputs: list[str], stages: list[Stage], tasks: int = 1, **kw) -> RunSpec:
    return RunSpec(Lines(), stages, inputs, tasks, tmp_path / "out" / "lines", **kw)


def rows(path: Path) -> list[dict]:
    """A part's rows, read by pyarrow from the Arrow stream."""
    with pa.OSFile(str(path)) as f:
        return pa.ipc.open_stream(f).read_all().to_pylist()


def stats(result: TaskResult) -> dict:
    return {s["name"]: (s["in"], s["out"], s["dropped"]) for s in result.to_json()["stats"]}


FIRST = ["a-0\tfirst", "a-1\tno", "SKIP+ redirect", "a-3\tthird one", "SKIP empty_page", "a-5\tok"]
SECOND = ["b-0\tsecond file", "b-1\thi"]


def test_a_task_reads_its_inputs_applies_the_stages_in_order_and_counts_every_document(tmp_path: Path) -> None:
    inputs = [write_lines(tmp_path / "in" / "a.txt", FIRST), write_lines(tmp_path / "in" / "b.txt", SECOND)]
    spec = spec_of(tmp_path, inputs, [Upper(), DropShort(), CountChars()])

    result = run_task(spec, 0, 0)

    assert stats(result) == {
        "read": (8, 6, {"empty_page": 1, "redirect": 1}),
        "upper": (6, 6, {}),
        "drop_short": (6, 3, {"shorter_than_5": 3}),  # "NO", "OK" and "HI"
        "count_chars": (3, 3, {}),
    }
    [part] = result.parts
    written = rows(spec.task_dir(0, 0) / part["file"])
    assert written == [
        {"id": "a-0", "text": "FIRST", "source": "lines", "chars": 5},
        {"id": "a-3", "text": "THIRD ONE", "source": "lines", "chars": 9},
        {"id": "b-0", "text": "SECOND FILE", "source": "lines", "chars": 11},
    ]
    data = (spec.task_dir(0, 0) / part["file"]).read_bytes()
    path = spec.task_dir(0, 0) / part["file"]
    assert part == {"file": "part-00000.arrow", "documents": 3, "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(), "mtime_ns": path.stat().st_mtime_ns}
    assert result.dropped_parts == [] and result.files_failed == [] and result.documents_failed == []


def test_the_completion_marker_holds_the_result_and_a_rerun_reads_nothing(tmp_path: Path) -> None:
    inputs = [write_lines(tmp_path / "in" / "a.txt", FIRST)]
    spec = spec_of(tmp_path, inputs, [Upper(), DropShort()])
    first = run_task(spec, 0, 0)
    assert json.loads(spec.marker(0, 0).read_text()) == first.to_json()
    assert spec.marker(0, 0) == tmp_path / "out" / "lines" / "_work" / "pass0" / "task-00000.done.json"

    Path(inputs[0]).unlink()  # a task run again would report the missing file
    again = run_task(spec, 0, 0)
    assert again.to_json() == first.to_json() and again.files_failed == []


def test_leftovers_of_a_killed_attempt_are_removed_before_the_task_runs(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, [write_lines(tmp_path / "in" / "a.txt", FIRST)], [])
    folder = spec.task_dir(0, 0)
    folder.mkdir(parents=True)
    (folder / "part-00003.arrow").write_bytes(b"from an attempt that was killed")
    (folder / "part-00004.arrow.tmp").write_bytes(b"half written")

    result = run_task(spec, 0, 0)

    assert sorted(p.name for p in folder.iterdir()) == ["part-00000.arrow"]
    assert [r["id"] for r in rows(folder / "part-00000.arrow")] == ["a-0", "a-1", "a-3", "a-5"]
    assert result.parts[0]["documents"] == 4


def test_each_task_reads_the_inputs_at_its_position_modulo_the_task_count(tmp_path: Path) -> None:
    inputs = [write_lines(tmp_path / "in" / f"{n}.txt", [f"{n}-0\ttext of {n}"]) for n in range(5)]
    spec = spec_of(tmp_path, inputs, [], tasks=2)
    assert spec.task_inputs(0) == [inputs[0], inputs[2], inputs[4]]
    assert spec.task_inputs(1) == [inputs[1], inputs[3]]
    read = {task: [r["id"] for p in run_task(spec, 0, task).parts for r in rows(spec.task_dir(0, task) / p["file"])]
            for task in (0, 1)}
    assert read == {0: ["0-0", "2-0", "4-0"], 1: ["1-0", "3-0"]}


def test_keep_dropped_writes_each_drop_with_its_stage_and_reason(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, [write_lines(tmp_path / "in" / "a.txt", FIRST)], [Upper(), DropShort()],
                   keep_dropped=True)
    result = run_task(spec, 0, 0)
    [dropped] = result.dropped_parts
    assert dropped["file"] == "dropped-00000.arrow" and dropped["documents"] == 3
    # A read-time drop is written when the reader has a document for it (a redirect), not otherwise;
    # a chunk's read-time drops are written before its documents go through the stages.
    assert rows(spec.task_dir(0, 0) / dropped["file"]) == [
        {"id": "a-2", "text": "a redirect", "source": "lines", "drop_stage": "read", "drop_reason": "redirect"},
        {"id": "a-1", "text": "NO", "source": "lines", "drop_stage": "drop_short", "drop_reason": "shorter_than_5"},
        {"id": "a-5", "text": "OK", "source": "lines", "drop_stage": "drop_short", "drop_reason": "shorter_than_5"},
    ]


def test_unreadable_inputs_are_reported_and_counted_and_what_came_before_the_damage_is_kept(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    damaged = write_lines(tmp_path / "in" / "damaged.txt", ["d-0\tbefore", "d-1\talso before", "BOOM", "d-3\tlost"])
    unusable = write_lines(tmp_path / "in" / "unusable.txt", ["u-0\tread", "UNUSABLE"])
    missing = str(tmp_path / "in" / "missing.txt")
    good = write_lines(tmp_path / "in" / "good.txt", SECOND)
    spec = spec_of(tmp_path, [damaged, unusable, missing, good], [])

    result = run_task(spec, 0, 0)

    assert result.files_failed == [
        {"path": damaged, "problem": "ValueError: damaged after 2 lines"},
        {"path": unusable, "problem": "not a lines file"},
        {"path": missing, "problem": f"FileNotFoundError: [Errno 2] No such file or directory: '{missing}'"},
    ]
    assert [r["id"] for r in rows(spec.task_dir(0, 0) / "part-00000.arrow")] == ["d-0", "d-1", "u-0", "b-0", "b-1"]
    assert stats(result) == {"read": (5, 5, {})}
    assert capsys.readouterr().err.splitlines() == [
        f"warning: {damaged}: ValueError: damaged after 2 lines",
        f"warning: {unusable}: not a lines file",
        f"warning: {missing}: FileNotFoundError: [Errno 2] No such file or directory: '{missing}'",
    ]


def test_an_error_no_reader_expects_is_counted_against_its_file_and_the_run_goes_on(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """An exception of a type outside the readers' own (a library's, on hostile input) fails its
    file alone, saying where it was raised, instead of failing the task and so the whole run."""
    odd = write_lines(tmp_path / "in" / "odd.txt", ["o-0\tbefore", "ODD", "o-2\tlost"])
    good = write_lines(tmp_path / "in" / "good.txt", SECOND)
    spec = spec_of(tmp_path, [odd, good], [])
    result = run_task(spec, 0, 0)
    raised_at = next(n for n, line in enumerate(Path(__file__).read_text().splitlines(), 1)
                     if line.strip() == 'raise LibraryError("password required")')
    problem = ("LibraryError: password required (an error its reader did not expect, raised at "
               f"engine/test_runner.py:{raised_at})")
    assert result.files_failed == [{"path": odd, "problem": problem}]
    assert [r["id"] for r in rows(spec.task_dir(0, 0) / "part-00000.arrow")] == ["o-0", "b-0", "b-1"]
    assert capsys.readouterr().err.splitlines() == [f"warning: {odd}: {problem}"]


def test_damage_past_the_first_chunk_keeps_every_record_before_it(tmp_path: Path) -> None:
    # 300 records span two chunks of the reader (256 each): the second one breaks off at the damage.
    records = [f"l-{i}\trecord {i}" for i in range(300)]
    damaged = write_lines(tmp_path / "in" / "long.txt", records + ["BOOM", "l-x\tlost"])
    spec = spec_of(tmp_path, [damaged], [])
    result = run_task(spec, 0, 0)
    assert result.files_failed == [{"path": damaged, "problem": "ValueError: damaged after 300 lines"}]
    assert [r["id"] for r in rows(spec.task_dir(0, 0) / "part-00000.arrow")] == [f"l-{i}" for i in range(300)]
    assert stats(result) == {"read": (300, 300, {})}


class ListedLines(Lines):
    """A reader that returns a list, not a generator: nothing to close when a file is cut."""

    def read(self, path: str) -> list[Document | Skipped]:  # type: ignore[override]
        return list(super().read(path))


def test_a_reader_returning_a_list_is_read_and_cut_like_a_generator(tmp_path: Path) -> None:
    a, b = write_lines(tmp_path / "in" / "a.txt", FIRST), write_lines(tmp_path / "in" / "b.txt", SECOND)
    spec = RunSpec(ListedLines(), [], [a, b], 1, tmp_path / "out" / "lines")
    result = run_task(spec, 0, 0, attempt=Attempt(careful=[(0, 3, 4)], cut={0: (3, "worker_crash")}))
    problem = "worker_crash while reading record 3 (the rest of the file is skipped)"
    assert result.files_failed == [{"path": a, "problem": problem}]
    assert [r["id"] for r in rows(spec.task_dir(0, 0) / "part-00000.arrow")] == ["a-0", "a-1", "b-0", "b-1"]


def test_a_file_name_that_is_not_utf8_is_reported_not_read(tmp_path: Path) -> None:
    good = write_lines(tmp_path / "in" / "good.txt", SECOND)
    spec = spec_of(tmp_path, [str(tmp_path / "in" / "bad-\udcff.txt"), good], [])
    result = run_task(spec, 0, 0)
    assert result.files_failed == [{"path": str(tmp_path / "in" / "bad-\ufffd.txt"),
                                    "problem": "file name is not valid UTF-8"}]
    assert stats(result) == {"read": (2, 2, {})}


@pytest.mark.parametrize("failed_in, dropped_by", [(0, "upper"), (1, "drop_short"), (3, "count_chars")])
def test_a_poisoned_document_is_dropped_at_the_stage_it_failed_in_and_listed(
        tmp_path: Path, failed_in: int, dropped_by: str) -> None:
    a = write_lines(tmp_path / "in" / "a.txt", FIRST)
    spec = spec_of(tmp_path, [a], [Upper(), DropShort(), CountChars()])
    # Record 3 ("a-3") killed a worker twice: once in its chunk, once alone. Failing past the
    # last stage (3: writing) drops it at the last stage.
    attempt = Attempt(careful=[(0, 3, 4)], poisoned={(0, 3): ("worker_crash", failed_in)})

    result = run_task(spec, 0, 0, attempt=attempt)

    assert result.documents_failed == [
        {"input": a, "record": 3, "id": "a-3", "stage": dropped_by, "reason": "worker_crash"}]
    counted = stats(result)
    assert counted[dropped_by][2].get("worker_crash") == 1
    for name, (documents_in, documents_out, dropped) in counted.items():
        assert documents_in == documents_out + sum(dropped.values()), name
    assert counted["read"] == (6, 4, {"empty_page": 1, "redirect": 1})
    assert counted["count_chars"][1] == 1  # "FIRST" only: "NO" and "OK" are short, "a-3" failed
    assert [r["id"] for r in rows(spec.task_dir(0, 0) / "part-00000.arrow")] == ["a-0"]


def test_a_poisoned_document_of_a_source_without_stages_is_dropped_by_the_reader(tmp_path: Path) -> None:
    a = write_lines(tmp_path / "in" / "a.txt", FIRST)
    attempt = Attempt(careful=[(0, 0, 1)], poisoned={(0, 0): ("timeout", 0)})
    result = run_task(spec_of(tmp_path, [a], []), 0, 0, attempt=attempt)
    assert result.documents_failed == [{"input": a, "record": 0, "id": "a-0", "stage": "read", "reason": "timeout"}]
    assert stats(result) == {"read": (6, 3, {"empty_page": 1, "redirect": 1, "timeout": 1})}


def test_a_file_cut_by_an_earlier_attempt_is_read_up_to_that_record(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    a, b = write_lines(tmp_path / "in" / "a.txt", FIRST), write_lines(tmp_path / "in" / "b.txt", SECOND)
    attempt = Attempt(careful=[(0, 3, 4)], cut={0: (3, "worker_crash")})

    result = run_task(spec_of(tmp_path, [a, b], []), 0, 0, attempt=attempt)

    problem = "worker_crash while reading record 3 (the rest of the file is skipped)"
    assert result.files_failed == [{"path": a, "problem": problem}]
    assert capsys.readouterr().err == f"warning: {a}: {problem}\n"
    assert stats(result) == {"read": (5, 4, {"redirect": 1})}  # records 0-2 of a.txt, then b.txt


def test_a_global_stage_splits_the_work_into_two_passes(tmp_path: Path) -> None:
    inputs = [write_lines(tmp_path / "in" / "a.txt", FIRST), write_lines(tmp_path / "in" / "b.txt", SECOND)]
    stages = [Upper(), KeepAtLeastMeanLength(), DropShort()]
    spec = spec_of(tmp_path, inputs, stages, tasks=2)
    assert spec.passes() == [(0, 1), (1, 3)]

    first = [run_task(spec, 0, task) for task in (0, 1)]
    # Pass 0 collects as it writes: every document that passed the stages before the global one.
    assert [stats(r)["upper"] for r in first] == [(4, 4, {}), (2, 2, {})]
    partials = [spec.task_dir(0, task) / "partial" for task in (0, 1)]
    assert [json.loads(p.read_text()) for p in partials] == [[5, 2, 9, 2], [11, 2]]
    stages[1].merge(partials, spec.artefact(0))  # the executor's step between the passes

    second = [run_task(spec, 1, task) for task in (0, 1)]
    # The mean length is 31 / 6, about 5.2: documents of 6 characters or more remain. Pass 1
    # reads pass 0's parts.
    assert [stats(r) for r in second] == [
        {"at_least_mean": (4, 1, {"below_mean_length": 3}), "drop_short": (1, 1, {})},
        {"at_least_mean": (2, 1, {"below_mean_length": 1}), "drop_short": (1, 1, {})},
    ]
    assert spec.marker(1, 0).exists() and spec.marker(1, 1).exists()
    assert [[row["id"] for p in r.parts for row in rows(spec.task_dir(1, r.task) / p["file"])] for r in second] == [
        ["a-3"], ["b-0"]]


@pytest.mark.parametrize("poisoned", [False, True])
def test_carried_fields_go_through_the_collecting_pass_parts_and_never_into_shards(tmp_path: Path,
                                                                                   poisoned: bool) -> None:
    inputs = [write_lines(tmp_path / "in" / "a.txt", FIRST)]
    stages = [Upper(), CarriesLength()]
    spec = spec_of(tmp_path, inputs, stages, keep_dropped=True)
    run_task(spec, 0, 0)
    # The collecting pass's parts hold the carried column; the collector read it there.
    assert [(r["id"], r["_length"]) for r in rows(spec.task_dir(0, 0) / "part-00000.arrow")] == [
        ("a-0", 5), ("a-1", 2), ("a-3", 9), ("a-5", 2)]
    assert json.loads((spec.task_dir(0, 0) / "partial").read_text()) == [5, 2, 9, 2]
    stages[1].merge([spec.task_dir(0, 0) / "partial"], spec.artefact(0))
    # Record 1 ("a-1") of the parts failed a worker twice inside the global stage: dropped there,
    # before its `process` could remove the carried field.
    attempt = Attempt(careful=[(0, 1, 2)], poisoned={(0, 1): ("worker_crash", 0)}) if poisoned else None

    result = run_task(spec, 1, 0, attempt=attempt)

    kept = rows(spec.task_dir(1, 0) / result.parts[0]["file"])
    assert [(r["id"], r["seen"]) for r in kept] == [("a-0", 5), ("a-3", 9)]  # the mean is 4.5
    dropped = rows(spec.task_dir(1, 0) / result.dropped_parts[0]["file"])
    assert [(r["id"], r["drop_reason"]) for r in dropped] == (
        [("a-1", "worker_crash"), ("a-5", "below_mean_length")] if poisoned
        else [("a-1", "below_mean_length"), ("a-5", "below_mean_length")])
    assert "_length" not in set(kept[0]) | set(dropped[0])


def test_a_collector_that_stops_early_still_passes_every_document_on(tmp_path: Path) -> None:
    # Two files, so two chunks (a chunk never spans files): the second comes after the collector stopped.
    inputs = [write_lines(tmp_path / "in" / "a.txt", FIRST), write_lines(tmp_path / "in" / "b.txt", SECOND)]
    spec = spec_of(tmp_path, inputs, [Upper(), KeepAtLeastMeanLength(collect_only=1), DropShort()])
    result = run_task(spec, 0, 0)
    assert json.loads((spec.task_dir(0, 0) / "partial").read_text()) == [5]
    assert [r["id"] for r in rows(spec.task_dir(0, 0) / result.parts[0]["file"])] == [
        "a-0", "a-1", "a-3", "a-5", "b-0", "b-1"]


def test_a_stage_that_loses_documents_fails_the_task_and_leaves_no_part_and_no_marker(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, [write_lines(tmp_path / "in" / "a.txt", FIRST)], [WrongCount()])
    with pytest.raises(RuntimeError, match=r"^stage wrong_count returned 1 results for 4 documents$"):
        run_task(spec, 0, 0)
    assert not spec.marker(0, 0).exists()
    assert [p.name for p in spec.task_dir(0, 0).iterdir()] == []


def test_stages_are_set_up_once_per_process_and_run_and_unpickled_copies_use_them(tmp_path: Path) -> None:
    inputs = [write_lines(tmp_path / "in" / f"{n}.txt", [f"{n}-0\ttext of {n}"]) for n in range(3)]
    spec = spec_of(tmp_path, inputs, [NeedsSetup()], tasks=3)
    # Ray hands each task a fresh unpickled copy, whose stage was never set up itself.
    copy = pickle.loads(pickle.dumps(spec))
    before = NeedsSetup.setups
    run_task(spec, 0, 0)
    assert not hasattr(copy.stages[0], "ready")
    assert stats(run_task(copy, 0, 1)) == {"read": (1, 1, {}), "needs_setup": (1, 1, {})}
    assert NeedsSetup.setups == before + 1

    another_run = spec_of(tmp_path / "another", inputs, [NeedsSetup()], tasks=3)
    run_task(another_run, 0, 0)
    assert NeedsSetup.setups == before + 2


def test_progress_reports_every_document_and_character_read(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, [write_lines(tmp_path / "in" / "a.txt", FIRST)], [DropShort()])
    reported: list[tuple[int, int]] = []
    run_task(spec, 0, 0, progress=lambda docs, chars: reported.append((docs, chars)))
    # The documents the reader yielded (skipped records are not documents), before any stage.
    assert (sum(d for d, _ in reported), sum(c for _, c in reported)) == (4, len("first" "no" "third one" "ok"))


def test_temporary_files_of_stages_go_into_the_task_folder_and_are_removed(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, [write_lines(tmp_path / "in" / "a.txt", FIRST)], [WritesTemporaries()])
    WritesTemporaries.seen.clear()
    default = tempfile.gettempdir()
    run_task(spec, 0, 0)
    assert len(WritesTemporaries.seen) == 4
    assert {Path(p).parent for p in WritesTemporaries.seen} == {spec.task_dir(0, 0) / "tmp"}
    assert not (spec.task_dir(0, 0) / "tmp").exists()
    assert tempfile.gettempdir() == default
