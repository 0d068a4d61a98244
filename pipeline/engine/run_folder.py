"""The resumable run folder: one protocol for `pipeline run` and `tokenizer encode`.

A command that writes a folder from an input in tasks, and may be killed and rerun, keeps
this contract:

- Overlap: the folder is not the input, nor inside it, nor holding it. Otherwise the run's
  own files would become inputs of the next run, and --restart would delete the input.
- Lock: one run at a time writes the folder (`<folder>/.lock`, pipeline/common/lock.py).
- Plan: `_work/plan.json` is written at the first run and fixed from then on. A rerun reads
  it, and every setting that changes what the tasks write must agree with it, else the rerun
  is refused (naming what differs and --restart). What the first run derived (the task
  split, a held-out rule) is taken from the plan, never derived again. A folder holding a
  finished run's output but no plan is refused: it is not known how that output was made.
- Markers: a task writes its outputs, then its marker under `_work/`, atomically and last.
  A rerun runs only the tasks without a marker; a marker that cannot be read is removed
  and its task runs again.
- Restart: --restart deletes what a run creates in the folder (named by patterns, fixed
  per command) before planning anew, and never anything else a user keeps there. A folder
  without `_work/` is no run folder: a file there of a run's names is refused, never deleted
  nor overwritten.
- Leftovers: JSON is written under `NAME.<pid>.tmp`, then renamed (write_json_atomic); a run
  killed in between leaves that temporary. Under the lock, planning removes those of the
  command's own JSON files (`written`) and any in `_work/`, never another file.
- Completion is what is on disk, not what a marker once said. A marker records the fingerprint
  of each input its task read (`fingerprint`: size and mtime, which a rewrite changes, and
  ctime; an object in a store: size, ETag and upload time) and the size and sha256 of each file the task wrote. A rerun reads an input again when
  `reread_reason` says so (changed since it was read, or failed then and touched since), and
  counts a finished run as complete only when every file it lists passes `file_problem` and
  its JSON files parse (`json_problem`). What is redone, refused or repaired is each command's.

The names (files, markers, messages) are each command's; this class holds the protocol.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

import fsspec

from pipeline.common.errors import UserError
from pipeline.common.files import (
    file_sha256, leftover_temporaries, read_json, refuse_overlap, seal, sealed, write_json_atomic,
)
from pipeline.common.lock import folder_lock

WORK = "_work"
PLAN = "plan.json"
# The number in the name of a file a run writes by number (shard-00000.arrow, train-00000.bin):
# five digits or more, never a user's shard-old.arrow beside them (`created`, `published`).
NUMBERED = "[0-9][0-9][0-9][0-9][0-9]*"

Parsed = TypeVar("Parsed")
NO_DEFAULTS: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True)
class RunFolder:
    """One command's run folder at `path`: the command's names are data, the protocol is the methods."""

    path: Path
    activity: str  # what the lock says is writing here: "run", "encode"
    noun: str  # how messages call the folder: "run folder", "token folder"
    created: tuple[str, ...]  # glob patterns of everything a run creates here; restart deletes these only
    published: tuple[str, ...]  # glob patterns of a finished run's output
    published_noun: str  # how messages call that output: "shards of an earlier run"
    written: tuple[str, ...] = ()  # JSON files written atomically at the folder's top: "manifest.json"
    # Of `created`, the patterns of files a run records making (its numbered shards), and what it
    # recorded: the names, relative to the folder. A match it did not record (a user's copy named
    # shard-00042.arrow) is not the run's, and restart leaves it.
    recorded_only: tuple[str, ...] = ()
    records: Callable[[Path], set[str]] | None = None

    def __post_init__(self) -> None:
        if WORK not in self.created:  # else --restart would keep the plan it is meant to replace
            raise ValueError(f"{self.path}: a run folder's created files must include {WORK}")

    @property
    def work(self) -> Path:
        return self.path / WORK

    @property
    def plan_path(self) -> Path:
        return self.work / PLAN

    def refuse_overlap(self, input_folder: Path, shown: str, advice: str) -> None:
        """Refuse an input that is this folder, holds it or sits in it; `shown` names the input
        in the message (as the user gave it), `advice` says what to do instead."""
        refuse_overlap(self.path, self.noun, input_folder, shown, advice)

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return folder_lock(self.path, self.activity)

    def remove_leftover_temporaries(self) -> None:
        """Delete the temporaries of `written` files and of `_work/`'s JSON files (plan, markers)
        that a killed run left; call with the lock held, so that no writer of them is alive."""
        folders = [self.work, *(p for p in self.work.rglob("*") if p.is_dir() and not p.is_symlink())] \
            if self._is_run_folder() else []
        stale = leftover_temporaries(self.path, self.written)
        for folder in folders:
            stale += leftover_temporaries(folder)  # `_work/` is wholly the command's own
        for path in stale:
            path.unlink(missing_ok=True)

    def _is_run_folder(self) -> bool:
        """Whether a run made this folder: `_work/` is its mark (made before any output, with the plan)."""
        return self.work.is_dir() and not self.work.is_symlink()

    def refuse_foreign(self, doing: str) -> None:
        """Refuse a folder without `_work/` that holds a file of a run's names: the names are
        common (manifest.json, stats.json, dropped/shard-00000.arrow), so such a file is a user's, or the output of
        something unknown, and `doing` (deleting, writing) would destroy it."""
        if self._is_run_folder() or not self.path.is_dir():
            return
        found = sorted(str(entry.relative_to(self.path))
                       for pattern in self.created for entry in self.path.glob(pattern))
        if found:
            raise UserError(f"{self.path / found[0]}: not made by a run here (no {WORK}/ beside it, so this is no "
                            f"{self.noun}); refusing to {doing} it; move it away or give another output folder")

    def clear(self) -> None:
        """Delete what a run writes into the folder, never anything else a user keeps there."""
        if not self.path.is_dir():
            return
        self.refuse_foreign("delete")
        self.remove_leftover_temporaries()
        recorded = self.records(self.path) if self.records is not None else set()
        for pattern in self.created:
            for entry in self.path.glob(pattern):
                if pattern in self.recorded_only and entry.relative_to(self.path).as_posix() not in recorded:
                    continue  # named like the run's output, not made by it: left, and named by fix_plan
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        # A folder the run's files were in (dropped/) goes once nothing else is left in it.
        for folder in {self.path / Path(pattern).parent for pattern in self.created if "/" in pattern}:
            with contextlib.suppress(OSError):  # holds a user's file, or is gone: left as it is
                folder.rmdir()

    def fix_plan(
        self,
        wanted: Mapping[str, object],
        compared: Sequence[str],
        refuse_change: Callable[[dict, list[str]], UserError],
        *,
        restart: bool = False,
        defaults: Mapping[str, object] = NO_DEFAULTS,
        first_run: Callable[[], Mapping[str, object]] | None = None,
    ) -> dict:
        """The plan of the run in this folder, cleared first on `restart`.

        A first run writes `wanted`, with what `first_run` derives once (kept in the plan, not
        derived again), and gets it back. A rerun gets the stored plan when every `compared`
        key agrees with `wanted` (a key that an older plan lacks reads as `defaults[key]`);
        otherwise `refuse_change(stored plan, the differing keys in `compared` order)` is raised."""
        if restart:
            self.clear()
            left = sorted(entry for pattern in self.recorded_only for entry in self.path.glob(pattern))
            if left:  # what restart left is not the run's: a run would write over it
                raise UserError(f"{left[0]}: named like a run's output, but no run here recorded making it, so "
                                "--restart left it (the rest of the run is deleted); move it away and rerun")
        self.remove_leftover_temporaries()
        if self.plan_path.exists():
            earlier = read_json(self.plan_path)
            changed = [key for key in compared if earlier.get(key, defaults.get(key)) != wanted[key]]
            if changed:
                raise refuse_change(earlier, changed)
            return earlier
        self.refuse_foreign("overwrite")
        if any(any(self.path.glob(pattern)) for pattern in self.published):
            raise UserError(f"{self.path}: holds {self.published_noun}; pass --restart to replace them")
        plan = {**wanted, **(first_run() if first_run else {})}
        write_json_atomic(self.plan_path, plan)
        return plan


def read_marker(marker: Path, parse: Callable[[dict], Parsed]) -> Parsed | None:
    """A finished task's marker, parsed; None when the task has none. A marker that cannot be
    read or parsed is removed, so that its task simply runs again."""
    if not marker.exists():
        return None
    try:
        return parse(json.loads(marker.read_text()))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        marker.unlink()
        return None


# ---------------------------------------------------------------------------------------
# Completion checked against the disk and the inputs

# Files up to this size are checked by sha256 too (a few milliseconds each); bigger ones by
# size, which a cut or a deleted file changes: reading every byte of a finished corpus on each
# rerun would cost as much as a run. `pipeline verify` reads all of them.
CHEAP_TO_HASH = 4 << 20

# [size, mtime_ns, ctime_ns] of an input when its task read it; a folder adds FOLDER; a remote
# object's is [size, version, modified] (`remote_fingerprint`).
Fingerprint = list[int | str]


@dataclass(frozen=True)
class Recorded:
    """A file a run wrote, as it recorded it when writing: its size, its sha256 ("" if none), and
    its mtime once written (None where the record predates it)."""

    path: Path
    size: int
    sha256: str = ""
    mtime_ns: int | None = None


def file_problem(file: Recorded, trust_unsealed: bool = True) -> str | None:
    """What differs between the file on disk and its record: None when it exists with the
    recorded size and, unless it is known unchanged since it was written, the recorded sha256.
    `trust_unsealed=False` hashes every file its seal does not vouch for, whatever its size
    (a model: kept damaged, it would spoil every later run, and hashing it costs seconds).

    A large file is known unchanged while it is as its seal says (the shard writer seals what it
    writes, pipeline/common/files.py), or, holding no seal (a file system that keeps none, a
    copy that dropped it), while its mtime is the recorded one: a rerun would otherwise read the
    whole corpus again to learn nothing, and a write in place moves the mtime. A file of at most
    CHEAP_TO_HASH bytes is always hashed. One found intact by its hash is sealed again, so the
    next rerun trusts it without reading it."""
    try:
        info = file.path.stat()
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"unreadable ({e.strerror})"
    if info.st_size != file.size:
        return f"{info.st_size:,} bytes, not the {file.size:,} written"
    if not file.sha256:
        return None
    seal_state = sealed(file.path, f"sha256:{file.sha256}")
    if seal_state is True:
        return None
    if (trust_unsealed and info.st_size > CHEAP_TO_HASH and seal_state is None
            and file.mtime_ns in (None, info.st_mtime_ns)):
        return None  # holding no seal and as recorded (or recorded before mtimes were): its size is the check
    try:
        if file_sha256(file.path) != file.sha256:
            return "not as written (its sha256 differs)"
    except OSError as e:
        return f"unreadable ({e.strerror})"
    seal(file.path, f"sha256:{file.sha256}", writer=False)
    return None


def json_problem(path: Path) -> str | None:
    """None when `path` holds a JSON object; else what is wrong with it, in a few words."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"unreadable ({e.strerror})"
    except ValueError:
        return "damaged (not JSON: cut or overwritten)"
    return None if isinstance(data, dict) else "damaged (not a JSON object)"


