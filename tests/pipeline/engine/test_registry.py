"""Sources are plugins: herd's own come from its entry points, and a package of a user's own adds
a source without touching herd, by declaring an entry point in the group `herd.sources`. Here a
tiny source in a test package, installed as pip would (its dist-info on the path), runs through
the real `pipeline run`, with its own stage, and `pipeline sample` writes its sample."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from tests.conftest import script, subprocess_env
from tests.plugins import install_plugin

pytestmark = pytest.mark.slow  # each test runs the CLI in subprocesses

TINY_SOURCE = '''
"""A user's source: one document per line of *.txt, upper-cased; lines starting "#" dropped."""
from pathlib import Path

from pipeline.engine.document import Document, Skipped
from pipeline.engine.source import Source
from pipeline.engine.stage import Filter


class Upper(Filter):
    name = "upper"

    def process(self, doc):
        doc.text = doc.text.upper()
        return doc


class Tiny(Source):
    name = "tiny"
    patterns = ("**/*.txt",)

    def read(self, path):
        for number, line in enumerate(Path(path).read_text().splitlines()):
            if line.startswith("#"):
                yield Skipped("comment")
            else:
                yield Document(f"{Path(path).stem}:{number}", line, self.name, {})

    def stages(self):
        return [Upper()]


def write(folder, seed):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sample.txt").write_text(f"seed {seed}\\n# a comment\\nlast line\\n")


class NotASource:
    pass
'''


def _plugin(tmp_path: Path) -> dict[str, str]:
    package = tmp_path / "site" / "tinysource"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(TINY_SOURCE))
    install_plugin(tmp_path / "site", "tinysource", {
        "herd.sources": {"tiny": "tinysource:Tiny", "broken": "tinysource:NotASource",
                         "missing": "tinysource_gone:Source"},
        "herd.samples": {"tiny": "tinysource"}})
    env = subprocess_env()
    env["PYTHONPATH"] = f"{env['PYTHONPATH']}:{tmp_path / 'site'}"
    return env


def _pipeline(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([script("pipeline"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_a_source_from_another_package_runs_through_pipeline_run(tmp_path: Path) -> None:
    env = _plugin(tmp_path)
    done = _pipeline(env, tmp_path, "sample", "--sources", "tiny", "--raw", "raw", "--seed", "7")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "raw/tiny/sample.txt").read_text() == "seed 7\n# a comment\nlast line\n"
    done = _pipeline(env, tmp_path, "run", "tiny", "--input", "raw/tiny", "--corpus", "corpus", "--workers", "1",
                     "--no-progress")
    assert done.returncode == 0, done.stderr
    # Read back with pyarrow, not with the engine's reader.
    shards = sorted((tmp_path / "corpus/tiny").glob("*.arrow"))
    rows = [row for shard in shards for row in pa.ipc.open_stream(shard.read_bytes()).read_all().to_pylist()]
    assert [(r["id"], r["text"]) for r in rows] == [("sample:0", "SEED 7"), ("sample:2", "LAST LINE")]
    stats = json.loads((tmp_path / "corpus/tiny/stats.json").read_text())
    assert (stats["documents_read"], stats["documents_kept"]) == (3, 2)
    assert {s["name"]: s["dropped"] for s in stats["stages"]}["read"] == {"comment": 1}


def test_unknown_or_broken_sources_are_one_line(tmp_path: Path) -> None:
    env = _plugin(tmp_path)
    (tmp_path / "in").mkdir()
    for name, message in [
        ("nosuch", "unknown source 'nosuch' (known: arxiv, books, broken, c4, commoncrawl, github, jsonl, missing, "
                   "stackexchange, tiny, wikipedia)"),
        ("broken", "source 'broken' (tinysource:NotASource) is not a pipeline.engine.source.Source subclass"),
        ("missing", "source 'missing' (tinysource_gone:Source) cannot be loaded: ModuleNotFoundError: "
                    "No module named 'tinysource_gone'"),
    ]:
        done = _pipeline(env, tmp_path, "run", name, "--input", "in", "--corpus", "out")
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [f"pipeline: error: {message}"]
    assert not (tmp_path / "out").exists()
