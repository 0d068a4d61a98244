"""`python -m tests.hostile.measure SOURCE INPUT OUTPUT`: one run in a fresh interpreter, printing
its stats, peak resident memory and seconds as JSON (a pytest process's peak says nothing).
`tree_peak_mb` measures a command and every process it forks (a supervised worker pool)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time


def peak_mb() -> float:
    """This process's peak resident memory. Not ru_maxrss: it survives execve, so a child of a
    big pytest process would report its parent's peak; VmHWM belongs to this address space."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def _high_water_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_peak_mb(process: subprocess.Popen, interval_s: float = 0.005) -> float:
    """Wait for `process`; the largest sum, over the samples taken, of the peak resident memory
    (VmHWM) of it and every live descendant. Each process's own peak is kept by the kernel, so a
    spike between two samples is not missed; summing peaks reached at different moments, and
    counting pages a forked worker shares with its parent twice, can only overstate the tree's
    true peak, which is what a test asserting an upper bound needs."""
    peak = 0
    while process.poll() is None:
        children, tree, todo = _children(), [], [process.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        peak = max(peak, sum(_high_water_kib(pid) for pid in tree))
        time.sleep(interval_s)
    return peak / 1024


def main() -> None:
    name, raw, out = sys.argv[1:4]
    from pipeline.commands.run import run_source
    from pipeline.common.errors import UserError
    from pipeline.engine.registry import source_class
    from tests.hostile.helpers import CommonCrawlReader

    source = CommonCrawlReader() if name == "commoncrawl" else source_class(name)()
    started = time.perf_counter()
    try:
        report = run_source(source, raw, out, workers=1, show_progress=False)
        result = {"stats": report.stats}
    except UserError as e:
        result = {"error": str(e)}
    result["seconds"] = time.perf_counter() - started
    result["peak_mb"] = peak_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
