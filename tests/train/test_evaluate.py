"""`train eval`: held-out perplexity per source and for the mixture, table and JSON."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
import torch

from pipeline.corpus.mixture import LLAMA1
from tests.conftest import script, subprocess_env
from tests.train.debug_run import train_debug_run
from train.evaluate import evaluate
from train.model import Transformer
from train.trained import load_model, open_run

SOURCES = list(LLAMA1.proportions)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_debug_run(tmp_path_factory.mktemp("eval"), steps=30)


@pytest.mark.slow
def test_cli_prints_per_source_perplexity_and_saves_json(run: Path) -> None:
    result = subprocess.run([script("train"), "eval", "--run", str(run)], env=subprocess_env(),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("source")))
    rows = {line.split()[0]: line.split() for line in lines[header + 1:header + 1 + len(SOURCES) + 1]}
    assert set(rows) == set(SOURCES) | {"mixture"}
    saved = json.loads((run / "eval.json").read_text())
    # 12 held-out documents of 50 tokens per source: 600 tokens, 599 predicted.
    assert [s["tokens"] for s in saved["sources"]] == [599] * len(SOURCES)
    for s in saved["sources"]:
        assert math.isclose(s["perplexity"], math.exp(s["nll"]))
        assert rows[s["source"]][3] == f"{s['perplexity']:.3f}"
    weights = saved["mixture"]["weights"]
    assert math.isclose(sum(weights.values()), 1.0)
    expected = sum(weights[s["source"]] * s["nll"] for s in saved["sources"])
    assert math.isclose(saved["mixture"]["nll"], expected)
    assert saved["checkpoint"].endswith("step-00000030")


@pytest.mark.slow
def test_trained_model_scores_lower_than_an_untrained_one(run: Path) -> None:
    opened = open_run(str(run))
    model = load_model(opened)
    untrained = Transformer(opened.args)
    torch.manual_seed(0)
    untrained.init_weights()
    untrained.eval()
    proportions = dict(LLAMA1.proportions)
    before = evaluate(untrained, opened.data_root, proportions, seq_len=32, max_tokens=10_000)
    after = evaluate(model, opened.data_root, proportions, seq_len=32, max_tokens=10_000)
    for b, a in zip(before["sources"], after["sources"]):
        assert b["source"] == a["source"]
        # Untrained: about the vocabulary size (256); trained on counting documents: far lower.
        assert b["perplexity"] > 150 and a["perplexity"] < b["perplexity"] / 3, (b, a)
    assert after["mixture"]["perplexity"] < before["mixture"]["perplexity"] / 3


@pytest.mark.slow
def test_run_without_checkpoint_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run([script("train"), "eval", "--run", str(tmp_path / "nope")], env=subprocess_env(),
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"train: error: {tmp_path / 'nope'}: no such run folder"]
