"""Peak memory and CPU of a phase of this process, and the merges' costs in timings.json."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import time
from pathlib import Path

import numpy as np

from pipeline.engine.resources import measure_phase, peak_rss_bytes, reset_peak_rss
from tests.conftest import script, subprocess_env

MB = 1 << 20


def test_a_phase_counts_its_own_peak_not_the_process_lifetime_one() -> None:
    big = np.ones(300 * MB, dtype=np.uint8)  # touched: resident
    del big
    lifetime = peak_rss_bytes()
    with measure_phase() as phase:
        small = np.ones(40 * MB, dtype=np.uint8)
        del small
    assert reset_peak_rss()  # Linux: the test machine's, and herd's
    assert not phase.peak_is_lifetime
    assert phase.peak_rss_bytes < lifetime - 200 * MB
    assert phase.cpu_seconds >= 0 and phase.wall_seconds > 0


def test_timings_list_each_merge_with_its_peak(tmp_path: Path) -> None:
    env = subprocess_env()
    run = lambda *args: subprocess.run([script("pipeline"), *args], cwd=tmp_path, env=env, check=True,  # noqa: E731
                                       capture_output=True, timeout=300)
    run("sample", "--sources", "github")
    run("run", "github", "--no-progress")
    timings = json.loads((tmp_path / "data" / "corpus" / "github" / "timings.json").read_text())
    assert [m["stage"] for m in timings["merges"]] == ["exact_dedup"]
    merge = timings["merges"][0]
    assert 10 * MB < merge["peak_rss_bytes"] < 4096 * MB  # an interpreter with pyarrow loaded, no more
    assert timings["worker_peak_rss_bytes"] > 10 * MB
    assert 0 < timings["task_cpu_seconds"] < 60  # the tasks' own work, in CPU seconds
    by_pass = timings["task_cpu_seconds_by_pass"]  # github: a pass to exact dedup's collector, then one on
    assert len(by_pass) == 2 and all(seconds > 0 for seconds in by_pass)
    assert abs(sum(by_pass) - timings["task_cpu_seconds"]) < 0.01
    # The collector's partial (a hash and an id per distinct document, held in memory until the
    # task ends): recorded for `pipeline plan`'s projection of a worker's peak.
    stats = json.loads((tmp_path / "data" / "corpus" / "github" / "stats.json").read_text())
    collected = next(s["in"] for s in stats["stages"] if s["name"] == "exact_dedup")
    assert merge["state_in_memory"] is True
    assert 8 * collected <= merge["largest_partial_bytes"] < 1000 * collected


def test_stage_seconds_in_timings_are_cpu_not_the_wall_clock(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """A stage that waits (here 50 ms a document, asleep) costs wall time and no CPU: timings.json's
    stage_cpu_seconds must not count the wait, or a stage waiting on a busy machine looks slow."""
    from tests.pipeline.engine.fixtures import run, write_inputs

    write_inputs(tmp_path / "in", files=1, per_file=20)
    monkeypatch.setenv("HERD_TEST_DELAY", "0.05")  # read by the Annotate stage in the forked worker
    run(tmp_path / "in", tmp_path / "out", workers=1)
    timings = json.loads((tmp_path / "out" / "numbers" / "timings.json").read_text())
    assert timings["wall_seconds"] >= 20 * 0.05
    assert timings["stage_cpu_seconds"]["annotate"] < 0.25


def test_a_phase_counts_the_cpu_of_the_processes_it_forked() -> None:
    """A merge runs its buckets in forked processes: their CPU is the merge's too."""
    with measure_phase() as phase:
        child = multiprocessing.get_context("fork").Process(target=_spin, args=(0.3,))
        child.start()
        child.join()
    assert child.exitcode == 0
    assert phase.cpu_seconds >= 0.25  # the parent only waited


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
