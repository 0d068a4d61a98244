"""Inputs written by `pipeline sample`, marked so that a model trained on them, or a run over
them, can tell (the CommonCrawl run warns when toy models meet real pages)."""

from __future__ import annotations

import json
from pathlib import Path

# The file beside generated inputs that lists them.
GENERATED_MARKER = "GENERATED_SAMPLE.json"


def mark_generated(folder: Path, names: list[str]) -> None:
    """Record that `names` (relative to `folder`) were written by `pipeline sample`."""
    (folder / GENERATED_MARKER).write_text(json.dumps({"written_by": "pipeline sample", "files": names}, indent=1))


def is_generated(path: str | Path) -> bool:
    """Whether `path` was written by `pipeline sample`: the nearest marker at or above it
    lists it, or lists a file inside it (a folder of generated inputs)."""
    p = Path(str(path).removeprefix("file://")).absolute()
    for folder in [p, *p.parents]:
        marker = folder / GENERATED_MARKER
        if marker.is_file():
            try:
                names = json.loads(marker.read_text())["files"]
            except (ValueError, KeyError, OSError):
                return False
            listed = [(folder / n).absolute() for n in names]
            return any(file == p or p in file.parents for file in listed)
    return False
