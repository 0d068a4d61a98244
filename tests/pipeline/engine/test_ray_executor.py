"""The Ray executor on a real Ray head on loopback: same shards as the local executor, a
Ray worker killed in the middle of a task is retried, a document that kills or stalls the
supervised process twice is dropped exactly as locally, and clear errors without a cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from pipeline.commands.run import run_source
from pipeline.dedup.exact import ExactDedup
from pipeline.engine.document import Document
from pipeline.engine.shards import read_corpus, shard_paths
from pipeline.engine.stage import Stage
from sources.jsonl import JsonlConfig
from tests.conftest import REPO, script, subprocess_env
from tests.hostile.fragile import FragileJsonl, assert_poison_dropped, write_poisoned_inputs
from tests.pipeline.engine.fixtures import Annotate, DropMultiplesOfSeven, Numbers, write_inputs

ray = pytest.importorskip("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """One Ray head with 2 CPUs for the whole module: start-up takes seconds on 2 cores."""
    # Ray's socket paths must stay under 107 characters, so a short folder in /tmp.
    temp_dir = Path(tempfile.mkdtemp(prefix="herd-ray-"))
    port = _free_port()
    cmd = [
        str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
        "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
        "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", str(temp_dir),
        "--object-store-memory", str(200 << 20),
        "--dashboard-agent-listen-port", str(_free_port()),
    ]
    log = open(temp_dir / "head.log", "w")
    head = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        # `ray start` writes the cluster address file once the head is up.
        while not (temp_dir / "ray_current_cluster").exists():
            assert head.poll() is None, (temp_dir / "head.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the Ray head did not start in 120 s"
            time.sleep(0.2)
        address = f"127.0.0.1:{port}"
        # One driver connection for the module, so its worker processes serve every run here
        # (the executor reuses a connection it finds); the CLI test connects on its own.
        ray.init(address=address, log_to_driver=False, include_dashboard=False, configure_logging=False)
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        # The head, GCS, raylet and workers share the head's process group.
        _signal_group(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        time.sleep(1)
        _signal_group(head.pid, signal.SIGKILL)  # anything that outlived the head
        head.wait()
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _same_output(a: Path, b: Path) -> None:
    shards_a, shards_b = shard_paths(a), shard_paths(b)
    assert [p.name for p in shards_a] == [p.name for p in shards_b] and len(shards_a) >= 2
    assert [p.read_bytes() for p in shards_a] == [p.read_bytes() for p in shards_b]
    for name in ("manifest.json", "stats.json"):
        assert (a / name).read_text() == (b / name).read_text(), name


@pytest.mark.slow
def test_ray_writes_the_same_shards_as_the_local_executor(tmp_path: Path, ray_address: str) -> None:
    write_inputs(tmp_path / "in")
    local = run_source(Numbers(), str(tmp_path / "in"), str(tmp_path / "local"), workers=2, tasks=4, show_progress=False)
    on_ray = run_source(
        Numbers(), str(tmp_path / "in"), str(tmp_path / "ray"), tasks=4, executor="ray", address=ray_address,
        show_progress=False,
    )
    _same_output(tmp_path / "local" / "numbers", tmp_path / "ray" / "numbers")
    # The global dedup pass ran across Ray tasks: 300 read, 43 multiples of 7, 25 duplicates.
    assert on_ray.documents_kept == local.documents_kept == 232
    assert on_ray.shards == 4
    stats = json.loads((tmp_path / "ray" / "numbers" / "stats.json").read_text())
    assert {s["name"]: s["dropped"] for s in stats["stages"]}["exact_dedup"] == {"duplicate": 25}


@dataclass
class CrashConfig(JsonlConfig):
    crash_marker: str = ""  # a file; while it is missing, the first worker to reach the document dies


class DieOnce(Stage):
    """Kills the Ray worker running its task at document `number` the first time (keyed by a
    marker file): the task is half done, its part files half written. The stage runs in the
    process the Ray worker forked and supervises, so it kills its parent, as the out-of-memory
    killer picking the Ray worker would; the child itself must then die with it."""

    name = "die_once"

    def __init__(self, marker: str, number: int) -> None:
        self.marker, self.number = marker, number

    def process(self, doc: Document) -> Document:
        if self.marker and doc.meta["number"] == self.number and not os.path.exists(self.marker):
            Path(self.marker).write_text(f"{os.getppid()} {os.getpid()}")
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(3600)  # ended by the parent's death (PR_SET_PDEATHSIG), or left behind
        return doc


class CrashingNumbers(Numbers):
    name = "numbers"
    config_class = CrashConfig

    def stages(self) -> list[Stage]:
        return [Annotate(), DieOnce(self.config.crash_marker, 1000), DropMultiplesOfSeven(), ExactDedup()]


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_the_output_is_identical(tmp_path: Path, ray_address: str) -> None:
    # 2 tasks of 3 files x 300 lines: document 1000 (file 3, task 1) is the task's 401st, in its
    # second chunk, so the task has processed and written documents when its worker dies.
    write_inputs(tmp_path / "in", files=6, per_file=300)
    run_source(CrashingNumbers(), str(tmp_path / "in"), str(tmp_path / "local"), workers=2, tasks=2, show_progress=False)
    marker = tmp_path / "died.pid"
    source = CrashingNumbers(CrashConfig(crash_marker=str(marker)))
    report = run_source(
        source, str(tmp_path / "in"), str(tmp_path / "ray"), tasks=2, executor="ray", address=ray_address,
        show_progress=False,
    )
    assert marker.exists(), "no worker died"
    ray_worker, child = map(int, marker.read_text().split())
    assert os.getpid() not in (ray_worker, child)  # a Ray worker process and its child, not the driver
    assert not _running(child), "the Ray worker's child outlived it"
    _same_output(tmp_path / "local" / "numbers", tmp_path / "ray" / "numbers")
    assert report.documents_kept == len(list(read_corpus(tmp_path / "ray" / "numbers")))


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_documents_that_stall_or_kill_their_worker_are_dropped_as_locally(
        tmp_path: Path, ray_address: str, capsys: pytest.CaptureFixture[str]) -> None:
    # The Ray twin of tests/hostile/test_supervision.py's test: one task per file, a.jsonl's
    # record 300 sleeps for ever in a stage, its record 100 makes the stage raise, b.jsonl's
    # record 450 SIGKILLs its process.
    write_poisoned_inputs(tmp_path / "raw")
    raised_at = next(n for n, line in enumerate((REPO / "tests/hostile/fragile.py").read_text().splitlines(), 1)
                     if line.strip() == 'raise ParserError("unexpected markup")')
    for name, executor in (("local", "local"), ("ray", "ray")):
        run_source(FragileJsonl(), str(tmp_path / "raw"), str(tmp_path / name), workers=2, tasks=2,
                   executor=executor, address=ray_address, show_progress=False, document_budget_s=1.5)
        warnings = capsys.readouterr().err.splitlines()
        # A stalling or killing document fails its worker twice: in a chunk, then alone; the raising
        # one is dropped in the worker, said once. On Ray the lines are printed by the driver.
        assert sum("made no progress for 1.5 s" in line for line in warnings) == 2, (name, warnings)
        assert sum("was killed by SIGKILL" in line for line in warnings) == 2, (name, warnings)
        assert [line for line in warnings if "raised ParserError: unexpected markup" in line] == [
            f"warning: task 0 of pass 0, {tmp_path / 'raw' / 'a.jsonl'} record 100: raised ParserError: unexpected "
            f"markup in stage fragile (at hostile/fragile.py:{raised_at}); the document is dropped as stage_error"
        ], (name, warnings)
    assert_poison_dropped(tmp_path / "ray" / "fragile")
    _same_output(tmp_path / "local" / "fragile", tmp_path / "ray" / "fragile")
    lost = {name: json.loads((tmp_path / name / "fragile" / "timings.json").read_text())["workers_lost"]
            for name in ("local", "ray")}
    expected = [{"reason": "timeout", "how": "made no progress for 1.5 s"}] * 2 + [
        {"reason": "worker_crash", "how": "was killed by SIGKILL"}] * 2
    by_reason = lambda failure: (failure["reason"], failure["how"])  # noqa: E731
    assert sorted(lost["ray"], key=by_reason) == sorted(lost["local"], key=by_reason) == sorted(expected, key=by_reason)


@pytest.mark.slow
def test_cli_runs_a_source_on_ray(tmp_path: Path, ray_address: str) -> None:
    write_inputs(tmp_path / "in", files=4, per_file=40)
    base = [script("pipeline"), "run", "jsonl", "--input", str(tmp_path / "in"), "--tasks", "2", "--no-progress"]
    local = subprocess.run(base + ["--corpus", str(tmp_path / "local")], cwd=tmp_path, env=subprocess_env(),
                           capture_output=True, text=True)
    assert local.returncode == 0, local.stderr
    on_ray = subprocess.run(
        base + ["--corpus", str(tmp_path / "ray"), "--executor", "ray", "--address", ray_address],
        cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300,
    )
    assert on_ray.returncode == 0, on_ray.stderr
    assert "jsonl: kept 160 of 160 documents in 2 shard(s)" in on_ray.stdout
    _same_output(tmp_path / "local" / "jsonl", tmp_path / "ray" / "jsonl")


@pytest.mark.slow
def test_a_cluster_started_for_the_run_leaves_nothing_in_home_or_the_temporary_folder(tmp_path: Path) -> None:
    """Without --address the run starts a Ray cluster of its own: Ray would write a token into
    ~/.ray (a read-only home ended the run) and leave a session folder in /tmp/ray every run."""
    write_inputs(tmp_path / "in", files=2, per_file=20)
    home = tmp_path / "home"
    home.mkdir()
    temp = Path(tempfile.mkdtemp(prefix="t-"))  # short: Ray's socket paths in it must stay under 108 bytes
    env = {k: v for k, v in subprocess_env().items() if not k.startswith("RAY_")} | {"HOME": str(home),
                                                                                   "TMPDIR": str(temp)}
    base = [script("pipeline"), "run", "jsonl", "--input", str(tmp_path / "in"), "--tasks", "2", "--no-progress"]
    on_ray = subprocess.run(base + ["--corpus", str(tmp_path / "ray"), "--executor", "ray"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert on_ray.returncode == 0, on_ray.stderr
    assert "jsonl: kept 40 of 40 documents" in on_ray.stdout
    # Nothing of the token chosen for Ray: it said "Token authentication is enabled ..." on every start.
    assert "Token authentication" not in on_ray.stderr, on_ray.stderr
    assert list(home.iterdir()) == [] and list(temp.iterdir()) == []
    # A token the user configured is Ray's to read: one that cannot be read is one line, exit 2.
    refused = subprocess.run(base + ["--corpus", str(tmp_path / "refused"), "--executor", "ray"], cwd=tmp_path,
                             env=env | {"RAY_AUTH_TOKEN_PATH": str(tmp_path / "no-token")}, capture_output=True,
                             text=True, timeout=300)
    assert refused.returncode == 2
    errors = [line for line in refused.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith(
        "pipeline: error: a local Ray cluster: AuthenticationError: RAY_AUTH_TOKEN_PATH is set but file cannot be "
        f"opened or is empty: {tmp_path / 'no-token'}"), refused.stderr
    assert list(temp.iterdir()) == []
    temp.rmdir()


@pytest.mark.slow
def test_sigterm_during_a_ray_run_is_the_runs_one_line_and_exit_143(tmp_path: Path, ray_address: str) -> None:
    """Ray's core puts its own handler of fatal signals over the run's: a SIGTERM printed Ray's
    crash dump ("*** SIGTERM received at time=...") and exit 1."""
    write_inputs(tmp_path / "in", files=4, per_file=20_000)
    run = subprocess.Popen([script("pipeline"), "run", "jsonl", "--input", str(tmp_path / "in"), "--corpus",
                            str(tmp_path / "out"), "--tasks", "4", "--no-progress", "--executor", "ray", "--address",
                            ray_address], cwd=tmp_path, env=subprocess_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120  # the signal comes while the driver waits on running tasks
    while not _tasks_running() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert run.poll() is None, "the run ended before the signal: give it more input"
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == "pipeline: terminated (SIGTERM); rerun the same command to resume"
    assert "SIGTERM received" not in stderr


def _tasks_running() -> bool:
    """Whether a Ray worker runs one of herd's tasks (its process title names the function)."""
    return subprocess.run(["pgrep", "-f", "ray::_run_one"], capture_output=True).returncode == 0


