"""Inputs written by `pipeline sample`, marked so that a model trained on them, or a run over
them, can tell (the CommonCrawl run warns when toy models meet real pages)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

# The file beside generated inputs that lists them.
GENERATED_MARKER = "GENERATED_SAMPLE.json"


def mark_generated(folder: Path, names: list[str]) -> None:
    """Record that `names` (relative to `folder`) were written by `pipeline sample`, with the
    sha256 of each, so that a file replaced since (a real download under a sample's name) is
    told apart from the one written."""
    digests = {name: _sha256(folder / name) for name in names if (folder / name).is_file()}
    (folder / GENERATED_MARKER).write_text(json.dumps(
        {"written_by": "pipeline sample", "files": names, "sha256": digests}, indent=1))


def unchanged_since_written(folder: Path, name: str) -> bool:
    """Whether `folder/name` is listed in `folder`'s marker with the sha256 it has now."""
    try:
        recorded = json.loads((folder / GENERATED_MARKER).read_text()).get("sha256", {})
    except (ValueError, OSError, AttributeError):
        return False
    path = folder / name
    return isinstance(recorded, dict) and path.is_file() and not path.is_symlink() and recorded.get(name) == _sha256(path)


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


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
