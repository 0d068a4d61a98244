"""Shared by the hostile-input tests: a run whose books must balance, and the real CLI."""

from __future__ import annotations

import gzip
import json
import resource
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from pipeline.commands.run import run_source
from pipeline.engine.shards import read_corpus
from pipeline.engine.source import Source
from sources.commoncrawl import CommonCrawl
from tests.conftest import script, subprocess_env


class CommonCrawlReader(CommonCrawl):
    """CommonCrawl's reader with no stages: its filters need trained models, and what is under
    test here is what the reader makes of hostile files, counted by the engine."""

    def stages(self) -> list:
        return []


def assert_balanced(stats: dict) -> None:
    """Documents in == kept + dropped at every stage, and each stage takes what the last kept."""
    previous_out = None
    for stage in stats["stages"]:
        assert stage["in"] == stage["out"] + sum(stage["dropped"].values()), stage
        if previous_out is not None:
            assert stage["in"] == previous_out, stats["stages"]
        previous_out = stage["out"]
    assert stats["documents_kept"] == stats["stages"][-1]["out"]


def run(source: Source, raw: Path, out: Path, workers: int = 1) -> tuple[dict, list]:
    """Run `source` over `raw`; the stats from stats.json (checked to balance) and the kept documents."""
    run_source(source, str(raw), str(out), workers=workers, show_progress=False)
    stats = json.loads((out / source.name / "stats.json").read_text())
    assert_balanced(stats)
    return stats, list(read_corpus(out / source.name))


def read_drops(stats: dict) -> dict[str, int]:
    return stats["stages"][0]["dropped"]


def failures(stats: dict) -> dict[str, str]:
    """Failed inputs: file name -> the problem's first word (its reason)."""
    return {Path(f["path"]).name: f["problem"] for f in stats["files"]["failed"]}


def cli(source: str, raw: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """`pipeline run SOURCE` as a user runs it; never a traceback, whatever the input."""
    done = subprocess.run(
        [script("pipeline"), "run", source, "--input", str(raw), "--corpus", str(out), "--workers", "1",
         "--no-progress", *extra],
        capture_output=True, text=True, env=subprocess_env(), timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def run_script(name: str, *args: str, cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess:
    """Console script `name` with `args` in `cwd` (extra `env` on top of the tests' own); it must not
    end in a traceback, whatever its exit status. A command given a FIFO runs under a short
    `timeout`: one that opened it would wait for a writer for ever."""
    done = subprocess.run([script(name), *args], cwd=cwd, env={**subprocess_env(), **(env or {})},
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def one_error(done: subprocess.CompletedProcess, prog: str) -> str:
    """Exit 2 and exactly one line on stderr, the error; returns it without the `prog: error: ` prefix."""
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), done.stderr
    return lines[0].removeprefix(f"{prog}: error: ")


def json_line(text: str, **fields: str) -> bytes:
    return json.dumps({"text": text, **fields}).encode()


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(line + b"\n" for line in lines)
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def file_size_limit(limit: int) -> Callable[[], None]:
    """A disk that fills up, without root (a subprocess's preexec_fn): the child's files may not
    grow past `limit` bytes. SIGXFSZ ignored makes the write fail with EFBIG instead of killing
    the process."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return apply
