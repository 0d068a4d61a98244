"""A test source for the supervisor: the passthrough JSON-lines source with one more stage that
stalls for ever on a document whose text holds STALL, kills its own process on CRASH and raises
a library's own error on RAISE, as a pathological parser, an out-of-memory kill or a parser's
exception on input nobody foresaw would. Run through the real `pipeline` CLI with
this source registered (see `main`), or given to `run_source` (as the Ray executor's test does)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from pipeline.dedup.line import LineDedup
from pipeline.engine.document import Document
from pipeline.engine.shards import read_corpus
from pipeline.engine.stage import Stage
from sources.jsonl import Jsonl
from tests.hostile.helpers import assert_balanced
from tests.plugins import run_pipeline_with_sources

# Poisoned inputs: two files of 600 good documents, ids `<file>:<record>`, but for these two.
POISON = {("a.jsonl", 300): "this one STALLs the stage", ("b.jsonl", 450): "this one makes the stage CRASH",
          ("a.jsonl", 100): "this one makes the stage RAISE"}


class ParserError(Exception):
    """A library's own exception type, as a parser raises on markup it cannot take."""
POISON_FILES = {"a.jsonl": 600, "b.jsonl": 600}


class Fragile(Stage):
    name = "fragile"

    def process(self, doc: Document) -> Document:
        if "STALL" in doc.text:
            time.sleep(3600)
        if "CRASH" in doc.text:
            os.kill(os.getpid(), signal.SIGKILL)
        if "RAISE" in doc.text:
            raise ParserError("unexpected markup")
        return doc


class FragileJsonl(Jsonl):
    """Its reader also dies on a line holding READER_CRASH, as a parser killed mid-record would."""

    name = "fragile"

    def stages(self) -> list[Stage]:
        return [*super().stages(), Fragile()]

    def read(self, path: str):
        for item in super().read(path):
            if isinstance(item, Document) and "READER_CRASH" in item.text:
                os.kill(os.getpid(), signal.SIGKILL)
            yield item


class LineDedupJsonl(Jsonl):
    """JSON lines through cross-file line dedup: a hash pass (a global stage) with real files."""

    name = "linededup"

    def stages(self) -> list[Stage]:
        return [*super().stages(), LineDedup(0, file_field="url")]


def write_poisoned_inputs(folder: Path) -> None:
    folder.mkdir(parents=True)
    for name, count in POISON_FILES.items():
        texts = [POISON.get((name, i), f"good document {i}") for i in range(count)]
        (folder / name).write_text("".join(json.dumps({"id": f"{name}:{i}", "text": t}) + "\n"
                                           for i, t in enumerate(texts)))


def assert_poison_dropped(run_folder: Path) -> dict:
    """The stalling document dropped as `timeout`, the killing one as `worker_crash`, the raising
    one as `stage_error`, each listed with its file and record; every other document kept. The
    stats, for further checks."""
    stats = json.loads((run_folder / "stats.json").read_text())
    assert_balanced(stats)
    fragile = stats["stages"][-1]
    assert fragile["name"] == "fragile"
    assert fragile["dropped"] == {"stage_error": 1, "timeout": 1, "worker_crash": 1}
    assert stats["documents_read"] == 1200 and stats["documents_kept"] == 1197
    assert sorted((Path(d["input"]).name, d["record"], d["id"], d["stage"], d["reason"])
                  for d in stats["documents_failed"]) == [
        ("a.jsonl", 100, "a.jsonl:100", "fragile", "stage_error"),
        ("a.jsonl", 300, "a.jsonl:300", "fragile", "timeout"),
        ("b.jsonl", 450, "b.jsonl:450", "fragile", "worker_crash"),
    ]
    kept = {d.id for d in read_corpus(run_folder)}
    assert kept == {f"{name}:{i}" for name, count in POISON_FILES.items() for i in range(count)} - {
        "a.jsonl:100", "a.jsonl:300", "b.jsonl:450"}
    return stats


def main() -> None:
    """`pipeline` with the sources `fragile` and `linededup` installed as a plugin beside the real ones."""
    run_pipeline_with_sources("herd-test-fragile", {
        cls.name: f"tests.hostile.fragile:{cls.__name__}" for cls in (FragileJsonl, LineDedupJsonl)})


if __name__ == "__main__":
    main()
