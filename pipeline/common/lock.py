"""One lock file per output folder: two runs writing into one folder would delete each other's
in-progress tasks. The lock is a POSIX record lock (`lockf`) on `<folder>/.lock`: it goes away
with the process however it ends (a SIGKILL included), and forked workers do not inherit it, so
a worker still dying after its parent was killed never blocks the rerun. The file's text only
says who holds it."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from pipeline.common.errors import UserError
from pipeline.common.files import check_output_folder, refuse_special_files, with_path

LOCK_NAME = ".lock"


@contextlib.contextmanager
def folder_lock(folder: Path, what: str = "run") -> Iterator[None]:
    """Hold `folder`'s lock for the block; a second holder ends with one line naming the first.
    The file is removed when the block ends, so a finished folder holds only what the run made."""
    path = folder / LOCK_NAME
    created = []  # folders this lock makes, deepest first: removed again if nothing was written
    for parent in [folder, *folder.parents]:
        if parent.exists():
            break
        created.append(parent)
    fd = _acquire(folder, path, what)
    try:
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:500]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        refuse_special_files(folder)  # what the command will read back (markers, a plan, shards)
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # before the lock goes: a waiting run then finds no file, or its own
        os.close(fd)
        for made in created:  # a run that stopped before writing anything leaves no folder behind
            try:
                made.rmdir()
            except OSError:
                break


def _acquire(folder: Path, path: Path, what: str) -> int:
    while True:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileExistsError as e:
            # mkdir's own words ("File exists") do not say that the output folder is a file. (A file
            # above it is ENOTDIR, "Not a directory", which says so.)
            check_output_folder(folder)
            raise with_path(e, path) from e  # changed since: no clearer line to give
        except OSError as e:
            raise with_path(e, path) from e
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _holder(fd)
            os.close(fd)
            if e.errno not in (errno.EACCES, errno.EAGAIN):
                raise with_path(e, path) from e
            raise UserError(f"{folder}: another {what} is writing here ({holder}); wait for it to end "
                            "or stop it") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed the file as we locked it: lock the new one


def _holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}: {holder['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
