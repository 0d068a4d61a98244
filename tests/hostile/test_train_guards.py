"""The trainer and its run commands through the real CLI: a setting out of range, token ids
past the vocabulary, or tokens and tokenizers that do not belong to the run end with one line
and exit 2, before anything is written or pruned."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.common.files import file_sha256
from tests.conftest import script, subprocess_env
from tests.tokenizer.conftest import trained  # noqa: F401  (the session's small tokenizer)
from tests.train.token_shards import write_llama1_tokens
from tokenizer.train import TrainResult

# Every test here runs a CLI (or a worker pool) end to end.
pytestmark = pytest.mark.slow

ENV = {"OMP_NUM_THREADS": "1"}
SHORT = ["--model", "debug", "--steps", "3", "--no-progress"]


def train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([script("train"), *args], cwd=cwd, env={**subprocess_env(), **ENV}, capture_output=True,
                          text=True, timeout=300, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def one_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train: error: "), done.stderr
    return lines[0].removeprefix("train: error: ")


@pytest.mark.parametrize("flags, message", [
    (["--keep-checkpoints", "0"], "command line: --keep-checkpoints must be at least 1, got 0"),
    (["--steps", "-5"], "command line: --steps must not be negative, got -5"),
    (["--seed", "-1"], "command line: --seed must not be negative, got -1"),
    (["--device", "foo"], "device = 'foo' is not one of auto, cpu, mps, cuda, cuda:N"),
    (["--lr", "nan"], "command line: --lr must be finite, got nan"),
    # The value that stands for "the preset's" asks for nothing (--steps 0 trained the preset's 100).
    *((["--" + flag, value], f"command line: --{flag} {shown} asks for nothing: give a {kind} value, or leave the "
                             "flag out for the preset's")
      for flag, value, shown, kind in [("steps", "0", "0", "positive"), ("lr", "0", "0.0", "positive"),
                                       ("warmup-steps", "-1", "-1", "non-negative"),
                                       ("batch-tokens", "0", "0", "positive"), ("seq-len", "0", "0", "positive"),
                                       ("micro-batch", "0", "0", "positive")]),
])
def test_a_flag_out_of_range_is_one_line_and_nothing_is_written(tmp_path: Path, flags: list[str],
                                                               message: str) -> None:
    write_llama1_tokens(tmp_path / "data" / "tokens")
    done = train("--model", "debug", "--no-progress", *flags, cwd=tmp_path)
    assert message in one_error(done)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("toml, message", [
    ("beta1 = 2.0\n", "bad.toml: setting 'beta1' must be below 1.0, got 2.0"),
    ("log_every = 0\n", "bad.toml: setting 'log_every' must be at least 1, got 0"),
    ("[model]\nn_heads = 0\n", "bad.toml [model]: setting 'n_heads' must be at least 1, got 0"),
    # A zero that stands for "the preset's" asks for nothing in a file too (`steps = 0` trained 100);
    # `warmup_steps = -1` stays a file's way to say "the preset's" (test_config_schema.py).
    *((f"{key} = {value}\n", f"bad.toml: {key} = {shown} asks for nothing: give a positive value, or leave the "
                             "setting out for the preset's")
      for key, value, shown in [("steps", "0", "0"), ("lr", "0", "0.0"), ("batch_tokens", "0", "0"),
                                ("seq_len", "0", "0"), ("micro_batch", "0", "0")]),
])
def test_a_config_value_out_of_range_is_one_line(tmp_path: Path, toml: str, message: str) -> None:
    write_llama1_tokens(tmp_path / "data" / "tokens")
    (tmp_path / "bad.toml").write_text(toml)
    assert message in one_error(train(*SHORT, "--config", "bad.toml", cwd=tmp_path))


def test_token_ids_past_the_vocabulary_are_one_line(tmp_path: Path) -> None:
    tokens = tmp_path / "data" / "tokens"
    write_llama1_tokens(tokens)
    for shard in (tokens / "c4").glob("train-*.bin"):
        ids = np.fromfile(shard, dtype="<u2")
        ids[ids > 2] = 300  # the meta says 256 pieces
        ids.tofile(shard)
    error = one_error(train(*SHORT, "--mixture", "llama1", cwd=tmp_path))
    assert error.startswith("data/tokens/c4: token id 300 is past the vocabulary of 256")


def test_resume_on_another_tokenizers_tokens_is_refused(tmp_path: Path) -> None:
    tokens = tmp_path / "data" / "tokens"
    write_llama1_tokens(tokens)
    assert train(*SHORT, "--run", "runs/a", cwd=tmp_path).returncode == 0
    for meta_path in tokens.glob("*/meta.json"):  # re-encoded with another tokenizer of the same size
        meta = json.loads(meta_path.read_text())
        meta["tokenizer_sha256"] = "f" * 64
        meta_path.write_text(json.dumps(meta))
    error = one_error(train("--model", "debug", "--steps", "6", "--no-progress", "--run", "runs/a", "--resume",
                            cwd=tmp_path))
    assert "the run was trained on tokens of tokenizer sha256 000000000000, but the token shards under " \
           "data/tokens are of ffffffffffff" in error


def test_export_generate_and_eval_refuse_a_tokenizer_or_tokens_the_run_was_not_trained_with(
        trained: TrainResult, tmp_path: Path) -> None:  # noqa: F811
    model = tmp_path / "data" / "tokenizer" / "llama1.model"
    model.parent.mkdir(parents=True)
    shutil.copy(trained.model, model)
    tokens = tmp_path / "data" / "tokens"
    write_llama1_tokens(tokens, vocab_size=1000)
    for meta_path in tokens.glob("*/meta.json"):
        meta = json.loads(meta_path.read_text())
        meta.update(tokenizer=str(model), tokenizer_sha256=file_sha256(model))
        meta["splits"]["heldout"] = meta["splits"]["train"]  # the same shards serve as held-out here
        meta_path.write_text(json.dumps(meta))
    assert train(*SHORT, "--run", "runs/a", cwd=tmp_path).returncode == 0
    assert train("export", "--run", "runs/a", "--out", "first", cwd=tmp_path).returncode == 0

    model.write_bytes(model.read_bytes() + b"\0")  # `tokenizer train` wrote a new model at the same path
    error = one_error(train("export", "--run", "runs/a", "--out", "hf", cwd=tmp_path))
    assert error.startswith(f"{model}: tokenizer sha256 ") and "runs/a was trained with" in error
    assert not (tmp_path / "hf").exists()
    assert "runs/a was trained with" in one_error(train("generate", "--run", "runs/a", "--prompt", "Hi",
                                                        cwd=tmp_path))

    for meta_path in tokens.glob("*/meta.json"):  # the held-out tokens re-encoded with it
        meta = json.loads(meta_path.read_text())
        meta["tokenizer_sha256"] = file_sha256(model)
        meta_path.write_text(json.dumps(meta))
    assert "its scores would be meaningless" in one_error(train("eval", "--run", "runs/a", cwd=tmp_path))


@pytest.mark.parametrize("flags, message", [
    (["--checkpoint", "abc"], "--checkpoint 'abc': expected a step number or a step-NNNNNNNN name"),
    (["--device", "foo"], "--device 'foo': not a device"),
])
def test_run_commands_refuse_bad_checkpoint_and_device_in_one_line(tmp_path: Path, flags: list[str],
                                                                    message: str) -> None:
    write_llama1_tokens(tmp_path / "data" / "tokens")
    assert train(*SHORT, "--run", "runs/a", cwd=tmp_path).returncode == 0
    assert message in one_error(train("generate", "--run", "runs/a", "--prompt-ids", "1 5", *flags, cwd=tmp_path))