FOLDER = "folder"  # the last item of a folder's fingerprint


def fingerprint(path: str) -> Fingerprint | None:
    """The input's fingerprint, taken before its task reads it; None for one that cannot be
    looked up. A remote input's is `remote_fingerprint`.

    A folder (a GitHub repository) is fingerprinted by everything in it: the bytes of its files
    and the latest mtime and ctime of its files and folders. Its own size and times say nothing
    of an edit inside; a file edited moves its mtime, and one added, removed or renamed its
    folder's."""
    if _is_remote(path):
        return remote_fingerprint(path)
    local = path.removeprefix("file://")
    try:
        st = os.stat(local)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return [st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    size, mtime, ctime = 0, st.st_mtime_ns, st.st_ctime_ns
    for folder, _, files in os.walk(local):
        for name in [".", *files]:
            try:
                entry = os.stat(os.path.join(folder, name), follow_symlinks=False)
            except OSError:  # removed while walked: the folder's mtime says so
                continue
            size += entry.st_size if name != "." else 0
            mtime, ctime = max(mtime, entry.st_mtime_ns), max(ctime, entry.st_ctime_ns)
    return [size, mtime, ctime, FOLDER]


def _is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def remote_fingerprint(url: str) -> Fingerprint | None:
    """[size, version, modified] of an object in a store (s3://, gs://), from one info call (a HEAD).
    The file system's cached listing is not asked: in a process that lists and runs more than once
    (a notebook, the tests) it still holds the objects as they were. The version is its ETag (or a
    store's like of it), which a rewrite with other bytes changes, as a local file's mtime; the
    modified time, in whole seconds (a listing gives milliseconds, a HEAD seconds), is its ctime:
    an upload of the same bytes moves it, which reads again an input that failed."""
    try:
        fs, path = fsspec.core.url_to_fs(url)
        fs.invalidate_cache(path)
        info = fs.info(path)
    except Exception:  # noqa: BLE001  (not found, or a store's own error: looked up again at the next rerun)
        return None
    size = info.get("size")
    if type(size) is not int or info.get("type") == "directory":
        return None
    modified = _epoch_seconds(next((info[k] for k in ("LastModified", "mtime", "updated", "last_modified")
                                    if info.get(k)), None))
    version = next((info[k] for k in ("ETag", "etag", "md5Hash", "generation") if info.get(k)), modified)
    return [size, str(version), modified]


def _epoch_seconds(value: object) -> int:
    """A store's time of last change (a datetime, epoch seconds, an ISO string) in whole seconds; 0 if none."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return 0
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value) if isinstance(value, (int, float)) else 0


def reread_reason(path: str, recorded: Fingerprint | None, failed: bool, failed_sha256: str | None = None) -> str | None:
    """Why a finished task must read `path` again, or None.

    - Its size or mtime differ from when it was read: the file was rewritten or replaced.
    - It failed when read (cut, unreadable) and its ctime has moved since: it was replaced
      keeping its mtime (`cp -p` of a good copy, `mv`) or its permissions were fixed (`chmod`),
      unless its bytes are still those that failed (`failed_sha256`, taken then: a restore with
      `cp -a`, a recursive chmod of the inputs), which would fail the same way. A failed input
      that nobody touched would fail again the same way too, so it is not read on every rerun.
    A good input whose ctime alone moved (a recursive chmod, a restore) is not read again: its
    bytes are those that were read. An input with no recorded fingerprint (an older run) is taken
    as read, unless it is a remote one that failed and can be looked up now: it could not be when
    read (listed, then gone), so it was uploaded since."""
    if recorded is None:
        if failed and _is_remote(path) and fingerprint(path) is not None:
            return "failed when it was read and was uploaded since"
        return None
    now = fingerprint(path)
    if now is None or len(now) != len(recorded):  # a folder an older herd fingerprinted by itself alone
        return None
    if now[:2] != recorded[:2]:
        size = f" ({recorded[0]:,} bytes then, {now[0]:,} now)" if now[0] != recorded[0] else ""
        return f"changed since it was read{size}"
    if failed and now != recorded and (failed_sha256 is None or failed_input_sha256(path) != failed_sha256):
        return "failed when it was read and was touched since (replaced or its permissions changed)"
    return None


MAX_FAILED_HASH = 4 << 30  # a failed input larger than this is not hashed: its ctime alone tells


def failed_input_sha256(path: str) -> str | None:
    """The sha256 of an input that failed when read: a local file it can read, of at most
    MAX_FAILED_HASH bytes (failures are few; hashing one costs a read of it); else None."""
    if _is_remote(path):
        return None
    local = Path(path.removeprefix("file://"))
    try:
        if not local.is_file() or local.stat().st_size > MAX_FAILED_HASH:
            return None
        return file_sha256(local)
    except OSError:
        return None
