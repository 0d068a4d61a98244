"""The model files `pipeline models` writes, checked against its record before a run loads them.

A model cut short (a copy interrupted, a disk that filled) or written over is not always refused
by its library: fastText loads a classifier cut to a third of its bytes and scores every page
with it, so the run would keep pages by a broken model and say nothing. So `pipeline models`
records each file it writes, its bytes and sha256, under "files" in the description beside it
(`<lang>.lm.json`, `classifier.json`) and seals it (pipeline/common/files.py), and a stage checks
a model against that record before it loads it, with the policy a rerun checks a run's shards by
(pipeline/engine/run_folder.py `file_problem`): the size always, the sha256 when the file is
small or was written since its seal. A model with no such record (brought from elsewhere, or
trained by an older herd) is loaded as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.common.errors import UserError
from pipeline.common.files import sha256_once
from pipeline.engine.run_folder import Recorded, file_problem

FILES = "files"  # the description's key: file name -> {"bytes": ..., "sha256": ...}


def recorded_files(*paths: Path) -> dict[str, dict[str, Any]]:
    """The record of model files just written, for their description's "files"; each is sealed
    (`sha256_once`), so a run's start reads its sha256 from the seal."""
    files = {}
    for path in paths:
        sha256 = sha256_once(path)
        files[path.name] = {"bytes": path.stat().st_size, "sha256": sha256}
    return files


def check_model_file(path: Path, description: Path, command: str) -> None:
    """One UserError when `path` is not the file its description records; nothing to check when
    the description or its record of `path` is missing. `command` writes the model again."""
    try:
        record = json.loads(description.read_bytes()).get(FILES, {}).get(path.name)
        size, sha256 = int(record["bytes"]), str(record["sha256"])
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return  # no record to hold it to: a model from elsewhere
    problem = file_problem(Recorded(path, size, sha256))
    if problem is not None:
        raise UserError(f"{path}: {problem}, as {description.name} records it: damaged or replaced since "
                        f"`{command}` wrote it; run that again")


def load_failure(error: BaseException) -> str:
    """A model library's error in one line of at most 300 characters (KenLM's name the C++ frame)."""
    message = " ".join(str(error).split()) or type(error).__name__
    return message if len(message) <= 300 else message[:300] + "..."

