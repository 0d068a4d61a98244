"""Test sources whose readers prepare for a long time before their first document, as Stack
Exchange's loading of a whole Posts.xml does: the passthrough JSON-lines source, but a file
whose name holds `slow` is prepared for PREPARE_S seconds first with a heartbeat every BEAT_S
(pipeline/engine/heartbeat.py), and one whose name holds `hang` sends heartbeats for
PREPARE_S seconds and then none, for ever (a preparation that stops making progress). Run
through the real `pipeline` CLI with the source registered as a plugin (see `main`)."""

from __future__ import annotations

import time
from pathlib import Path

from pipeline.engine.heartbeat import heartbeat
from sources.jsonl import Jsonl
from tests.plugins import run_pipeline_with_sources

PREPARE_S = 3.0
BEAT_S = 0.05


class SlowStartJsonl(Jsonl):
    name = "slowstart"

    def read(self, path: str):
        name = Path(path).name
        if "slow" in name or "hang" in name:
            started, beats = time.monotonic(), 0
            while time.monotonic() - started < PREPARE_S:
                time.sleep(BEAT_S)
                beats += 1
                heartbeat(beats, f"prepared {beats} steps of {name}")
            if "hang" in name:
                time.sleep(3600)
        yield from super().read(path)


def main() -> None:
    """`pipeline` with the source `slowstart` installed as a plugin beside the real ones."""
    run_pipeline_with_sources("herd-test-slowstart", {
        SlowStartJsonl.name: f"tests.hostile.slow_readers:{SlowStartJsonl.__name__}"})


if __name__ == "__main__":
    main()
