"""File helpers shared by the pipeline, the tokenizer and the trainer: an OSError that names
its file, JSON written atomically (and the temporaries a killed writer leaves), a file's sha256,
the one read of a stream that loses nothing before a cut, and the checks of a path a user gives
(a regular file where one is read, a folder where one is written, an output apart from the inputs)."""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import re
import stat
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO, Any

from pipeline.common.errors import UserError


def single_read(stream: IO[bytes]) -> Callable[[int], bytes]:
    """`stream.read1` where it has one, else `stream.read`: one read of the layer below. A buffered
    `read(n)` gathers several and, when a compressed stream turns out to be cut, drops what it had
    gathered along with the error; with one read each, every byte decoded before the cut comes
    out first (a Wikipedia dump cut short lost up to 64 KiB of whole pages that way)."""
    return getattr(stream, "read1", stream.read)


def with_path(error: OSError, path: Path | str) -> OSError:
    """`error` naming the file it concerns. pyarrow, file objects and numpy raise write errors
    without a file name; the one line a command prints must say which file it was."""
    if error.errno is None and "requested and" in str(error) and "written" in str(error):
        # numpy's tofile/save report a short write ("6000 requested and 4080 written") without
        # an errno: the disk filled up under it.
        named = OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({error})", str(path))
        named.__cause__ = error
        return named
    if error.filename is not None or error.errno is None:
        return error
    named = OSError(error.errno, os.strerror(error.errno), str(path))
    named.__cause__ = error
    return named


def write_json_atomic(path: Path, value: Any) -> None:
    """Write `value` as JSON under a temporary name, then rename (write_text_atomic)."""
    write_text_atomic(path, json.dumps(value, indent=1, sort_keys=True) + "\n")


def write_json_if_changed(path: Path, value: Any) -> bool:
    """`write_json_atomic`, unless the file holds those very bytes already (a rerun with nothing to
    do rewrites nothing); whether it wrote."""
    return write_text_if_changed(path, json.dumps(value, indent=1, sort_keys=True) + "\n")


