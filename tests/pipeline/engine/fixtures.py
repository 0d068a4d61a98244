"""A test source on top of the JSON-lines reader: a filter, an optional slow stage and an
exact-dedup global stage, enough to exercise every part of the engine."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyarrow as pa

from pipeline.commands.run import run_source
from pipeline.dedup.exact import ExactDedup
from pipeline.engine.document import Document
from pipeline.engine.run_driver import RunReport
from pipeline.engine.stage import Filter, Stage
from sources.jsonl import Jsonl


class DropMultiplesOfSeven(Filter):
    name = "drop_sevens"

    def keep(self, doc: Document) -> bool | str:
        return doc.meta["number"] % 7 != 0 or "multiple_of_7"


class Annotate(Stage):
    """Adds typed metadata; sleeps per document when HERD_TEST_DELAY is set, so that a run
    can be killed midway (an environment variable, not a setting: it must not change the plan)."""

    name = "annotate"

    def setup(self) -> None:
        self.delay = float(os.environ.get("HERD_TEST_DELAY", "0"))

    def fields(self) -> list[pa.Field]:
        return [pa.field("number", pa.int64()), pa.field("words", pa.int32()), pa.field("score", pa.float32())]

    def process(self, doc: Document) -> Document:
        if self.delay:
            time.sleep(self.delay)
        doc.meta["number"] = int(doc.id.rsplit("-", 1)[1])
        doc.meta["words"] = len(doc.text.split())
        doc.meta["score"] = doc.meta["number"] / 4
        return doc


class Numbers(Jsonl):
    name = "numbers"

    def stages(self) -> list[Stage]:
        return [Annotate(), DropMultiplesOfSeven(), ExactDedup()]


def write_inputs(folder: Path, files: int = 6, per_file: int = 50) -> None:
    """JSON lines with ids `f<file>-<n>`; every 10th text repeats one from file 0."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        rows = []
        for n in range(per_file):
            number = f * per_file + n
            text = f"text of document {number % 10 if number % 10 == 3 else number} " * 40
            rows.append(json.dumps({"id": f"f{f}-{number}", "text": text}))
        (folder / f"in-{f:02d}.jsonl").write_text("\n".join(rows) + "\n")


def run(inputs: Path, output: Path, workers: int, tasks: int | None = None, **kw) -> RunReport:
    return run_source(Numbers(), str(inputs), str(output), workers, tasks, **{"show_progress": False, **kw})


if __name__ == "__main__":  # used by the kill-and-resume test as a separate process
    import sys

    run(Path(sys.argv[1]), Path(sys.argv[2]), workers=2, tasks=4)
