"""`pipeline plan`: the seeded sample, the two-point fit, and a projection checked against the
run it projects (output bytes: deterministic, unlike CPU time, so they can be compared here;
CPU and memory are compared with measured runs in bench/scale.py)."""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pipeline.commands.plan import Line, SampleRun, WorkerMemory, cpu_line, draw_sample, fit_subsets, parse_bandwidth
from tests.conftest import script, subprocess_env

KEYS = {"input_bytes", "core_hours", "wall_hours", "peak_worker_bytes", "peak_merge_bytes", "output_bytes",
        "temp_bytes"}


def test_the_sample_is_whole_files_in_a_seeded_order_within_the_limit() -> None:
    files = [(f"f{i}", 100 + i) for i in range(20)]
    first = draw_sample(files, 450, seed=3)
    assert first == draw_sample(list(reversed(files)), 450, seed=3)  # the listing order does not matter
    assert sum(size for _, size in first) <= 450 and len(first) == 4
    assert first != draw_sample(files, 450, seed=4)
    assert draw_sample(files, 10, seed=3)[:1] == first[:1]  # one file at least, even over the limit


def test_each_kind_of_input_comes_in_its_share_of_the_bytes() -> None:
    # A quarter of the bytes in 7z archives, three quarters in plain XML: a sample of 1,000 bytes
    # holds at most 250 of archives and 750 of XML, whatever the seed draws first.
    files = [(f"site{i}.7z", 100) for i in range(10)] + [(f"site{i}.xml", 300) for i in range(10)]
    for seed in range(20):
        sample = draw_sample(files, 1000, seed)
        archives = sum(size for path, size in sample if path.endswith(".7z"))
        xml = sum(size for path, size in sample if path.endswith(".xml"))
        assert archives == 200 and xml == 600


def test_a_line_through_the_points_separates_the_fixed_cost() -> None:
    line = Line.through([(100, 12.0), (300, 16.0)])  # 10 fixed + 0.02 per byte
    assert (line.fixed, line.per_byte) == pytest.approx((10.0, 0.02))
    assert line.at(10_000) == pytest.approx(210.0)
    # Least squares through three noisy points: slope 0.02 +- noise, not the last pair's slope.
    fitted = Line.through([(100, 12.5), (200, 13.5), (300, 16.5)])
    assert fitted.per_byte == pytest.approx(0.02) and fitted.fixed == pytest.approx(10.1666, rel=1e-3)
    assert Line.through([(200, 8.0)]).at(1000) == pytest.approx(40.0)  # one point: proportional
    assert Line.through([(100, 9.0), (300, 8.0)]).at(600) == pytest.approx(16.0)  # noise (a falling cost)


def test_peaks_within_the_noise_of_each_other_are_one_peak() -> None:
    flat = Line.of_memory([(1000, 136e6), (2000, 139e6), (3000, 137e6)])  # an interpreter's baseline moving
    assert flat.at(10**12) == 139e6
    growing = Line.of_memory([(1000, 100e6), (2000, 150e6), (3000, 200e6)])  # 50 KB per byte: a real slope
    assert growing.at(4000) == pytest.approx(250e6)


def test_a_workers_peak_grows_ever_slower_beside_its_state_in_step_with_the_task() -> None:
    # 100 MB + 0.01 x sqrt(bytes), no collector state: read back at 16 times the sample.
    slowing = WorkerMemory.through([(x, 100e6 + 0.01e6 * x ** 0.5, 0.0) for x in (1e6, 2e6, 3e6)])
    assert slowing.at(48e6) == pytest.approx(100e6 + 0.01e6 * 48e6 ** 0.5)
    # A collector holding 1 byte per 10 input bytes: at a terabyte task, at least 100 GB.
    stateful = WorkerMemory.through([(x, 100e6 + x / 10, x / 10) for x in (1e6, 2e6, 3e6)])
    assert stateful.state == pytest.approx(0.1)
    assert stateful.at(1e12) == pytest.approx(100e6 + 1e11)
    # Noise (a falling peak): flat at the largest.
    assert WorkerMemory.through([(1e6, 120e6, 0.0), (2e6, 118e6, 0.0), (3e6, 119e6, 0.0)]).at(1e12) == 120e6
    assert WorkerMemory.through([(1e6, 120e6, 0.0)]).at(1e12) == 120e6  # one run: no growth seen


