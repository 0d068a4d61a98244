"""`pipeline run`'s process as a whole (the runs themselves are tested under tests/pipeline/engine)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, subprocess_env

# Run in a fresh interpreter: the test process has long imported pandas (datasets imports it).
RUN_C4 = """
import sys
from pathlib import Path
from pipeline.cli import main
from sources.samples.c4 import write

root = Path(sys.argv[1])
write(root / "raw" / "c4", seed=0)
main(["run", "c4", "--input", str(root / "raw" / "c4"), "--corpus", str(root / "corpus"), "--no-progress"])
print("pandas" in sys.modules, (root / "corpus" / "c4" / "manifest.json").is_file())
"""


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None,
                    reason="pyarrow imports pandas only where it is installed")
def test_pipeline_run_never_imports_pandas(tmp_path: Path) -> None:
    # pyarrow's first conversion in a process imports pandas (0.15-0.3 s of CPU) to ask whether
    # its argument is a pandas object; `pipeline run` hands it none, in its workers or its own
    # process (the dedup merge and the manifests convert there).
    done = subprocess.run([sys.executable, "-c", RUN_C4, str(tmp_path)], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["False", "True"]
