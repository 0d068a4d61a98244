"""`pipeline verify` (and the other readers of manifest.json) on a real `pipeline run` of the c4
sample with --keep-dropped, damaged or edited the ways a disk or a hand does: every damage is one
line naming the file, exit 2, and nothing outside the corpus folder is read or written. The
shards are read back with pyarrow alone to know what the manifest should say."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from tests.conftest import script, subprocess_env

pytestmark = pytest.mark.slow  # a CLI run each, about a second


def pipeline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([script("pipeline"), *args], cwd=cwd, check=False, capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """corpus/c4 of `pipeline run c4 --keep-dropped` over the c4 sample."""
    root = tmp_path_factory.mktemp("verify")
    assert pipeline("sample", "--raw", "raw", "--sources", "c4", cwd=root).returncode == 0
    done = pipeline("run", "c4", "--input", "raw/c4", "--corpus", "corpus", "--workers", "1", "--no-progress",
                    "--keep-dropped", cwd=root)
    assert done.returncode == 0, done.stderr
    return root / "corpus"


@pytest.fixture
def corpus(built: Path, tmp_path: Path) -> Path:
    """A copy of the built corpus root, at tmp_path/corpus, to damage."""
    shutil.copytree(built, tmp_path / "corpus")
    return tmp_path / "corpus"


def edit_manifest(folder: Path, **changes: object) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def one_error(done: subprocess.CompletedProcess[str]) -> str:
    """The one line of a command that ended with exit 2, without its `pipeline: error: `."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("pipeline: error: ")
    return line.removeprefix("pipeline: error: ")


def arrow_rows(path: Path) -> int:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).read_all().num_rows


@pytest.mark.parametrize("dropped, problem", [
    (["../../victim.arrow"], "dropped shard '../../victim.arrow' is not dropped/<file name>"),
    (["dropped/../../../victim.arrow"], "dropped shard 'dropped/../../../victim.arrow' is not dropped/<file name>"),
    (["/tmp/victim.arrow"], "dropped shard '/tmp/victim.arrow' is not dropped/<file name>"),
    (["shard-00000.arrow"], "dropped shard 'shard-00000.arrow' is not dropped/<file name>"),
    (["dropped/"], "dropped shard 'dropped/' is not dropped/<file name>"),
    ([5], "dropped shard 5 is not dropped/<file name>"),
    (5, "dropped_shards 5 is not a list"),
    ("dropped/shard-00000.arrow", "dropped_shards 'dropped/shard-00000.arrow' is not a list"),
    (["dropped/shard-00000.arrow"] * 2, "dropped shard 'dropped/shard-00000.arrow' is listed twice"),
])
def test_a_dropped_shard_named_outside_its_folder_is_one_line_and_nothing_outside_is_read(
        corpus: Path, dropped: object, problem: str) -> None:
    victim = corpus.parent / "victim.arrow"
    shutil.copy(corpus / "c4" / "dropped" / "shard-00000.arrow", victim)
    before = victim.read_bytes()
    edit_manifest(corpus / "c4", dropped_shards=dropped)
    expected = f"corpus/c4/manifest.json: damaged corpus manifest ({problem})"
    assert one_error(pipeline("verify", "--corpus", "corpus", cwd=corpus.parent)) == expected
    diffed = pipeline("diff", "c4", "--a", "corpus", "--b", "corpus", cwd=corpus.parent)
    assert one_error(diffed) == expected
    assert victim.read_bytes() == before