def _run(input_bytes: int, cpu: float, task_cpu: float) -> SampleRun:
    return SampleRun(input_bytes, cpu, 0, {}, 0.0, task_cpu, 0, 0, 0)


def test_cpu_grows_with_the_tasks_own_cpu_not_with_differences_of_whole_runs() -> None:
    # Whole runs of about a second, 0.55-0.65 of it fixed (the jitter of a second-long run); the
    # tasks' CPU is 0.2 s per MB. A line through the whole runs slopes 0.15 s per MB here (the
    # jitter is a quarter of the growth it sees); the tasks' own CPU gives 0.2.
    runs = [_run(1_000_000, 0.85, 0.2), _run(2_000_000, 0.95, 0.4), _run(3_000_000, 1.15, 0.6)]
    assert Line.through([(r.input_bytes, r.cpu_seconds) for r in runs]).per_byte == pytest.approx(0.15e-6)
    line = cpu_line(runs)
    assert line.per_byte == pytest.approx(0.2e-6)
    assert line.fixed == pytest.approx(0.55)  # the median of 0.65, 0.55, 0.55
    assert line.at(48_000_000) == pytest.approx(0.55 + 9.6)
    # Timings of an engine that did not measure its tasks: the line through the runs, as before.
    older = [_run(1_000_000, 0.8, 0.0), _run(2_000_000, 1.0, 0.0)]
    assert cpu_line(older).per_byte == pytest.approx(0.2e-6)


def test_the_fit_runs_a_third_two_thirds_and_all_of_the_sample() -> None:
    sample = [(f"f{i}", 10) for i in range(9)]
    assert [len(s) for s in fit_subsets(sample)] == [3, 6, 9]
    assert [len(s) for s in fit_subsets([("big", 100), ("small", 1)])] == [1, 2]  # a file past both cuts
    assert [len(s) for s in fit_subsets([("one", 5)])] == [1]


@pytest.mark.parametrize("text, bits", [("1Gbit", 1e9), ("100 Mbit/s", 1e8), ("500MB/s", 4e9), ("2e9", 2e9)])
def test_bandwidths(text: str, bits: float) -> None:
    assert parse_bandwidth(text) == bits


def test_a_bandwidth_that_is_not_one_is_refused() -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_bandwidth("fast")