@pytest.mark.slow
def test_a_local_cluster_that_does_not_start_is_one_line_and_leaves_no_session_folder(tmp_path: Path) -> None:
    """A file-size limit (as a full /tmp would) keeps Ray's node from starting: ray.init raised a
    bare Exception after about 30 s, a traceback that left the session folder behind."""
    import resource

    write_inputs(tmp_path / "in", files=1, per_file=5)
    temp = Path(tempfile.mkdtemp(prefix="t-"))  # short: Ray's socket paths in it must stay under 108 bytes
    env = {k: v for k, v in subprocess_env().items() if not k.startswith("RAY_")} | {"TMPDIR": str(temp)}
    result = subprocess.run(
        [script("pipeline"), "run", "jsonl", "--input", str(tmp_path / "in"), "--corpus", str(tmp_path / "out"),
         "--executor", "ray"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (10_000 * 1024, 10_000 * 1024)))
    assert result.returncode == 2, result.stderr
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("pipeline: error: a local Ray cluster did not start: "), errors
    assert list(temp.iterdir()) == []
    temp.rmdir()


@pytest.mark.slow
def test_no_cluster_at_the_address_is_one_line_and_exit_2(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in", files=1, per_file=5)
    port = _free_port()  # nothing listens there
    result = subprocess.run(
        [script("pipeline"), "run", "jsonl", "--input", str(tmp_path / "in"), "--corpus", str(tmp_path / "out"),
         "--executor", "ray", "--address", f"127.0.0.1:{port}"],
        cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"pipeline: error: no Ray cluster at 127.0.0.1:{port}: Connection refused"
    ]


def test_ray_not_installed_is_one_line_and_exit_2(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in", files=1, per_file=5)
    code = (
        "import sys; sys.modules['ray'] = None; from pipeline.cli import main; "
        f"main(['run', 'jsonl', '--input', {str(tmp_path / 'in')!r}, '--corpus', {str(tmp_path / 'out')!r}, "
        "'--executor', 'ray'])"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=subprocess_env(), capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "pipeline: error: the Ray executor is not available (ray is not installed)"
    ]
