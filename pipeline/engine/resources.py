"""CPU time and peak memory of this process and of its finished children, as Linux counts them.

The peak resident size of a phase (a global merge) needs the high-water mark reset at its
start: writing "5" to /proc/self/clear_refs does that (Linux 4.0+). Where that file cannot be
written (another OS, a locked-down container) the peak is the process's lifetime peak, an upper
bound, and says so through `Phase.peak_is_lifetime`.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")


def reset_peak_rss() -> bool:
    """Reset this process's peak resident size to its current size; False where unsupported."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """This process's peak resident size since start (or since the last reset)."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return _maxrss_bytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def children_peak_rss_bytes() -> int:
    """The largest peak resident size of any finished, waited-for child (the workers)."""
    return _maxrss_bytes(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def _maxrss_bytes(maxrss: int) -> int:
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes on macOS, KiB on Linux


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds_with_children() -> float:
    """This process's CPU seconds (all its threads) and those of its children waited for so far
    (a run's forked workers, a merge's bucket processes): take it before and after a phase. On a
    shared machine, time other programs take does not count, as it does in wall time."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return cpu_seconds() + children.ru_utime + children.ru_stime


@dataclass
class Phase:
    """CPU seconds, wall seconds and peak resident bytes of one phase of this process. The CPU
    seconds include those of the processes it forked and waited for in the phase (a merge's
    buckets run in forked processes); the peak is this process's."""

    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    peak_rss_bytes: int = 0
    peak_is_lifetime: bool = False

    def to_json(self) -> dict:
        return {"cpu_seconds": round(self.cpu_seconds, 3), "wall_seconds": round(self.wall_seconds, 3),
                "peak_rss_bytes": self.peak_rss_bytes, "peak_is_lifetime": self.peak_is_lifetime}


class measure_phase:
    """`with measure_phase() as phase: ...` fills `phase` when the block ends."""

    def __enter__(self) -> Phase:
        self.phase = Phase(peak_is_lifetime=not reset_peak_rss())
        self._cpu, self._wall = cpu_seconds_with_children(), time.perf_counter()
        return self.phase

    def __exit__(self, *exc: object) -> None:
        self.phase.cpu_seconds = cpu_seconds_with_children() - self._cpu
        self.phase.wall_seconds = time.perf_counter() - self._wall
        self.phase.peak_rss_bytes = peak_rss_bytes()
