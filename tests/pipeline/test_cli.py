"""The `pipeline` command: help, running the passthrough source, and one-line errors (exit 2)."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import script, subprocess_env


def _pipeline(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([script("pipeline"), *args], cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = _pipeline("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("run", "stats", "sample", "download", "models", "mix"):
        assert command in result.stdout
    run_help = _pipeline("run", "--help", cwd=tmp_path)
    assert "--workers" in run_help.stdout and "--keep-dropped" in run_help.stdout


@pytest.mark.slow
def test_sample_and_run_jsonl_then_stats(tmp_path: Path) -> None:
    assert _pipeline("sample", "--sources", "jsonl", cwd=tmp_path).returncode == 0
    result = _pipeline("run", "jsonl", "--workers", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stats = json.loads((tmp_path / "data/corpus/jsonl/stats.json").read_text())
    read, min_chars = stats["stages"]
    assert read == {"name": "read", "in": 44, "out": 42, "dropped": {"malformed_json": 2}}
    assert min_chars == {"name": "min_chars", "in": 42, "out": 40, "dropped": {"too_short": 2}}
    shown = _pipeline("stats", cwd=tmp_path)
    assert "jsonl: kept 40 of 44 documents" in shown.stdout and "malformed_json: 2" in shown.stdout


def _assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_unknown_source_is_one_line(tmp_path: Path) -> None:
    _assert_one_line_error(_pipeline("run", "nosuchsource", cwd=tmp_path), "unknown source 'nosuchsource'")


@pytest.mark.slow
def test_missing_input_is_one_line(tmp_path: Path) -> None:
    _assert_one_line_error(_pipeline("run", "jsonl", "--input", "absent/dir", cwd=tmp_path), "absent/dir", "does not exist")


@pytest.mark.slow
def test_corrupt_only_input_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "raw" / "broken.jsonl.gz"
    bad.parent.mkdir()
    bad.write_bytes(b"this is not gzip at all")
    result = _pipeline("run", "jsonl", "--input", str(bad.parent), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(bad) in result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_truncated_input_among_good_ones_is_counted_and_the_run_goes_on(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    good = "\n".join(json.dumps({"id": f"g{i}", "text": f"good {i}"}) for i in range(10)) + "\n"
    (raw / "a.jsonl").write_text(good)
    data = gzip.compress(good.replace("g", "t").encode())
    (raw / "b.jsonl.gz").write_bytes(data[: len(data) // 2])
    result = _pipeline("run", "jsonl", "--input", str(raw), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stats = json.loads((tmp_path / "data/corpus/jsonl/stats.json").read_text())
    assert [f["path"] for f in stats["files"]["failed"]] == [str(raw / "b.jsonl.gz")]
    assert stats["documents_kept"] >= 10


@pytest.mark.slow
def test_bad_config_key_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "c.toml").write_text("[jsonl]\nmin_charz = 3\n")
    result = _pipeline("run", "jsonl", "--input", "in", "--config", "c.toml", cwd=tmp_path)
    _assert_one_line_error(result, "c.toml", "min_charz")


def test_other_commands_exist_with_help(tmp_path: Path) -> None:
    for name in ("tokenizer", "train"):
        result = subprocess.run([script(name), "--help"], capture_output=True, text=True, env=subprocess_env())
        assert result.returncode == 0 and "usage" in result.stdout


@pytest.mark.slow
def test_run_all_runs_every_source_and_reports_the_ones_that_failed(tmp_path: Path) -> None:
    raw = tmp_path / "data/raw"
    (raw / "c4").mkdir(parents=True)
    (raw / "c4" / "a.json").write_text(json.dumps({"text": "x", "url": "u", "timestamp": "t"}) + "\n")
    (raw / "github").mkdir()  # a source folder with no input in it
    result = _pipeline("run", "all", "--workers", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert (tmp_path / "data/corpus/c4/stats.json").exists()
    lines = result.stderr.strip().splitlines()
    # The paper's sources with no folder are named, not passed over.
    assert sorted(line for line in lines if line.startswith("warning: ")) == [
        f"warning: {name}: no folder data/raw/{name}; not run (`pipeline download {name}` fetches its raw inputs)"
        for name in ("arxiv", "books", "commoncrawl", "stackexchange", "wikipedia")]
    errors = [line for line in lines if not line.startswith("warning: ")]
    assert errors[0].startswith("pipeline: error: github: ")
    assert errors[-1] == "pipeline: error: 1 of 2 sources failed: github (errors above)"


@pytest.mark.parametrize("package", ["pipeline", "tokenizer", "train"])
def test_python_dash_m_runs_each_command_as_its_script_does(package: str, tmp_path: Path) -> None:
    """`python -m pipeline.cli --help` prints the same help as `pipeline --help` (it printed
    nothing: the module had no entry point)."""
    import sys

    env = subprocess_env()
    as_module = subprocess.run([sys.executable, "-m", f"{package}.cli", "--help"], cwd=Path(__file__).parents[2],
                               env=env, capture_output=True, text=True, timeout=120)
    as_script = subprocess.run([script(package), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=120)
    assert as_module.returncode == 0 == as_script.returncode
    assert as_module.stdout.split("\n", 1)[1] == as_script.stdout.split("\n", 1)[1] != ""  # after the usage line's program name


HUGE = "99999999999999999999"  # past an int64


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "c4", "--workers", "0"], "--workers must be at least 1, got 0"),
    (["run", "c4", "--tasks", HUGE], f"--tasks must be at most 9223372036854775807, got {HUGE}"),
    (["run", "c4", "--shard-mb", str(1 << 41)], f"--shard-mb must be at most 1099511627776, got {1 << 41}"),
    (["run", "all", "--workers", "-1"], "--workers must be at least 1, got -1"),  # once, not once per source
    # --workers re-encodes with --tokens: it was checked after the documents were removed.
    (["remove", "c4", "--ids", "ids.txt", "--workers", "0"], "--workers must be at least 1, got 0"),
    (["report", "all", "--examples", "-1"], "--examples must not be negative, got -1"),
    (["report", "all", "--examples", HUGE], f"--examples must be at most 9223372036854775807, got {HUGE}"),
    (["diff", "c4", "--a", "a", "--b", "b", "--examples", HUGE],
     f"--examples must be at most 9223372036854775807, got {HUGE}"),
    (["sample", "--seed", HUGE], f"--seed must be at most 9223372036854775807, got {HUGE}"),
])
def test_a_numeric_flag_out_of_bounds_is_one_line_before_any_work(argv: list[str], message: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    from pipeline.cli import main

    (tmp_path / "data/raw/c4").mkdir(parents=True)
    (tmp_path / "data/raw/c4/a.json").write_text(json.dumps({"text": "x", "url": "u", "timestamp": "t"}) + "\n")
    (tmp_path / "ids.txt").write_text("c4/a:1\n")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as ended:
        main(argv)
    assert ended.value.code == 2
    assert capsys.readouterr().err == f"pipeline: error: {message}\n"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written
