"""`train eval`: held-out perplexity per source and for the mixture, table and JSON; the same held-out
losses computed during training (`train --eval-every N`), on one process and on two torchrun ranks."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.common.errors import InputError
from pipeline.corpus.mixture import LLAMA1
from tests.conftest import REPO, script, subprocess_env
from tests.float_tolerance import assert_float32_close
from tests.train.debug_run import train_debug_run, write_tokens_with_heldout
from train.cli import main as train_cli
from train.config import TrainConfig, resolve
from train.heldout import evaluate
from train.loop import train
from train.metrics import read_metrics
from train.model import Transformer
from train.trained import open_run
from train.weights import load_model

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


# -- held-out loss during training (`train --eval-every N`) ------------------------------------

EVAL_EVERY, EVAL_SEQUENCES, SEQ_LEN = 5, 2, 32  # the debug preset's context


def heldout_windows(folder: Path, count: int, seq_len: int) -> torch.Tensor:
    """The first `count` windows of seq_len + 1 tokens, seq_len apart, of the source's held-out
    file, read with numpy straight from the .bin the test wrote (uint16, little-endian)."""
    stream = np.fromfile(folder / "heldout-00000.bin", dtype="<u2").astype(np.int64)
    return torch.from_numpy(np.stack([stream[i * seq_len:i * seq_len + seq_len + 1] for i in range(count)]))


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_debug_run(tmp_path_factory.mktemp("in-loop"), steps=10, eval_every=EVAL_EVERY,
                           eval_sequences=EVAL_SEQUENCES, checkpoint_every=EVAL_EVERY, log_every=3)


def test_a_step_left_aside_by_a_killed_resave_is_opened_by_its_number(evaluated_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(evaluated_run, run)
    root = run / "checkpoints"
    (root / "step-00000005").rename(root / ".replaced-step-00000005")  # killed between the re-save's renames
    assert open_run(str(run), "5").checkpoint == root / ".replaced-step-00000005"
    assert open_run(str(run), "step-00000005").checkpoint == root / ".replaced-step-00000005"
    assert open_run(str(run), "10").checkpoint == root / "step-00000010"
    with pytest.raises(InputError) as missing:
        open_run(str(run), "7")
    assert str(missing.value) == f"{root / 'step-00000007'}: no such checkpoint"


def test_eval_rows_every_n_steps_equal_cross_entropy_of_that_steps_checkpoint(evaluated_run: Path) -> None:
    rows = read_metrics(evaluated_run / "metrics.jsonl")
    # Logged every 3 steps and at the end, and also after every 5th step for the evaluation.
    assert [r["step"] for r in rows] == [0, 3, 4, 6, 9]
    keys = {f"eval/{s}" for s in SOURCES} | {"eval/mixture"}
    evaluated = {r["step"]: r for r in rows if keys & set(r)}
    assert sorted(evaluated) == [4, 9] and all(keys <= set(r) for r in evaluated.values())
    total = sum(LLAMA1.proportions.values())
    for step, row in evaluated.items():
        model = load_model(open_run(str(evaluated_run), str(step + 1)))  # the model after step + 1 steps
        losses = {}
        for source in SOURCES:
            windows = heldout_windows(evaluated_run.parent / "tokens" / source, EVAL_SEQUENCES, SEQ_LEN)
            with torch.no_grad():
                logits = model(windows[:, :-1])
            losses[source] = F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten())
            assert_float32_close(torch.tensor(row[f"eval/{source}"]), losses[source], msg=f"{step} {source}")
        mixture = sum(LLAMA1.proportions[s] / total * losses[s] for s in SOURCES)
        assert_float32_close(torch.tensor(row["eval/mixture"]), mixture, msg=f"{step} mixture")
    assert evaluated[9]["eval/mixture"] < evaluated[4]["eval/mixture"]  # it learns the counting


def test_train_eval_on_the_checkpoint_gives_the_numbers_logged_in_the_loop(evaluated_run: Path,
                                                                           tmp_path: Path) -> None:
    row = next(r for r in read_metrics(evaluated_run / "metrics.jsonl") if r["step"] == 4)
    out = tmp_path / "eval.json"
    train_cli(["eval", "--run", str(evaluated_run), "--checkpoint", "5", "--max-tokens",
               str(EVAL_SEQUENCES * SEQ_LEN), "--out", str(out)])
    saved = json.loads(out.read_text())
    assert [s["tokens"] for s in saved["sources"]] == [EVAL_SEQUENCES * SEQ_LEN] * len(SOURCES)
    assert {f"eval/{s['source']}": s["nll"] for s in saved["sources"]} | {"eval/mixture": saved["mixture"]["nll"]} \
        == {k: v for k, v in row.items() if k.startswith("eval/")}


@pytest.mark.slow
def test_two_torchrun_ranks_compute_the_same_heldout_losses_as_one_process(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    write_tokens_with_heldout(tokens)
    out = tmp_path / "out"
    out.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           str(REPO / "tests" / "train" / "eval_worker.py"), str(tokens), str(tmp_path / "run"), str(out)]
    result = subprocess.run(cmd, cwd=REPO, env=dict(subprocess_env(), OMP_NUM_THREADS="1"), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((out / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert sorted(ranks[0]) == ["2", "4"] and ranks[0] == ranks[1]  # bit for bit on both ranks
    logged = {str(r["step"] + 1): {k: v for k, v in r.items() if k.startswith("eval/")}
              for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "eval/mixture" in r}
    assert logged == ranks[0]
    # One process drawing the same global batch (2 micro-batches a step) evaluates the same model.
    alone = train(resolve(TrainConfig(model="debug", data=str(tokens), run=str(tmp_path / "alone"), steps=4,
                                      batch_tokens=2 * 4 * 32, device="cpu", progress=False, eval_every=2,
                                      eval_sequences=2)))
    for steps, losses in alone.evals.items():
        for key, value in losses.items():
            assert abs(ranks[0][str(steps)][key] - value) < 1e-5, (steps, key)


def test_max_tokens_past_an_int64_is_one_line_before_the_run_is_opened(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train_cli(["eval", "--run", str(tmp_path / "none"), "--max-tokens", "99999999999999999999"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == \
        "train: error: --max-tokens must be at most 9223372036854775807, got 99999999999999999999\n"
