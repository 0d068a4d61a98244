"""What a rerun of `pipeline models` compares before it trains: the description's `made_from` (the
recipe, the settings that shape the model, a fingerprint of every input file read) against what
this run would record, and each model file against its recorded bytes and sha256
(pipeline/commands/models/__init__.py says what the models and their descriptions are)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline.engine.run_folder import Recorded, file_problem
from pipeline.filters.model_files import FILES

MADE_FROM = "made_from"  # the description's key: the recipe, the settings and the inputs' fingerprints
# Raise it when a change to the training here makes other model bytes from the same inputs and
# settings: a model the older recipe made then trains again instead of passing for this one's.
RECIPE = 1
# The kinds of file each role's reader takes from a folder (`iter_texts`, `iter_pages`,
# `load_cited_urls`, which take theirs from here); () is every kind.
PAGE_KINDS = ("warc", "arrow")  # pages with URLs: `iter_pages`
URL_KINDS = ("arrow", "txt")  # cited URLs: `load_cited_urls`
READ_KINDS: dict[str, tuple[str, ...]] = {
    "input": (), "positives": (), "negatives": PAGE_KINDS, "cited_pages": PAGE_KINDS, "cited_urls": URL_KINDS,
}


def read_files(paths: list[str], kinds: tuple[str, ...] = ()) -> list[Path]:
    """The files that reading `paths` reads, in the order it reads them: each file named, the
    files of `kinds` in folders, and a corpus folder's manifest.json with the shards it lists: not
    what else a corpus folder holds (its `_work/`, stats, a `.lock` while its `pipeline run` runs
    again), which a rerun of that run may write without changing a document."""
    # The readers' own rules (imported here: a cycle at import).
    from pipeline.commands.models import _folder_inputs, _kind, given_input
    from pipeline.engine.shards import shard_paths

    files: list[Path] = []
    for path in paths:
        p = given_input(path)
        for f in _folder_inputs(p) if p.is_dir() else [p]:
            if f.is_dir():
                files += [f / "manifest.json", *shard_paths(f)]
            elif f == p or (_kind(f) and (not kinds or _kind(f) in kinds)):
                files.append(f)
    return files


def input_fingerprint(files: list[Path]) -> dict[str, Any]:
    """How many files, their bytes, and the sha256 of the list of each one's [resolved path, bytes,
    mtime_ns] ([path] alone for one missing).

    Size and mtime, not the files' own sha256: a real reference text is GBs of Wikipedia shards
    and the random pages thousands of WARC files, and hashing them at every rerun would cost much
    of what the skip saves. Any write to a file moves its mtime, and a file added, removed,
    renamed or replaced by another (a new file, a new time) changes the list. Not the ctime: a
    seal (an extended attribute, pipeline/common/files.py) or a chmod moves it, bytes unchanged.
    Not run_folder's `fingerprint` of a folder (the sum of its sizes, its latest mtime): a file
    put back with the same size and an older time (`cp -p`) would leave both as they were."""
    rows: list[list[Any]] = []
    total = 0
    for f in files:
        where = str(f.resolve())
        try:
            info = f.stat()
        except OSError:
            rows.append([where])
            continue
        rows.append([where, info.st_size, info.st_mtime_ns])
        total += info.st_size
    listing = json.dumps(rows, separators=(",", ":")).encode()
    return {"files": len(rows), "bytes": total, "sha256": hashlib.sha256(listing).hexdigest()}


def made_from(inputs: dict[str, list[str]], settings: dict[str, Any]) -> dict[str, Any]:
    """What a description records as made_from: RECIPE, the `settings` that shape the model, and the
    fingerprint of the files each role of `inputs` reads (a file's role changes the model)."""
    return {"recipe": RECIPE, "settings": settings,
            "inputs": {role: input_fingerprint(read_files(paths, READ_KINDS[role])) for role, paths in inputs.items()}}


def already_trained(description: Path, wanted: dict[str, Any], models: list[Path]) -> bool:
    """Whether `description` records the models as made from `wanted` (`made_from`) and each of
    `models` is the file it records. A description without made_from (an older herd's), a damaged
    one, other inputs or settings, or a model missing or not as written: False, train again."""
    try:
        recorded = json.loads(description.read_bytes())
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict) or recorded.get(MADE_FROM) != json.loads(json.dumps(wanted)):
        return False
    files = recorded.get(FILES)
    return isinstance(files, dict) and all(_as_recorded(model, files.get(model.name)) for model in models)


def lm_made_from(inputs: list[str], lang: str, vocab_size: int, order: int, max_documents: int,
                 sp_sentences: int, seed: int) -> dict[str, Any]:
    """`made_from` of `train_lm`'s model. Not lmplz's --memory: its sort buffers change the time
    KenLM takes, not the model it writes."""
    return made_from({"input": inputs}, {"language": lang, "vocab_size": vocab_size, "order": order,
                                         "max_documents": max_documents, "sp_sentences": sp_sentences, "seed": seed})


def classifier_made_from(inputs: dict[str, list[str]], min_chars: int, max_per_class: int, epochs: int,
                         seed: int) -> dict[str, Any]:
    """`made_from` of a classifier; `inputs` by role: positives and negatives, or, with the cited
    pages as the reference class, cited_urls, cited_pages and negatives."""
    return made_from(inputs, {"min_chars": min_chars, "max_per_class": max_per_class, "epochs": epochs,
                              "seed": seed})


def _as_recorded(model: Path, record: Any) -> bool:
    """Whether `model` has the bytes and sha256 `record` holds: hashed unless its seal vouches for
    it, whatever its size (unlike a run's start, `check_model_file`): a skip would keep a damaged
    model for every later run, and hashing even a GB model costs seconds against hours of training."""
    try:
        recorded = Recorded(model, int(record["bytes"]), str(record["sha256"]))
    except (TypeError, KeyError, ValueError):
        return False
    return bool(recorded.sha256) and file_problem(recorded, trust_unsealed=False) is None
