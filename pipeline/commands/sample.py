"""`pipeline sample`: small raw inputs for every source, written by each source's registered
sample writer (pipeline/engine/registry.py).

Raw inputs are sacred: a source folder that holds any file `pipeline sample` did not write (a
real download, a user's own data) is refused whole, before anything is written, so the sample
never replaces or adds to someone's files. A folder of an earlier sample is written again. Every
file written is listed with its sha256 in the folder's GENERATED_SAMPLE.json, which is how the
next run (and a model trained on the sample) can tell; a listed file changed since is not ours.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import tempfile
from pathlib import Path
from types import ModuleType

from pipeline.common.cli import add_renamed, path_arg
from pipeline.common.config import check_flags
from pipeline.common.errors import UserError
from pipeline.common.files import check_output_folder
from pipeline.common.generated import is_marker_file, mark_generated, mark_pending, unchanged_since_written
from pipeline.corpus.mixture import LLAMA1
from pipeline.engine.registry import sample_writer


def write_samples(out: Path, sources: list[str] | None = None, seed: int = 0) -> list[str]:
    """Write samples for `sources` (default: the paper's seven); returns those written.

    Refuses, before writing anything, when a source folder holds a file it did not write."""
    wanted = list(sources or LLAMA1.sources())
    writers = {name: sample_writer(name) for name in wanted}
    check_output_folder(out)
    for name in wanted:
        refuse_foreign_files(out / name)
    for name, writer in writers.items():
        _write_keeping_unchanged(writer, out / name, seed)
        mark_generated(out / name, sorted(_files_under(out / name)))
    return wanted


def _write_keeping_unchanged(writer: ModuleType, folder: Path, seed: int) -> None:
    """The sample written into a staging folder beside `folder`, then moved in file by file: a file
    already there with the same bytes is left as it is (its times too), so the sample written
    again is no changed input to a run made from it (`pipeline run` resumes a finished corpus
    instead of refusing inputs "changed since it was read"); a file of the earlier sample that
    this one lacks is removed."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{folder.name}.sample-"
    for left in folder.parent.glob(f"{prefix}*"):  # a killed sample's staging folder (mkdtemp's names)
        if left.is_dir() and not left.is_symlink():
            shutil.rmtree(left, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=folder.parent))  # a new name: never one someone made
    try:
        writer.write(staging, seed)
        written = _files_under(staging)
        changed = [name for name in written if not _same_file(staging / name, folder / name)]
        if changed:
            mark_pending(folder, staging, changed)  # killed during the moves, the next sample still knows them
        for name in changed:
            new, old = staging / name, folder / name
            old.parent.mkdir(parents=True, exist_ok=True)
            os.replace(new, old)
        for name in set(_files_under(folder)) - set(written):
            (folder / name).unlink()  # the earlier sample's: refuse_foreign_files vouched for it
        folder.mkdir(parents=True, exist_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _same_file(new: Path, old: Path) -> bool:
    return old.is_file() and not old.is_symlink() and filecmp.cmp(new, old, shallow=False)


def refuse_foreign_files(folder: Path) -> None:
    """One line naming a file under `folder` that `pipeline sample` did not write, if there is one."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise UserError(f"{folder}: not a folder `pipeline sample` made; refusing to write into it "
                        "(give another --raw folder)")
    foreign = [name for name in sorted(_files_under(folder)) if not unchanged_since_written(folder, name)]
    if foreign:
        raise UserError(f"{folder / foreign[0]}: not written by `pipeline sample` ({len(foreign)} such file(s) in "
                        f"{folder}); refusing to replace or add to raw inputs (give another --raw folder)")


def _files_under(folder: Path) -> list[str]:
    """Every file and link under `folder` (links not followed), relative, the marker (and a
    temporary of it left by a kill) left out."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.rglob("*"):
        if (path.is_symlink() or path.is_file()) and not is_marker_file(path.name):
            found.append(str(path.relative_to(folder)))
    return found


def add_arguments(p: argparse.ArgumentParser) -> None:
    raw = p.add_argument("--raw", type=path_arg, default="data/raw", metavar="DIR",
                         help="raw root; one folder per source (default %(default)s)")
    add_renamed(p, raw, "--out")
    p.add_argument("--sources", nargs="*", help="only these sources (default: all)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def run(args: argparse.Namespace) -> None:
    check_flags(args, {"seed": int})
    written = write_samples(Path(args.raw), args.sources, args.seed)
    print(f"wrote sample inputs for {', '.join(written)} under {args.raw}")
