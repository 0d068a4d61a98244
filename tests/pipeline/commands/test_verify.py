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


def verify(corpus: Path) -> subprocess.CompletedProcess[str]:
    return pipeline("verify", "--corpus", "corpus", cwd=corpus.parent)


def errors(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The problem lines of a verify that found some: exit 2, one line each, no traceback."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return [line.removeprefix("pipeline: error: ") for line in done.stderr.splitlines()]


CHECKED = "c4: 1 shard(s) and 1 dropped shard(s) checked against manifest.json"


def test_an_intact_corpus_and_its_dropped_shards_are_ok(corpus: Path) -> None:
    manifest = json.loads((corpus / "c4" / "manifest.json").read_text())
    assert manifest["dropped_shards"] == ["dropped/shard-00000.arrow"]
    assert [entry["documents"] for entry in manifest["shards"]] == [arrow_rows(corpus / "c4" / "shard-00000.arrow")]
    done = verify(corpus)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", f"{CHECKED}, ok\n")


def test_document_counts_edited_in_the_manifest_are_found(corpus: Path) -> None:
    folder = corpus / "c4"
    rows = arrow_rows(folder / "shard-00000.arrow")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["documents"] == rows
    edit_manifest(folder, shards=[dict(manifest["shards"][0], documents=rows + 1)])
    totals = "corpus/c4/manifest.json: documents {}, its shard entries add up to {}"
    assert errors(verify(corpus)) == [f"corpus/c4/shard-00000.arrow: {rows} documents, manifest.json says {rows + 1}",
                                      totals.format(rows, rows + 1)]
    edit_manifest(folder, shards=manifest["shards"], documents=rows + 1)
    assert errors(verify(corpus)) == [totals.format(rows + 1, rows)]


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def test_an_entry_without_its_sha256_is_a_damaged_manifest_not_a_shard_taken_on_trust(corpus: Path) -> None:
    folder = corpus / "c4"
    (entry,) = json.loads((folder / "manifest.json").read_text())["shards"]
    flip_a_byte(folder / "shard-00000.arrow")
    damaged = "corpus/c4/manifest.json: damaged corpus manifest (shard 'shard-00000.arrow' has no"
    herd = "herd records documents, bytes and sha256 of every shard)"
    edit_manifest(folder, shards=[{k: v for k, v in entry.items() if k not in ("sha256", "bytes")}])
    assert one_error(verify(corpus)) == f"{damaged} bytes or sha256; {herd}"
    edit_manifest(folder, shards=[{k: v for k, v in entry.items() if k != "sha256"}])
    assert one_error(verify(corpus)) == f"{damaged} sha256; {herd}"
    # The readers that hand the corpus on refuse it the same way.
    diffed = pipeline("diff", "c4", "--a", "corpus", "--b", "corpus", cwd=corpus.parent)
    assert one_error(diffed) == f"{damaged} sha256; {herd}"


def test_a_shard_listed_twice_is_a_damaged_manifest(corpus: Path) -> None:
    folder = corpus / "c4"
    manifest = json.loads((folder / "manifest.json").read_text())
    edit_manifest(folder, shards=manifest["shards"] * 2, documents=2 * manifest["documents"])
    expected = "corpus/c4/manifest.json: damaged corpus manifest (shard file 'shard-00000.arrow' is listed twice)"
    assert one_error(verify(corpus)) == expected
    diffed = pipeline("diff", "c4", "--a", "corpus", "--b", "corpus", cwd=corpus.parent)
    assert one_error(diffed) == expected


@pytest.mark.parametrize("damage, problem", [
    (lambda path: path.write_bytes(path.read_bytes()[:100]), "cut short (no Arrow end-of-stream marker at its end)"),
    # Cut at a batch's end: every batch before reads as Arrow, only the marker is gone.
    (lambda path: path.write_bytes(path.read_bytes()[:-8]), "cut short (no Arrow end-of-stream marker at its end)"),
    (lambda path: path.unlink(), "listed in manifest.json but missing"),
])
def test_a_dropped_shard_cut_short_or_deleted_is_found(corpus: Path, damage, problem: str) -> None:
    damage(corpus / "c4" / "dropped" / "shard-00000.arrow")
    assert errors(verify(corpus)) == [f"corpus/c4/dropped/shard-00000.arrow: {problem}"]
    assert verify(corpus).stdout == f"{CHECKED}, 1 bad\n"


def test_a_dropped_shard_that_is_not_arrow_is_found(corpus: Path) -> None:
    path = corpus / "c4" / "dropped" / "shard-00000.arrow"
    path.write_bytes(b"not an Arrow stream" + b"\xff\xff\xff\xff\x00\x00\x00\x00")
    (line,) = errors(verify(corpus))
    assert line.startswith("corpus/c4/dropped/shard-00000.arrow: unreadable corpus shard (")


def test_unlisted_shards_kept_or_dropped_are_reported(corpus: Path) -> None:
    folder = corpus / "c4"
    shutil.copy(folder / "dropped" / "shard-00000.arrow", folder / "dropped" / "shard-00001.arrow")
    shutil.copy(folder / "shard-00000.arrow", folder / "shard-mine.arrow")
    assert errors(verify(corpus)) == ["corpus/c4/shard-mine.arrow: not listed in manifest.json",
                                      "corpus/c4/dropped/shard-00001.arrow: not listed in manifest.json"]
    # A run without --keep-dropped lists none: a dropped shard beside it is unlisted all the same.
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["dropped_shards"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "shard-mine.arrow").unlink()
    done = verify(corpus)
    assert errors(done) == ["corpus/c4/dropped/shard-00000.arrow: not listed in manifest.json",
                            "corpus/c4/dropped/shard-00001.arrow: not listed in manifest.json"]
    assert done.stdout == "c4: 1 shard(s) checked against manifest.json, 2 bad\n"


@pytest.mark.parametrize("damage, problem", [
    (lambda folder: (folder / "shard-00000.arrow").write_bytes((folder / "shard-00000.arrow").read_bytes()[:1000]),
     "corpus/c4/shard-00000.arrow: 1000 bytes, manifest.json says {bytes} (truncated or replaced)"),
    (lambda folder: flip_a_byte(folder / "shard-00000.arrow"),
     "corpus/c4/shard-00000.arrow: sha256 does not match manifest.json (corrupt shard)"),
    (lambda folder: (folder / "shard-00000.arrow").unlink(),
     "corpus/c4/shard-00000.arrow: listed in manifest.json but missing"),
    (lambda folder: shutil.copy(folder / "shard-00000.arrow", folder / "shard-00002.arrow"),
     "corpus/c4/shard-00002.arrow: not listed in manifest.json"),
    (lambda folder: (folder / "manifest.json").write_text((folder / "manifest.json").read_text()[:300]),
     "corpus/c4/manifest.json: damaged corpus manifest (JSONDecodeError)"),
    (lambda folder: (folder / "manifest.json").write_text("[]"),
     "corpus/c4/manifest.json: damaged corpus manifest (no list of shards)"),
    (lambda folder: edit_manifest(folder, shards=[dict(json.loads((folder / "manifest.json").read_text())["shards"][0],
                                                       bytes="x")]),
     "corpus/c4/manifest.json: damaged corpus manifest (shard 'shard-00000.arrow': bytes 'x' is not a count)"),
    (lambda folder: (folder / "manifest.json").unlink(),
     "corpus/c4/manifest.json: missing (not a finished corpus; run `pipeline run c4`)"),
])
def test_each_damage_found_before_is_still_one_line(corpus: Path, damage, problem: str) -> None:
    size = (corpus / "c4" / "shard-00000.arrow").stat().st_size
    damage(corpus / "c4")
    done = pipeline("verify", "c4", "--corpus", "corpus", cwd=corpus.parent)
    assert errors(done) == [problem.format(bytes=size)]


@pytest.mark.parametrize("source", [["c4"], []])
def test_a_remote_corpus_is_refused_in_one_line(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str], source: list[str]) -> None:
    """An s3:// --corpus was read as the relative folder s3:/corpus/x, and a published corpus
    there reported missing: verify reads local corpora only, and says so."""
    import boto3

    from pipeline.cli import main

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="corpus")
    s3.put_object(Bucket="corpus", Key="x/c4/manifest.json", Body=b'{"shards": []}')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", *source, "--corpus", "s3://corpus/x"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "pipeline: error: pipeline verify reads local corpora only; s3://corpus/x is remote"]
    assert list(tmp_path.iterdir()) == []
