"""`train export --format hf`: transformers' LlamaForCausalLM loads the folder without custom
code and computes our logits (fp32, within 1e-4) and our greedy tokens."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from tests.conftest import script, subprocess_env
from tests.float_tolerance import assert_float32_close
from tests.train.debug_run import train_debug_run
from train import export, hf_export
from train.hf_export import export_hf, interleaved_to_half_split
from train.sampling import Sampling, generate
from train.trained import open_run
from train.weights import load_model

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("export")
    run = train_debug_run(root, steps=30)
    out = root / "hf"
    result = subprocess.run([script("train"), "export", "--run", str(run), "--format", "hf", "--out", str(out)],
                            env=subprocess_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"-> {out} (LlamaForCausalLM, float32)" in result.stdout
    return run, out


def test_folder_is_a_plain_llama_checkpoint(exported: tuple[Path, Path]) -> None:
    run, out = exported
    assert {"config.json", "generation_config.json", "model.safetensors"} <= {p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "auto_map" not in config
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"],
            config["intermediate_size"], config["vocab_size"]) == (64, 2, 4, 192, 256)


@pytest.mark.slow
def test_hf_logits_match_ours_in_fp32(exported: tuple[Path, Path]) -> None:
    run, out = exported
    ours = load_model(open_run(str(run)))
    theirs = transformers.LlamaForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    tokens = torch.randint(3, 256, (3, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = ours(tokens), theirs(tokens).logits
    assert a.shape == b.shape == (3, 64, 256)
    assert_float32_close(a, b)  # HF's kernels sum in another order: equal up to float32 rounding
    # Not trivially equal: the model is trained and its predictions are sharp.
    assert a.softmax(-1).max(-1).values.mean().item() > 0.3


@pytest.mark.slow
def test_greedy_generation_gives_the_same_tokens(exported: tuple[Path, Path]) -> None:
    run, out = exported
    ours = load_model(open_run(str(run)))
    theirs = transformers.LlamaForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    prompt = [1, 40, 41, 42, 43]
    mine = list(generate(ours, prompt, Sampling(max_new_tokens=20, temperature=0.0), eos_id=None))
    with torch.no_grad():
        hf = theirs.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=20, min_new_tokens=20,
                             eos_token_id=None, pad_token_id=0)
    assert hf[0, len(prompt):].tolist() == mine
    assert mine[:5] == [44, 45, 46, 47, 48]  # it learned to count


@pytest.mark.slow
def test_weights_stream_into_files_of_at_most_the_limit(exported: tuple[Path, Path], tmp_path: Path) -> None:
    """With a 100 kB limit (5 GB by default) the 0.8 MB debug model lands in several files that
    transformers reads through model.safetensors.index.json, to the same logits."""
    from safetensors import safe_open

    run, whole = exported
    out = export_hf(open_run(str(run)), tmp_path / "hf", max_file_bytes=100_000)
    files = sorted(out.glob("model-*.safetensors"))
    assert len(files) > 2 and not (out / "model.safetensors").exists()
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert sorted(set(index["weight_map"].values())) == [f.name for f in files]
    for file in files:
        with safe_open(str(file), "pt") as f:
            names = list(f.keys())
            size = sum(f.get_tensor(n).numel() * 4 for n in names)
        # A file holds more than one tensor only while they fit under the limit.
        assert size <= 100_000 or len(names) == 1, (file.name, size)
        assert {n for n, name in index["weight_map"].items() if name == file.name} == set(names)
    sharded = transformers.LlamaForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    single = transformers.LlamaForCausalLM.from_pretrained(str(whole), dtype=torch.float32).eval()
    tokens = torch.randint(3, 256, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(sharded(tokens).logits, single(tokens).logits)


def test_rotary_permutation_is_evens_then_odds_per_head() -> None:
    weight = torch.arange(8.0).view(8, 1)  # 2 heads of head_dim 4
    assert interleaved_to_half_split(weight, 2).flatten().tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


@pytest.mark.slow
def test_existing_target_is_one_line_and_exit_2(exported: tuple[Path, Path]) -> None:
    run, out = exported
    before = (out / "model.safetensors").read_bytes()
    result = subprocess.run([script("train"), "export", "--run", str(run), "--out", str(out)],
                            env=subprocess_env(), capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"train: error: {out}: already exists; export to a new folder (nothing was overwritten)"]
    assert (out / "model.safetensors").read_bytes() == before


@pytest.mark.slow
def test_a_target_inside_the_runs_checkpoints_is_refused(exported: tuple[Path, Path]) -> None:
    """A folder there goes with its checkpoint when training prunes it."""
    run, _ = exported
    (step,) = [p for p in (run / "checkpoints").iterdir() if p.name.startswith("step-")][-1:]
    for out in (step / "hf", run / "checkpoints" / "hf"):
        result = subprocess.run([script("train"), "export", "--run", str(run), "--out", str(out)],
                                env=subprocess_env(), capture_output=True, text=True)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            f"train: error: {out}: inside {run / 'checkpoints'}, whose folders the run prunes as it trains; export "
            "elsewhere (nothing was written)"]
        assert not out.exists()


@pytest.mark.slow
def test_checkpoint_of_another_shape_is_one_line_and_exit_2(exported: tuple[Path, Path], tmp_path: Path) -> None:
    run, _ = exported
    config = json.loads((run / "config.json").read_text())
    config["model"]["dim"] = 128  # the run now claims a wider model than its checkpoint holds
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps(config))
    (other / "checkpoints").symlink_to(run / "checkpoints")
    result = subprocess.run([script("train"), "export", "--run", str(other), "--out", str(tmp_path / "hf")],
                            env=subprocess_env(), capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "tok_embeddings.weight has shape (256, 64) but the run's model needs (256, 128)" \
        in lines[0], lines
    assert not (tmp_path / "hf").exists()


def test_the_command_offers_exactly_the_dtypes_the_export_converts_to() -> None:
    # The command names them without torch (train/export.py); the export maps them to torch's.
    assert export.DTYPES == tuple(hf_export.DTYPES)
