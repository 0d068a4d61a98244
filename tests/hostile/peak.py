"""`python -m tests.hostile.peak PEAK_FILE ARGS...`: `pipeline ARGS...` (the console script's own
`pipeline.cli:main`) in a fresh interpreter, then the peak resident memory of its process tree,
in MB, written to PEAK_FILE however it ends; stdout, stderr and the exit status are the CLI's."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

from tests.hostile.measure import peak_mb


def tree_peak_mb() -> float:
    """This process's VmHWM, or that of its largest child when one was larger. A child's
    ru_maxrss counts from the fork, so it includes this (small) interpreter's pages."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return max(peak_mb(), children)


def measured(args: list[str], cwd: Path, env: dict[str, str] | None = None,
             timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
    """`pipeline ARGS` as the real CLI runs, and its peak memory in MB; never a traceback."""
    from tests.conftest import subprocess_env  # not in the measured interpreter: it imports pytest

    peak_file = cwd / "peak.mb"
    done = subprocess.run([sys.executable, "-m", "tests.hostile.peak", str(peak_file), *args], cwd=cwd,
                          env={**subprocess_env(), **(env or {})}, capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in done.stderr, done.stderr
    peak = float(peak_file.read_text())
    peak_file.unlink()
    return done, peak


def main() -> None:
    peak_file, *args = sys.argv[1:]
    from pipeline.cli import main as pipeline

    try:
        pipeline(args)
    finally:
        Path(peak_file).write_text(f"{tree_peak_mb():.1f}\n")


if __name__ == "__main__":
    main()
