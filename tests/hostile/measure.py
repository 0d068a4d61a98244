"""`python -m tests.hostile.measure SOURCE INPUT OUTPUT`: one run in a fresh interpreter, printing
its stats, peak resident memory and seconds as JSON (a pytest process's peak says nothing)."""

from __future__ import annotations

import json
import resource
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