@pytest.mark.slow
def test_the_projected_output_matches_the_whole_run(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for f in range(8):  # 8 files of 400 documents with ids of their own
        (raw / f"part-{f}.jsonl").write_text("".join(
            json.dumps({"id": f"{f}-{d}", "text": f"document {d} of file {f}: " + "words " * (40 + d % 30)}) + "\n"
            for d in range(400)))
    sizes = sum(p.stat().st_size for p in raw.iterdir())
    env = subprocess_env()
    planned = subprocess.run([script("pipeline"), "plan", "jsonl", "--input", str(raw), "--sample-mb", "0.2",
                              "--cores", "4", "--bandwidth", "8Mbit", "--json"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, check=False, timeout=300)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)["jsonl"]
    assert KEYS <= set(plan)
    assert plan["input_bytes"] == sizes and plan["input_files"] == 8
    assert plan["sample_bytes"] <= 200_000
    assert plan["download_hours"] == pytest.approx(sizes * 8 / 8e6 / 3600)
    assert plan["wall_hours"] < plan["core_hours"]  # 4 cores
    assert not list(tmp_path.glob("data*"))  # nothing written outside the temporary folder

    subprocess.run([script("pipeline"), "run", "jsonl", "--input", str(raw), "--corpus", str(tmp_path / "c"),
                    "--no-progress"], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=300)
    measured = json.loads((tmp_path / "c" / "jsonl" / "manifest.json").read_text())["bytes"]
    assert plan["output_bytes"] == pytest.approx(measured, rel=0.25)


@pytest.mark.parametrize(("flags", "message"), [
    (["--repeats", "0"], "--repeats must be at least 1, got 0"),
    # Each repeat is a whole sample run: this many ran for ever.
    (["--repeats", "99999999999999999999"], "--repeats must be at most 100, got 99999999999999999999"),
    # Its byte count was an OverflowError.
    (["--sample-mb", "1e308"], "--sample-mb must be at most 1000000000.0, got 1e+308"),
    (["--sample-mb", "nan"], "--sample-mb must be finite, got nan"),
    (["--sample-mb", "0"], "--sample-mb must be positive, got 0.0"),
    (["--cores", "0"], "--cores must be at least 1, got 0"),
    (["--tasks", "-3"], "--tasks must be at least 1, got -3"),
    (["--seed", "99999999999999999999"], "--seed must be at most 9223372036854775807, got 99999999999999999999"),
])
def test_a_numeric_flag_out_of_bounds_is_one_line_before_any_sample_runs(tmp_path: Path, flags: list[str],
                                                                          message: str) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.jsonl").write_text('{"text": "some words here"}\n')
    done = subprocess.run([script("pipeline"), "plan", "jsonl", "--input", str(tmp_path / "raw"), *flags],
                          cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"pipeline: error: {message}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


@pytest.mark.parametrize(("toml", "problem"), [
    ("[c4\n", ": not valid TOML (Expected ']' at the end of a table declaration (at line 1, column 4))"),
    ("[c4]\nmin_sentences = 'three'\n", " [c4]: setting 'min_sentences' must be int, got 'three'"),
    ("[c5]\n", ": unknown source table(s) ['c5']"),
])
def test_a_bad_config_is_one_line_before_any_sample_runs(tmp_path: Path, toml: str, problem: str) -> None:
    from sources.samples.c4 import write

    write(tmp_path / "raw" / "c4", seed=0)
    (tmp_path / "run.toml").write_text(toml)
    done = subprocess.run([script("pipeline"), "plan", "c4", "--input", str(tmp_path / "raw" / "c4"), "--config",
                           str(tmp_path / "run.toml")], env=subprocess_env(), capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode, done.stderr.splitlines()) == (2, [f"pipeline: error: {tmp_path / 'run.toml'}{problem}"])


def _children(pid: int) -> list[int]:
    """The processes `pid` started, by their parent id in /proc/PID/stat (the 4th field, after the
    name in parentheses)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # ended meanwhile
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def test_sigterm_ends_the_plan_and_its_sample_run_with_a_line_that_says_nothing_is_kept(tmp_path: Path) -> None:
    """A plan keeps nothing to resume from: "rerun to resume" was untrue. And the sample run it was
    waiting on went on writing into the temporary folder while it was removed: ENOTEMPTY, exit 2,
    the folder left behind."""
    raw, scratch = tmp_path / "raw", tmp_path / "tmp"
    raw.mkdir()
    scratch.mkdir()
    rng = random.Random(0)
    for n in range(6):
        (raw / f"{n}.jsonl").write_text("".join(
            json.dumps({"text": " ".join(rng.choice(["alpha", "beta", "gamma", "delta"]) for _ in range(80))}) + "\n"
            for _ in range(3000)))
    plan = subprocess.Popen([script("pipeline"), "plan", "jsonl", "--input", str(raw), "--sample-mb", "8",
                             "--repeats", "3"], cwd=tmp_path, env={**subprocess_env(), "TMPDIR": str(scratch)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert plan.stderr.readline().startswith("plan: jsonl: running ")
        deadline = time.monotonic() + 30
        while not (runs := _children(plan.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runs, "no sample run started"
        plan.send_signal(signal.SIGTERM)
        assert plan.wait(timeout=60) == 143
    finally:
        plan.kill()
    assert plan.stderr.read().splitlines()[-1] == (
        "pipeline: terminated (SIGTERM); rerun the same command to plan again (a plan keeps nothing: its sample runs "
        "were in a temporary folder, now removed)")
    assert list(scratch.iterdir()) == []
    for pid in runs:  # ended and waited for, not left running on its own
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
