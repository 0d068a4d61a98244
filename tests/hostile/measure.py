"""`python -m tests.hostile.measure SOURCE INPUT OUTPUT`: one run in a fresh interpreter, printing
its stats, peak resident memory and seconds as JSON (a pytest process's peak says nothing)."""

from __future__ import annotations

import json
import resource
import sys
import time


def main() -> None:
    name, raw, out = sys.argv[1:4]
    from pipeline.errors import UserError
    from pipeline.run import run_source
    from sources import source_class
    from tests.hostile.helpers import CommonCrawlReader

    source = CommonCrawlReader() if name == "commoncrawl" else source_class(name)()
    started = time.perf_counter()
    try:
        report = run_source(source, raw, out, workers=1, show_progress=False)
        result = {"stats": report.stats}
    except UserError as e:
        result = {"error": str(e)}
    result["seconds"] = time.perf_counter() - started
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
