"""`pipeline mix`: token counts parsed, tokens available and drawn per source, the table and its errors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pipeline.commands.mix import parse_tokens, plan
from pipeline.engine.shards import corpus_size
from pipeline.corpus.mixture import load_mixture
from tests.conftest import script, subprocess_env
from tests.hostile.helpers import one_error, run_script
from tests.tokenizer.corpus import write_source


def _pipeline(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([script("pipeline"), *args], cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)


def _one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_parse_tokens() -> None:
    assert [parse_tokens(t) for t in ("1.4T", "300B", "2e9", "1_000", "5k")] == [
        1_400_000_000_000, 300_000_000_000, 2_000_000_000, 1000, 5000]


def _corpus(root: Path) -> None:
    # c4: 10 documents of 400 bytes = 4,000 bytes = 1,000 estimated tokens at 4 bytes a token.
    write_source(root, "c4", 10, texts=["x" * 400] * 10)
    write_source(root, "wikipedia", 4, texts=["é" * 500] * 4)  # 4,000 UTF-8 bytes, 1,000 tokens


def test_plan_estimates_from_bytes_then_counts_token_shards(tmp_path: Path) -> None:
    _corpus(tmp_path / "corpus")
    assert corpus_size(tmp_path / "corpus" / "wikipedia").text_bytes == 4000
    mixture = load_mixture(_toml(tmp_path))
    rows = {r.source: r for r in plan(mixture, 10_000, tmp_path / "corpus", tmp_path / "tokens")}
    assert (rows["c4"].available, rows["c4"].counted, rows["c4"].drawn, rows["c4"].epochs) == (1000, False, 7500, 7.5)
    assert (rows["wikipedia"].available, rows["wikipedia"].drawn, rows["wikipedia"].epochs) == (1000, 2500, 2.5)
    _meta(tmp_path / "tokens" / "c4", tokens=2500)
    rows = {r.source: r for r in plan(mixture, 10_000, tmp_path / "corpus", tmp_path / "tokens")}
    assert (rows["c4"].available, rows["c4"].counted, rows["c4"].epochs) == (2500, True, 3.0)


@pytest.mark.parametrize("total", [9, 10, 100, 1001, 1_400_000_000_001])
def test_the_tokens_drawn_add_up_to_the_total_asked(tmp_path: Path, total: int) -> None:
    # llama1's shares of 10 tokens are 6.7, 1.5, 0.45, 0.45, 0.45, 0.25, 0.2: rounded one by one
    # they made 9; the largest remainders get the tokens left over.
    rows = plan(load_mixture("llama1"), total, tmp_path / "corpus", tmp_path / "tokens")
    assert sum(row.drawn for row in rows) == total
    assert all(abs(row.drawn - row.proportion * total) < 1 for row in rows)


def _toml(tmp_path: Path) -> str:
    path = tmp_path / "mix.toml"
    path.write_text('name = "small"\n[proportions]\nc4 = 0.75\nwikipedia = 0.25\n')
    return str(path)


def _meta(folder: Path, tokens: int, sha: str = "a" * 64) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(json.dumps({
        "source": folder.name, "tokenizer": "t.model", "tokenizer_sha256": sha, "vocab_size": 32000,
        "dtype": "uint16", "bos_id": 1, "eos_id": 2,
        "splits": {"train": {"documents": 1, "tokens": tokens, "shards": []},
                   "heldout": {"documents": 0, "tokens": 0, "shards": []}}}))


@pytest.mark.slow
def test_pipeline_mix_prints_table_1_and_warns_beyond_the_cap(tmp_path: Path) -> None:
    _corpus(tmp_path / "data" / "corpus")
    result = _pipeline("mix", "--mixture", _toml(tmp_path), "--total-tokens", "10K", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "mixture small: 10.00K tokens (10,000)"
    assert lines[1].split() == ["source", "proportion", "tokens", "available", "counted", "from", "tokens",
                                "drawn", "epochs"]
    assert lines[2].split() == ["c4", "75.0%", "1.00K", "corpus", "bytes", "(est.)", "7.50K", "7.50"]
    assert lines[3].split() == ["wikipedia", "25.0%", "1.00K", "corpus", "bytes", "(est.)", "2.50K", "2.50"]
    assert result.stderr.strip() == "warning: c4: 7.50 epochs, more than the repeat cap of 3 (--max-epochs)"
    relaxed = _pipeline("mix", "--mixture", _toml(tmp_path), "--total-tokens", "10K", "--max-epochs", "8", cwd=tmp_path)
    assert relaxed.returncode == 0 and relaxed.stderr == ""


@pytest.mark.slow
def test_pipeline_mix_llama1_shows_paper_epochs_and_missing_sources(tmp_path: Path) -> None:
    _corpus(tmp_path / "data" / "corpus")
    result = _pipeline("mix", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "paper epochs at 1.40T" in result.stdout
    commoncrawl = next(line for line in result.stdout.splitlines() if line.startswith("commoncrawl"))
    assert commoncrawl.split() == ["commoncrawl", "67.0%", "none", "-", "938.00B", "-", "1.10"]
    assert "warning: commoncrawl: no corpus or token shards found" in result.stderr
    assert "--mixture" in _pipeline("mix", "--help", cwd=tmp_path).stdout


@pytest.mark.slow
def test_pipeline_mix_bad_input_is_one_line(tmp_path: Path) -> None:
    _one_line_error(_pipeline("mix", cwd=tmp_path), "data/corpus", "no corpus shards or token shards")
    bad = tmp_path / "bad.toml"
    bad.write_text("[proportions]\nc4 = 0.6\nwikipedia = 0.6\n")
    _one_line_error(_pipeline("mix", "--mixture", str(bad), cwd=tmp_path), "bad.toml", "sum to 1.2, not 1")
    bad.write_text("[proportions]\nc4 = 0.5\nnosuch = 0.5\n")
    _one_line_error(_pipeline("mix", "--mixture", str(bad), cwd=tmp_path), "unknown source(s) ['nosuch']")


@pytest.mark.slow
def test_pipeline_mix_refuses_token_shards_of_different_tokenizers(tmp_path: Path) -> None:
    _meta(tmp_path / "data" / "tokens" / "c4", 100, sha="a" * 64)
    _meta(tmp_path / "data" / "tokens" / "wikipedia", 100, sha="b" * 64)
    _one_line_error(_pipeline("mix", "--mixture", _toml(tmp_path), "--total-tokens", "1000", cwd=tmp_path),
                    "refusing to mix them")
    model = tmp_path / "data" / "tokenizer" / "llama1.model"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"not the tokenizer that encoded them")
    _meta(tmp_path / "data" / "tokens" / "wikipedia", 100, sha="a" * 64)
    _one_line_error(_pipeline("mix", "--mixture", _toml(tmp_path), "--total-tokens", "1000", cwd=tmp_path),
                    "data/tokenizer/llama1.model", "refusing to mix them")


def test_a_mixture_or_tokenizer_that_is_no_regular_file_is_one_line_and_never_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # no writer: a command that opened it to read would wait for ever
    for args, line in [
        (["mix", "--mixture", "fifo"], "fifo: a FIFO, not a mixture file"),
        (["mix", "--mixture", "/dev/zero"], "/dev/zero: a device, not a mixture file"),
        (["mix", "--tokenizer", "fifo"], "fifo: a FIFO, not a tokenizer model"),
    ]:
        assert one_error(run_script("pipeline", *args, cwd=tmp_path, timeout=30), "pipeline") == line
