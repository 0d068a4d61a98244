"""A test source for the supervisor: the passthrough JSON-lines source with one more stage that
stalls for ever on a document whose text holds STALL and kills its own process on CRASH, as a
pathological parser or an out-of-memory kill would. Run through the real `pipeline` CLI with
this source registered (see `main`)."""

from __future__ import annotations

import os
import signal
import sys
import time

from pipeline.dedup.line import LineDedup
from pipeline.engine.document import Document
from pipeline.engine.stage import Stage
from sources.jsonl import Jsonl


class Fragile(Stage):
    name = "fragile"

    def process(self, doc: Document) -> Document:
        if "STALL" in doc.text:
            time.sleep(3600)
        if "CRASH" in doc.text:
            os.kill(os.getpid(), signal.SIGKILL)
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


def main() -> None:
    """`pipeline` with the sources `fragile` and `linededup` registered beside the real ones."""
    import sources
    from pipeline.cli import main as pipeline_main

    for cls in (FragileJsonl, LineDedupJsonl):
        sys.modules[f"sources.{cls.name}"] = sys.modules[__name__]
        sources.REGISTRY[cls.name] = cls.__name__
    pipeline_main(sys.argv[1:])


if __name__ == "__main__":
    main()
