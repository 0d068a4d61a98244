"""`pipeline run`'s process as a whole (the runs themselves are tested under tests/pipeline/engine)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, script, subprocess_env
from tests.hostile.helpers import one_error, run_script

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


def test_restart_into_a_users_folder_deletes_nothing_of_theirs(tmp_path: Path) -> None:
    """`--corpus ~ --restart` where ~/c4 is the user's own folder: refused in one line, every file kept."""
    from sources.samples.c4 import write

    write(tmp_path / "raw" / "c4", seed=0)
    home = tmp_path / "home"
    (home / "c4" / "dropped").mkdir(parents=True)
    files = {"c4/manifest.json": "my manifest", "c4/stats.json": "my stats", "c4/dropped/keep.txt": "keep",
             "c4/notes.txt": "notes"}
    for name, text in files.items():
        (home / name).write_text(text)
    done = subprocess.run([script("pipeline"), "run", "c4", "--input", str(tmp_path / "raw" / "c4"), "--corpus",
                           str(home), "--workers", "1", "--no-progress", "--restart"],
                          env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"pipeline: error: {home / 'c4' / 'manifest.json'}: not made by a run here (no _work/ beside it, so this is "
        "no run folder); refusing to delete it; move it away or give another output folder"]
    assert {str(p.relative_to(home)): p.read_text() for p in home.rglob("*") if p.is_file()} == files


@pytest.mark.parametrize("flags", [["--tasks", "100000000"], ["--workers", "100000"]])
def test_tasks_and_workers_past_the_inputs_cost_nothing_more(tmp_path: Path, flags: list[str]) -> None:
    """A task reads whole inputs: 3 input files make at most 3 tasks and 3 workers, however many are
    asked for (100,000 tasks wrote 100,000 markers; 100,000 workers forked 1,300 processes in 20 s)."""
    from sources.samples.c4 import write

    write(tmp_path / "raw" / "c4", seed=0)
    inputs = sorted((tmp_path / "raw" / "c4").glob("*.json.gz"))
    assert len(inputs) == 3
    done = subprocess.run([script("pipeline"), "run", "c4", "--input", str(tmp_path / "raw" / "c4"), "--corpus",
                           str(tmp_path / "corpus"), "--no-progress", *flags],
                          env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    work = tmp_path / "corpus" / "c4" / "_work"
    assert json.loads((work / "plan.json").read_text())["tasks"] == 3
    assert sum(1 for _ in work.rglob("*")) < 50


def test_the_same_inputs_under_another_path_resume_and_other_inputs_are_named(tmp_path: Path) -> None:
    from sources.samples.c4 import write

    write(tmp_path / "base" / "raw" / "c4", seed=0)
    (tmp_path / "link").symlink_to(tmp_path / "base")
    (tmp_path / "d1").mkdir()

    def run(input_folder: str) -> subprocess.CompletedProcess:
        return subprocess.run([script("pipeline"), "run", "c4", "--input", input_folder, "--corpus", "out",
                               "--workers", "1", "--no-progress"], cwd=tmp_path / "d1", env=subprocess_env(),
                              capture_output=True, text=True, timeout=120)

    assert run("../base/raw/c4").returncode == 0
    plan = (tmp_path / "d1" / "out" / "c4" / "_work" / "plan.json").read_bytes()
    for spelling in (str(tmp_path / "base" / "raw" / "c4"), str(tmp_path / "link" / "raw" / "c4")):
        again = run(spelling)
        assert again.returncode == 0 and "(already complete)" in again.stdout, again.stderr
    assert (tmp_path / "d1" / "out" / "c4" / "_work" / "plan.json").read_bytes() == plan  # as first spelled
    extra = tmp_path / "base" / "raw" / "c4" / "extra.json"
    extra.write_text('{"text": "one more page"}\n')
    refused = run("../base/raw/c4")
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"pipeline: error: out/c4: the inputs differ from the run started there (1 new: {tmp_path}/d1/../base/raw/c4/"
        "extra.json); "
        "rerun with the same settings to resume, or pass --restart to start over"]


def test_a_config_or_input_that_is_no_regular_file_is_one_line_and_never_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # no writer: a command that opened it to read would wait for ever
    (tmp_path / "zero.toml").symlink_to("/dev/zero")
    for args, line in [
        (["run", "c4", "--config", "fifo"], "fifo: a FIFO, not a config file"),
        (["plan", "c4", "--config", "fifo"], "fifo: a FIFO, not a config file"),
        (["run", "c4", "--config", "zero.toml"], "zero.toml: a device (a link to /dev/zero), not a config file"),
        (["run", "c4", "--input", "fifo", "--corpus", "corpus"],
         "fifo: a FIFO, not a folder of inputs or an input file"),
    ]:
        assert one_error(run_script("pipeline", *args, cwd=tmp_path, timeout=30), "pipeline") == line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "zero.toml"]  # nothing written
def test_a_config_integer_past_an_int64_is_one_line_before_the_run_starts(tmp_path: Path) -> None:
    """It was an OverflowError inside the C4 stage, on every document, with _work left behind."""
    from sources.samples.c4 import write

    write(tmp_path / "raw" / "c4", seed=0)
    (tmp_path / "big.toml").write_text("[c4]\nmin_words_per_line = 99999999999999999999\n")
    done = subprocess.run([script("pipeline"), "run", "c4", "--input", str(tmp_path / "raw" / "c4"), "--corpus",
                           str(tmp_path / "corpus"), "--config", str(tmp_path / "big.toml"), "--no-progress"],
                          env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"pipeline: error: {tmp_path / 'big.toml'} [c4]: setting 'min_words_per_line' must be at most "
        "9223372036854775807, got 99999999999999999999"]
    assert not (tmp_path / "corpus").exists()
