"""`python -m tests.hostile.measure SOURCE INPUT OUTPUT`: one run in a fresh interpreter, printing
its stats, peak resident memory and seconds as JSON (a pytest process's peak says nothing).

`python -m tests.hostile.measure --cli PEAK_FILE PROG ARGS...`: console script PROG (pipeline,
tokenizer) run as a user runs it, its output and exit status untouched; at exit its peak
resident memory in MB is written to PEAK_FILE (`cli_peak_mb` runs it).

`tree_peak_mb` (bench/process_tree.py) measures a command and every process it forks (a supervised worker pool)."""

from __future__ import annotations

import atexit
import importlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.process_tree import tree_peak_mb  # noqa: F401  (one copy; tests import it from here)


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


def cli_peak_mb(prog: str, *args: str, cwd: Path, env: dict[str, str] | None = None,
                timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
    """Console script `prog` with `args` in a fresh interpreter: its result (never a traceback)
    and its peak resident memory in MB (its own, or its largest child's when larger)."""
    from tests.conftest import subprocess_env  # not in the measured interpreter: it imports pytest

    peak_file = cwd / f".peak-{time.monotonic_ns()}"
    done = subprocess.run([sys.executable, "-m", "tests.hostile.measure", "--cli", str(peak_file), prog, *args],
                          cwd=cwd, env={**subprocess_env(), **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    peak = float(peak_file.read_text())
    peak_file.unlink()
    return done, peak


def _run_cli(peak_file: str, prog: str, args: list[str]) -> None:
    # A child's ru_maxrss counts from the fork, so it includes this (small) interpreter's pages.
    atexit.register(lambda: Path(peak_file).write_text(
        f"{max(peak_mb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024):.1f}"))
    sys.argv = [prog, *args]
    importlib.import_module(f"{prog}.cli").main()


def main() -> None:
    if sys.argv[1] == "--cli":
        _run_cli(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
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
