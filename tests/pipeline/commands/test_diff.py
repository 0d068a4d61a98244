"""`pipeline diff`: two real `pipeline run`s of the c4 sample under two configs, judged by reading
both corpora's Arrow shards (and the dropped/ shards of --keep-dropped) with pyarrow alone."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from tests.conftest import script, subprocess_env

pytestmark = pytest.mark.slow  # four CLI runs, about 10 s together

# b keeps pages of one sentence (adds documents) and removes lines with a word over 9 letters
# (changes texts, and drops pages left with no line).
B_CONFIG = "[c4]\nmin_sentences = 1\nmax_word_length = 9\n"


def pipeline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([script("pipeline"), *args], cwd=cwd, check=False, capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/raw/c4 from `pipeline sample`; corpora a (defaults, --keep-dropped), b (B_CONFIG,
    --keep-dropped) and plain (defaults, no --keep-dropped)."""
    root = tmp_path_factory.mktemp("diff")
    (root / "b.toml").write_text(B_CONFIG)
    assert pipeline("sample", "--raw", "raw", "--sources", "c4", cwd=root).returncode == 0
    common = ("run", "c4", "--input", "raw/c4", "--workers", "1", "--no-progress")
    assert pipeline(*common, "--corpus", "a", "--keep-dropped", cwd=root).returncode == 0
    assert pipeline(*common, "--corpus", "b", "--keep-dropped", "--config", "b.toml", cwd=root).returncode == 0
    assert pipeline(*common, "--corpus", "plain", cwd=root).returncode == 0
    return root


def arrow_rows(paths: list[Path], *columns: str) -> dict[str, tuple]:
    """id -> the other columns, read with pyarrow's stream reader."""
    rows: dict[str, tuple] = {}
    for path in paths:
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_stream(source).read_all()
        values = [table.column(c).to_pylist() for c in columns]
        for i, doc_id in enumerate(table.column("id").to_pylist()):
            rows[doc_id] = tuple(v[i] for v in values)
    return rows


def texts(corpus: Path) -> dict[str, str]:
    return {k: v[0] for k, v in arrow_rows(sorted(corpus.glob("c4/shard-*.arrow")), "text").items()}


def fates(corpus: Path) -> dict[str, str]:
    kept = {doc_id: "kept" for doc_id in texts(corpus)}
    dropped = arrow_rows(sorted(corpus.glob("c4/dropped/shard-*.arrow")), "drop_stage", "drop_reason")
    return kept | {doc_id: f"dropped by {stage} ({reason})" for doc_id, (stage, reason) in dropped.items()}


def test_counts_stages_and_examples_match_an_independent_reading(builds: Path) -> None:
    result = pipeline("diff", "c4", "--a", "a", "--b", "b", "--json", "--examples", "3", cwd=builds)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    a, b = texts(builds / "a"), texts(builds / "b")
    added, removed = set(b) - set(a), set(a) - set(b)
    changed = {k for k in set(a) & set(b) if a[k] != b[k]}
    assert (report["added"], report["removed"], report["changed"]) == (len(added), len(removed), len(changed))
    assert report["unchanged"] == len(set(a) & set(b)) - len(changed)
    assert report["documents"] == {"a": len(a), "b": len(b)}
    assert min(len(added), len(removed), len(changed)) > 0  # the configs exercise every class

    stats = {side: json.loads((builds / side / "c4" / "stats.json").read_text())["stages"] for side in "ab"}
    expected: dict[str, dict[str, dict[str, int]]] = {}
    for side, stages in stats.items():
        for stage in stages:
            for reason, count in stage["dropped"].items():
                expected.setdefault(stage["name"], {}).setdefault(reason, {"a": 0, "b": 0})[side] = count
    assert report["stages"] == expected
    assert report["stages"]["c4_quality"]["fewer_than_3_sentences"]["b"] == 0  # min_sentences = 1

    fate = {"a": fates(builds / "a"), "b": fates(builds / "b")}
    for name, members, side_text in (("added", added, b), ("removed", removed, a)):
        assert len(report["examples"][name]) == 3
        for example in report["examples"][name]:
            assert example["id"] in members
            assert example["text"] == side_text[example["id"]][:80]
            assert (example["a"], example["b"]) == (fate["a"].get(example["id"], "not read"),
                                                    fate["b"].get(example["id"], "not read"))
    for example in report["examples"]["changed"]:
        doc_id = example["id"]
        assert doc_id in changed and (example["a"], example["b"]) == ("kept", "kept")
        at = example["differs_at"]
        assert a[doc_id][:at] == b[doc_id][:at] and a[doc_id][at:at + 1] != b[doc_id][at:at + 1]
        assert a[doc_id][example["excerpt_from"]:].startswith(example["a_text"])


