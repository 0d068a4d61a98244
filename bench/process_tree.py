"""A command's cost with every process it forks: CPU seconds and peak memory of the whole tree.

Since per-document supervision a run's work happens in forked workers, so the parent's own
`RUSAGE_SELF` says little. CPU: `RUSAGE_CHILDREN` of this process before and after the command,
which counts the command and every descendant that was waited for (a worker pool is). Memory:
the tree (the command and its live descendants, found through /proc/<pid>/stat) is sampled
every few milliseconds, and the largest sums over the samples are kept of

- RSS, resident memory (pages a worker shares with its parent counted in both),
- PSS, proportional set size from /proc/<pid>/smaps_rollup (a shared page split between the
  processes that map it): the tree's true footprint at that moment,
- VmHWM, each process's own peak (kept by the kernel, so a spike between two samples is not
  missed; peaks reached at different moments summed): an upper bound.

Linux only (it reads /proc), no psutil.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TreeUsage:
    returncode: int
    cpu_s: float  # user + system of the command and every descendant it waited for
    wall_s: float
    peak_rss_mb: float
    peak_pss_mb: float
    peak_hwm_mb: float  # upper bound: each process's own peak, summed


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])  # the name may hold spaces
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            children.setdefault(parent, []).append(int(entry))
    return children


def _tree(root: int) -> list[int]:
    children, tree, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _status_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss_pss_kib(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def run_tree(command: list[str], interval_s: float = 0.01, **popen: object) -> tuple[TreeUsage, subprocess.CompletedProcess]:
    """Run `command` (Popen's keyword arguments pass through) and measure its tree; what it
    wrote to its pipes comes back in the CompletedProcess. The pipes are read on threads while
    the tree is sampled: a command writing more than a pipe holds (64 KiB of warnings) would
    otherwise block for ever on a full pipe that nobody reads until it ends."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, **popen)  # type: ignore[call-overload]
    captured: dict[str, object] = {}
    readers = [threading.Thread(target=lambda name=name, pipe=pipe: captured.__setitem__(name, pipe.read()), daemon=True)
               for name, pipe in (("stdout", process.stdout), ("stderr", process.stderr)) if pipe is not None]
    for reader in readers:
        reader.start()
    rss = pss = hwm = 0
    while process.poll() is None:
        tree = _tree(process.pid)
        sizes = [_rss_pss_kib(pid) for pid in tree]
        rss = max(rss, sum(r for r, _ in sizes))
        pss = max(pss, sum(p for _, p in sizes))
        hwm = max(hwm, sum(_status_kib(pid, "VmHWM:") for pid in tree))
        time.sleep(interval_s)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for reader in readers:
        reader.join()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    done = subprocess.CompletedProcess(command, process.returncode, captured.get("stdout"), captured.get("stderr"))
    return TreeUsage(process.returncode, cpu, wall, rss / 1024, pss / 1024, hwm / 1024), done


def tree_peak_mb(process: subprocess.Popen, interval_s: float = 0.005) -> float:
    """Wait for `process`; the largest sum, over the samples taken, of the peak resident memory
    (VmHWM) of it and every live descendant. Summing peaks reached at different moments, and
    counting pages a forked worker shares with its parent twice, can only overstate the tree's
    true peak, which is what a test asserting an upper bound needs."""
    peak = 0
    while process.poll() is None:
        peak = max(peak, sum(_status_kib(pid, "VmHWM:") for pid in _tree(process.pid)))
        time.sleep(interval_s)
    return peak / 1024
