"""Inputs written by `pipeline sample`, marked so that a model trained on them, or a run over
them, can tell (the CommonCrawl run warns when toy models meet real pages)."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.common.files import (
    JSON_TEMPORARY, file_sha256, leftover_temporaries, write_text_atomic, write_text_if_changed,
)

# The file beside generated inputs that lists them.
GENERATED_MARKER = "GENERATED_SAMPLE.json"


def is_marker_file(name: str) -> bool:
    """The marker, or a temporary of it that a write killed before its rename left behind."""
    temporary = JSON_TEMPORARY.fullmatch(name)
    return name == GENERATED_MARKER or (temporary is not None and temporary["name"] == GENERATED_MARKER)


def mark_generated(folder: Path, names: list[str]) -> None:
    """Record that `names` (relative to `folder`) were written by `pipeline sample`, with the
    sha256 of each, so that a file replaced since (a real download under a sample's name) is
    told apart from the one written."""
    digests = {name: file_sha256(folder / name) for name in names if (folder / name).is_file()}
    text = json.dumps({"written_by": "pipeline sample", "files": names, "sha256": digests}, indent=1)
    write_text_if_changed(folder / GENERATED_MARKER, text)  # the same sample again: its marker is left as it is
    for left in leftover_temporaries(folder, [GENERATED_MARKER]):  # a marker write killed before its rename
        left.unlink(missing_ok=True)


def mark_pending(folder: Path, staged: Path, names: list[str]) -> None:
    """Record, before a new sample's files in `staged` are moved into `folder` one by one, the
    sha256 each will have there ("pending"): a sample killed halfway through the moves leaves
    files that are the old sample's or the new one's, and both are `pipeline sample`'s, so the
    next sample may replace them. `mark_generated` ends the moves with the final list."""
    marker = folder / GENERATED_MARKER
    try:
        record = json.loads(marker.read_text())
    except (ValueError, OSError):
        record = {}
    if not isinstance(record, dict):
        record = {}
    pending = record.get("pending") if isinstance(record.get("pending"), dict) else {}
    pending.update({name: file_sha256(staged / name) for name in names if (staged / name).is_file()})
    files = record.get("files") if isinstance(record.get("files"), list) else []
    record |= {"written_by": "pipeline sample", "files": sorted({*files, *names}), "pending": pending}
    write_text_atomic(marker, json.dumps(record, indent=1))


def unchanged_since_written(folder: Path, name: str) -> bool:
    """Whether `folder/name` is listed in `folder`'s marker with the sha256 it has now: the one
    recorded when it was written, or the one of a sample whose moves were cut short."""
    try:
        record = json.loads((folder / GENERATED_MARKER).read_text())
        known = [record.get("sha256"), record.get("pending")]
    except (ValueError, OSError, AttributeError):
        return False
    path = folder / name
    if not path.is_file() or path.is_symlink():
        return False
    digest = file_sha256(path)
    return any(isinstance(recorded, dict) and recorded.get(name) == digest for recorded in known)


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