def test_identical_builds_differ_in_nothing_and_a_run_without_keep_dropped_says_so(builds: Path) -> None:
    same = json.loads(pipeline("diff", "c4", "--a", "a", "--b", "plain/c4", "--json", cwd=builds).stdout)
    assert (same["added"], same["removed"], same["changed"], same["unchanged"]) == (0, 0, 0, len(texts(builds / "a")))
    assert all(n["a"] == n["b"] for reasons in same["stages"].values() for n in reasons.values())

    report = json.loads(pipeline("diff", "c4", "--a", "plain", "--b", "b", "--json", "--examples", "1",
                                 cwd=builds).stdout)
    (example,) = report["examples"]["added"]
    assert example["a"] == "not kept (the run had no --keep-dropped)"


def test_human_summary_table(builds: Path) -> None:
    result = pipeline("diff", "c4", "--a", "a", "--b", "b", "--examples", "0", cwd=builds)
    a, b = texts(builds / "a"), texts(builds / "b")
    changed = sum(a[k] != b[k] for k in set(a) & set(b))
    lines = result.stdout.splitlines()
    assert lines[0] == f"c4: a has {len(a)} documents (a/c4), b has {len(b)} (b/c4)"
    assert lines[1] == (f"  added {len(set(b) - set(a))}, removed {len(set(a) - set(b))}, changed {changed}, "
                        f"unchanged {len(set(a) & set(b)) - changed}")
    assert lines[2].split() == ["stage", "dropped", "as", "a", "b", "b", "-", "a"]
    dropped_b = json.loads((builds / "b" / "c4" / "stats.json").read_text())["stages"][1]["dropped"]
    assert "c4_quality  no_lines_left" in result.stdout
    row = next(line for line in lines if "no_lines_left" in line).split()
    assert row[-3:] == ["0", str(dropped_b["no_lines_left"]), f"+{dropped_b['no_lines_left']}"]


@pytest.mark.parametrize("args, message", [
    (("wikipedia", "--a", "a", "--b", "b"), "a: no finished wikipedia corpus here"),
    (("wikipedia", "--a", "a/c4", "--b", "b"), "a/c4: a corpus of 'c4', not of 'wikipedia'"),
    (("c4", "--a", "a", "--b", "raw"), "raw: no finished c4 corpus here"),
])
def test_a_folder_that_is_not_a_corpus_of_the_source_is_one_line(builds: Path, args: tuple[str, ...],
                                                                  message: str) -> None:
    result = pipeline("diff", *args, cwd=builds)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"pipeline: error: {message}")


def test_a_document_taken_out_by_pipeline_remove_says_so(builds: Path, tmp_path: Path) -> None:
    shutil.copytree(builds / "a", tmp_path / "taken")
    doc_id = sorted(texts(builds / "a"))[0]
    (tmp_path / "ids.txt").write_text(doc_id + "\n")
    assert pipeline("remove", "c4", "--corpus", "taken", "--ids", "ids.txt", cwd=tmp_path).returncode == 0
    report = json.loads(pipeline("diff", "c4", "--a", str(builds / "a"), "--b", "taken", "--json", cwd=tmp_path).stdout)
    assert (report["added"], report["removed"], report["changed"]) == (0, 1, 0)
    (example,) = report["examples"]["removed"]
    logged = json.loads((tmp_path / "taken" / "c4" / "removals.jsonl").read_text())
    assert (example["id"], example["a"]) == (doc_id, "kept")
    assert example["b"] == f"removed by `pipeline remove` at {logged['at']}"


def test_a_corpus_with_every_document_removed_is_compared_both_ways(builds: Path, tmp_path: Path) -> None:
    shutil.copytree(builds / "a", tmp_path / "emptied")
    ids = sorted(texts(builds / "a"))
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    assert pipeline("remove", "c4", "--corpus", "emptied", "--ids", "ids.txt", cwd=tmp_path).returncode == 0
    assert texts(tmp_path / "emptied") == {}
    full = str(builds / "a")
    for a, b, added, removed in [(full, "emptied", 0, len(ids)), ("emptied", full, len(ids), 0)]:
        done = pipeline("diff", "c4", "--a", a, "--b", b, "--json", "--examples", "1", cwd=tmp_path)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        report = json.loads(done.stdout)
        assert (report["added"], report["removed"], report["changed"], report["unchanged"]) == (added, removed, 0, 0)
        assert report["documents"] == {"a": removed, "b": added}
    logged = json.loads((tmp_path / "emptied" / "c4" / "removals.jsonl").read_text())
    (example,) = json.loads(pipeline("diff", "c4", "--a", full, "--b", "emptied", "--json", "--examples", "1",
                                     cwd=tmp_path).stdout)["examples"]["removed"]
    assert example["id"] in ids
    assert (example["a"], example["b"]) == ("kept", f"removed by `pipeline remove` at {logged['at']}")