def write_text_if_changed(path: Path, text: str) -> bool:
    """`write_text_atomic`, unless the file holds `text` already; whether it wrote."""
    try:
        if path.read_text() == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    write_text_atomic(path, text)
    return True


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` under a temporary name, then rename: a reader sees the old file or the new
    one, never half of one. A failed write leaves no temporary behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # two writers never share a temporary (JSON_TEMPORARY)
    try:
        tmp.write_text(text)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise with_path(e, path) from e
    os.replace(tmp, path)


# write_json_atomic's temporary of NAME: `NAME.<pid>.tmp`.
JSON_TEMPORARY = re.compile(r"(?P<name>.+)\.[0-9]+\.tmp")


def leftover_temporaries(folder: Path, names: Collection[str] | None = None) -> list[Path]:
    """The temporaries write_json_atomic left in `folder` when its process was killed between
    writing and renaming: `NAME.<pid>.tmp` for each NAME in `names` (any NAME when None, for a
    folder that is wholly the command's own). Only the caller knows no writer is alive (it holds
    the folder's lock); any other file, a user's `notes.tmp` included, is never listed."""
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        match = JSON_TEMPORARY.fullmatch(entry.name)
        if match and (names is None or match["name"] in names) and entry.is_file() and not entry.is_symlink():
            found.append(entry)
    return sorted(found)


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: Path) -> dict:
    """A JSON object a command wrote (a plan, a marker); a damaged one is one line naming it."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{path}: damaged ({type(e).__name__}: {e}); pass --restart to start over") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: damaged (not a JSON object); pass --restart to start over")
    return data


def plain_name(name: str) -> bool:
    """Whether `name` names a file or folder directly inside another: no separator, not "." or "..",
    no NUL. A name a user or a file gives that is joined to a folder must be one, or the join
    reaches somewhere else."""
    return name not in ("", ".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def overlapping(a: Path, b: Path) -> bool:
    """Whether one folder is the other or holds it: a run's output there would become its own
    input, or a --restart would delete the input."""
    a, b = a.resolve(), b.resolve()
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def refuse_overlap(output: Path, noun: str, given: Path, shown: str, advice: str) -> None:
    """Refuse an output folder that is an input `given`, holds it or sits in it, in the one line
    every command gives: "OUTPUT: the NOUN overlaps SHOWN; ADVICE". Written into its own input,
    a model or a tokenizer becomes input of the next run, and a later `pipeline sample` or
    `pipeline run` finds files there that are not inputs."""
    if overlapping(given, output):
        raise UserError(f"{output}: the {noun} overlaps {shown}; {advice}")


# --- paths a user gives -------------------------------------------------------------------


def file_kind(mode: int) -> str:
    """What a file of `mode` (from stat) is, in words, for the line that refuses it."""
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"  # character or block


@functools.cache
def _pipe_device() -> int:
    """The device number of the kernel's anonymous pipes (`<(cmd)`, `cmd |`): every one has it,
    and no named FIFO, which lives on the file system that holds its name."""
    read, write = os.pipe()
    try:
        return os.fstat(read).st_dev
    finally:
        os.close(read)
        os.close(write)


def check_regular_file(path: str | Path, what: str, folder_ok: bool = False, pipe_ok: bool = False) -> None:
    """Refuse a `path` that exists but is no regular file (links followed), before anything opens
    it, with one line naming it and what it is: "PATH: a FIFO, not WHAT". Opening a FIFO blocks
    until something writes to it (the command hangs), a device never ends (a link to /dev/zero
    fills the memory), a socket cannot be opened. Only looked at (stat), never opened.

    A folder passes where `folder_ok` (an input that may be a folder of files); an anonymous pipe
    where `pipe_ok` (a shell's `--ids <(grep ...)`: its writer is there, and the reader reads it
    once, front to back). A path that does not exist passes: the caller's open says so in its own
    words ("config file does not exist")."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # none there, or a file where a folder of it should be
        return
    except OSError as e:
        why = "a link in a loop" if e.errno == errno.ELOOP else f"cannot be looked at ({e.strerror or e})"
        raise UserError(f"{path}: {why}") from None
    mode = info.st_mode
    if stat.S_ISREG(mode) or (folder_ok and stat.S_ISDIR(mode)):
        return
    if pipe_ok and stat.S_ISFIFO(mode) and info.st_dev == _pipe_device():
        return
    raise UserError(f"{path}: {_what_is(path, mode)}, not {what}")


def _what_is(path: str | Path, mode: int) -> str:
    """What `path` (of `mode`, links followed) is, in words: "a FIFO", "a device (a link to /dev/zero)"."""
    link = f" (a link to {os.path.realpath(path)})" if os.path.islink(path) else ""
    return f"{file_kind(mode)}{link}"


# How deep the readers of a finished corpus read: its shards, `dropped/`, `_work`'s journal.
READ_DEPTH = 2


def refuse_special_files(folder: Path, depth: int | None = None) -> None:
    """Refuse a folder a command wrote (a corpus, a run's `_work`, token shards, a training run)
    that holds a FIFO, a device or a socket, links followed, in one line naming the first: such a
    file is never one a command made, and opening it to read blocks for ever (a FIFO: `pipeline
    stats` hung on a stats.json that was one) or never ends (a link to /dev/zero). Only looked at,
    never opened; links to folders are not walked (no loop), a link to nothing is the reader's to
    report. `depth`: files that many folders down at most (1: the folder's own), for a command that
    reads no deeper (a corpus's readers: its shards, `dropped/`, `_work`'s journal; a big run's
    `_work` holds a file per task and pass, each a stat on a cluster's file system)."""
    base = len(Path(folder).parts)
    for directory, subfolders, names in os.walk(folder):
        if depth is not None and len(Path(directory).parts) - base + 1 >= depth:
            subfolders.clear()  # this folder's files are the deepest looked at
        for name in names:
            path = os.path.join(directory, name)
            try:
                mode = os.stat(path).st_mode
            except OSError:
                continue  # gone, or a link to nothing: whoever reads it says so in its own words
            if not stat.S_ISREG(mode):
                raise UserError(f"{path}: {_what_is(path, mode)}, not a file a command wrote here; remove it and rerun")


def check_output_folder(folder: Path) -> None:
    """Refuse an output `folder` that is, or sits under, something other than a folder (a file,
    /dev/null, a link to nothing), in one line naming it: "PATH: a device, not a folder (give
    another output folder)". Called before any work; making the folder then raised "File exists"
    (EEXIST), which does not say the output folder is a file."""
    for path in [folder, *folder.parents]:
        if not path.is_symlink() and not path.exists():
            continue  # made later, with the folders below it
        if path.is_dir():
            return
        what = "a link to nothing" if not path.exists() else file_kind(os.stat(path).st_mode)
        made = "" if path == folder else f", so {folder} cannot be made"
        raise UserError(f"{path}: {what}, not a folder{made} (give another output folder)")


def tree_bytes(path: Path) -> int:
    """The bytes of a file, or of every file under a folder (0 when there is none)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for directory, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:  # removed while walking: a run is moving parts
                pass
    return total


# --- seals: what a check of a file established, recorded on the file itself ------------------

SEAL = "user.herd.sealed"  # an extended attribute: [size, modification time in ns, what was checked]
SECOND_NS = 10**9


def seal(path: Path, what: str, writer: bool = True) -> None:
    """Record on `path` that it was written or checked as `what` (a sha256, a listing's checksum),
    with its size and modification time, so that a rerun can trust it while those stay as they
    are (`sealed`) instead of hashing it again. Kept by a rename, and by a write in place (which
    moves the time). Where the file system keeps no extended attributes, nothing is recorded.
    A reader that checked the file (not `writer`) never moves its time: a file written in the
    last two seconds is then left unsealed."""
    try:
        info = path.stat()
        if abs(time.time_ns() - info.st_mtime_ns) < 2 * SECOND_NS:
            if not writer:
                return
            # File times come from a clock that moves once a tick: a write in the tick of this seal
            # would leave the time as sealed. Set back a second, any later write moves it.
            os.utime(path, ns=(info.st_atime_ns, time.time_ns() - SECOND_NS))
            info = path.stat()
        os.setxattr(path, SEAL, json.dumps([info.st_size, info.st_mtime_ns, what]).encode())
    except (OSError, AttributeError):  # no extended attributes here (the file system, the platform)
        pass


def _seal_and_stat(path: Path) -> tuple[bytes, os.stat_result] | None:
    """The seal's recorded bytes and the file's state now; None when it holds no seal (or the file
    system keeps none)."""
    try:
        return os.getxattr(path, SEAL), path.stat()
    except (OSError, AttributeError):
        return None


def seal_value(path: Path) -> str | None:
    """What `seal(path, what)` recorded, while the file is as the seal left it; else None."""
    found = _seal_and_stat(path)
    if found is None:
        return None
    recorded, info = found
    try:
        size, mtime_ns, what = json.loads(recorded)
    except (TypeError, ValueError):  # not a seal herd wrote: three values
        return None
    return what if [size, mtime_ns] == [info.st_size, info.st_mtime_ns] and isinstance(what, str) else None


def sha256_once(path: Path) -> str:
    """The sha256 of `path`, read from its seal while the file stays as the seal left it (hashed and
    sealed otherwise): a large file a command checks each time it starts (a model) is read once."""
    recorded = seal_value(path)
    if recorded is not None and recorded.startswith("sha256:"):
        return recorded.removeprefix("sha256:")
    digest = file_sha256(path)
    seal(path, f"sha256:{digest}")
    return digest


def sealed(path: Path, what: str) -> bool | None:
    """True when `path` is as `seal(path, what)` left it; False when it holds a seal that no longer
    fits (written since, or sealed as something else); None when it holds none."""
    found = _seal_and_stat(path)
    if found is None:
        return None
    recorded, info = found
    return recorded == json.dumps([info.st_size, info.st_mtime_ns, what]).encode()
