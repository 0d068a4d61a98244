"""Where a command finds one source's finished corpus: `--corpus` may name the corpus root
(`data/corpus`, holding `<source>/`) or the source's folder itself. A folder counts as a corpus
of that source when its manifest.json says so; anything else is one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.common.errors import UserError
from pipeline.common.files import READ_DEPTH, refuse_special_files

# Beside a corpus's shards: one JSON line per `pipeline remove` (who, when, which ids, which shards).
REMOVALS = "removals.jsonl"


def corpus_folder(corpus: Path, source: str, same_source: bool = True) -> Path:
    """The folder holding `source`'s manifest.json: `corpus/<source>` or `corpus` itself. With
    `same_source` off, a manifest of another source is taken too (`pipeline audit` reads corpora
    of any source by one source's rules)."""
    for folder in (corpus / source, corpus):
        manifest = folder / "manifest.json"
        if manifest.exists():
            refuse_special_files(folder, READ_DEPTH)  # before the manifest is read: a FIFO would block for ever
            try:
                found = json.loads(manifest.read_text()).get("source", source)
            except (OSError, UnicodeDecodeError, ValueError, AttributeError) as e:
                raise UserError(f"{manifest}: damaged corpus manifest ({type(e).__name__})") from None
            if same_source and found != source:
                raise UserError(f"{folder}: a corpus of {found!r}, not of {source!r}")
            return folder
    raise UserError(f"{corpus}: no finished {source} corpus here (no manifest.json in {corpus / source} or {corpus})")


def finished_runs(root: Path, source: str | None) -> list[Path]:
    """The folders under `root` of finished runs (they hold a stats.json): `source`'s, or every
    source's for None or "all"; none is one line, exit 2."""
    if source in (None, "all"):
        folders = sorted(path.parent for path in root.glob("*/stats.json"))
        if not folders:
            raise UserError(f"{root}: no finished runs (no */stats.json)")
        for folder in folders:
            refuse_special_files(folder, READ_DEPTH)
        return folders
    folder = root / source
    if not (folder / "stats.json").exists():
        raise UserError(f"{folder}: no finished {source} corpus (no stats.json); run `pipeline run {source}` first")
    refuse_special_files(folder, READ_DEPTH)
    return [folder]
