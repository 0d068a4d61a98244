"""`train generate`: the KV-cache path computes what the full forward computes; sampling
obeys temperature, top-p and the token limit; the CLI streams."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

from pipeline.common.errors import UserError
from tests.conftest import script, subprocess_env
from tests.float_tolerance import assert_float32_close
from tests.train.debug_run import train_debug_run
from train.sampling import KVCache, Sampling, forward_cached, generate, sample_next
from train.model import ModelArgs, Transformer
from train.trained import open_run
from train.weights import load_model


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_debug_run(tmp_path_factory.mktemp("generate"), steps=30)


def test_cached_forward_matches_the_full_forward() -> None:
    torch.manual_seed(0)
    model = Transformer(ModelArgs(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=97, multiple_of=32,
                                  max_seq_len=64)).eval()
    model.init_weights()
    tokens = torch.randint(0, 97, (2, 20))
    cache = KVCache(model, 2, 20)
    pieces = [forward_cached(model, tokens[:, :12], cache)]  # prefill, then one token at a time
    pieces += [forward_cached(model, tokens[:, i:i + 1], cache) for i in range(12, 20)]
    with torch.no_grad():
        full = model(tokens)
    assert_float32_close(torch.cat(pieces, dim=1), full)


@pytest.mark.slow
def test_greedy_continues_the_count_and_stops_at_the_limit(run: Path) -> None:
    model = load_model(open_run(str(run)))
    out = list(generate(model, [1, 100, 101, 102], Sampling(max_new_tokens=7, temperature=0.0)))
    assert out == [103, 104, 105, 106, 107, 108, 109]


def test_sampling_is_seeded_and_top_p_keeps_the_nucleus() -> None:
    logits = torch.tensor([[4.0, 3.0, 0.0, -1.0]])
    # Mass of the top two is 0.70 + 0.26: top_p 0.9 never picks the others.
    draws = {int(sample_next(logits, 1.0, 0.9, torch.Generator().manual_seed(s))) for s in range(200)}
    assert draws == {0, 1}
    assert {int(sample_next(logits, 1.0, 0.5, torch.Generator().manual_seed(s))) for s in range(50)} == {0}
    assert int(sample_next(logits, 0.0, 1.0)) == 0  # temperature 0 is greedy
    hot = {int(sample_next(logits, 5.0, 1.0, torch.Generator().manual_seed(s))) for s in range(400)}
    assert hot == {0, 1, 2, 3}


@pytest.mark.slow
def test_cli_streams_ids_and_is_reproducible(run: Path) -> None:
    cmd = [script("train"), "generate", "--run", str(run), "--prompt-ids", "1 50 51 52", "--max-tokens", "6",
           "--temperature", "0.7", "--seed", "3"]
    first = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True)
    second = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    ids = [int(t) for t in first.stdout.split()]
    assert len(ids) == 6 and first.stdout == second.stdout


@pytest.mark.slow
def test_text_prompt_without_tokenizer_is_one_line_and_exit_2(run: Path) -> None:
    result = subprocess.run([script("train"), "generate", "--run", str(run), "--prompt", "hello"],
                            env=subprocess_env(), capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pass --tokenizer PATH or --prompt-ids" in lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("flag, value", [("--temperature", "nan"), ("--temperature", "inf"), ("--temperature", "-1"),
                                         ("--top-p", "nan"), ("--top-p", "0"), ("--max-tokens", "0")])
def test_a_sampling_setting_out_of_range_is_one_line_and_exit_2(run: Path, flag: str, value: str) -> None:
    # NaN passes a `< 0` test: --temperature nan reached torch's sampler and ended in its RuntimeError.
    result = subprocess.run([script("train"), "generate", "--run", str(run), "--prompt-ids", "1 50", flag, value],
                            env=subprocess_env(), capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "train: error: --max-tokens must be at least 1, --top-p in (0, 1], --temperature at least 0 and finite"]


def test_a_seed_past_an_int64_is_one_line_before_the_run_is_opened(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """torch's generator takes an int64 seed: 10^20 was its ValueError, a traceback."""
    from train.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--run", str(tmp_path / "none"), "--prompt-ids", "1", "--seed", "99999999999999999999"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == \
        "train: error: --seed must be at most 9223372036854775807, got 99999999999999999999\n"


def test_a_fifo_in_a_run_folder_is_one_line_before_anything_is_read(tmp_path: Path) -> None:
    # A FIFO among the checkpoints (no writer) would block its reader for ever.
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "config.json").write_text("{}")
    os.mkfifo(tmp_path / "checkpoints" / "step-00000010.pt")
    with pytest.raises(UserError) as error:
        open_run(str(tmp_path))
    assert str(error.value) == (f"{tmp_path}/checkpoints/step-00000010.pt: a FIFO, not a file a command wrote here; "
                                "remove it and rerun")
