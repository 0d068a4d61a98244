"""`train import --hf DIR --run RUN`: a Hugging Face LlamaForCausalLM folder becomes a run that
herd generates from, exports again bit for bit, and continues pretraining from.

The "any LLaMA checkpoint" case is built by the test with transformers itself (a small random
LlamaForCausalLM with grouped-query attention, a non-default rotary base and a feed-forward size
off the LLaMA rounding rule, saved with save_pretrained) beside a SentencePiece tokenizer the
test trains; transformers is the oracle for generation and for the loss. Tensors are compared
through safetensors' own reader, never through herd's code.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.common.errors import UserError
from pipeline.common.files import file_sha256
from pipeline.corpus.mixture import LLAMA1
from tests.conftest import script, subprocess_env
from tests.float_tolerance import float32_tolerance
from tests.hostile.helpers import one_error, run_script
from tests.train.debug_run import train_debug_run
from tests.train.token_shards import write_source
from train.hf_export import export_hf
from train.hf_import import import_hf
from train.trained import open_run

transformers = pytest.importorskip("transformers")
spm = pytest.importorskip("sentencepiece")
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

WORDS = ("the cat dog bird sat ran on under over a mat log tree house red green blue big small one two three "
         "and then it was very quick slow").split()
HIDDEN, LAYERS, HEADS, KV_HEADS, INTERMEDIATE, ROPE_THETA, NORM_EPS, CONTEXT = 64, 2, 4, 2, 160, 500.0, 1e-5, 128


def sentences(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(5, 12)))) + "." for _ in range(count)]


def train_sentencepiece(folder: Path, vocab_size: int = 120) -> Path:
    """A BPE model of `vocab_size` pieces, trained on the test's sentences and made-up words."""
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    made_up = [" ".join("".join(rng.choice(letters, size=int(rng.integers(3, 8)))) for _ in range(8))
               for _ in range(300)]
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(sentences(400, 0) + made_up) + "\n")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(folder / "sp"), vocab_size=vocab_size,
                                   model_type="bpe", bos_id=1, eos_id=2, unk_id=0, pad_id=-1,
                                   minloglevel=2)
    return folder / "sp.model"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([script("train"), *args], env=subprocess_env(), capture_output=True, text=True)


def safetensors_of(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of an HF folder, read by safetensors alone (one file or an index's files)."""
    tensors: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(str(file)))
    return tensors


@pytest.fixture(scope="module")
def hf_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random LlamaForCausalLM saved by transformers, with a SentencePiece tokenizer.model."""
    root = tmp_path_factory.mktemp("hf")
    tokenizer = train_sentencepiece(root)
    vocab = spm.SentencePieceProcessor(model_file=str(tokenizer)).vocab_size()
    config = transformers.LlamaConfig(
        vocab_size=vocab, hidden_size=HIDDEN, intermediate_size=INTERMEDIATE, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=CONTEXT,
        rms_norm_eps=NORM_EPS, rope_parameters={"rope_type": "default", "rope_theta": ROPE_THETA},
        bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    folder = root / "llama"
    model.save_pretrained(str(folder))
    shutil.copyfile(tokenizer, folder / "tokenizer.model")
    return folder


@pytest.fixture(scope="module")
def imported(hf_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "imported"
    result = run_cli("import", "--hf", str(hf_llama), "--run", str(run))
    assert result.returncode == 0, result.stderr
    assert f"-> {run / 'checkpoints' / 'step-00000000'} (weights only, step 0)" in result.stdout
    return run


def hf_model(folder: Path) -> torch.nn.Module:
    return transformers.LlamaForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()


@pytest.mark.slow
def test_run_config_is_the_hf_model(hf_llama: Path, imported: Path) -> None:
    model = json.loads((imported / "config.json").read_text())["model"]
    assert (model["dim"], model["n_layers"], model["n_heads"], model["n_kv_heads"], model["vocab_size"],
            model["norm_eps"], model["rope_theta"], model["max_seq_len"]) == \
        (HIDDEN, LAYERS, HEADS, KV_HEADS, 120, NORM_EPS, ROPE_THETA, CONTEXT)
    assert (imported / "tokenizer.model").read_bytes() == (hf_llama / "tokenizer.model").read_bytes()
    assert json.loads((imported / "config.json").read_text())["tokenizer_sha256"] == \
        file_sha256(hf_llama / "tokenizer.model")
    checkpoints = sorted(p.name for p in (imported / "checkpoints").iterdir())
    assert checkpoints == ["step-00000000"]


@pytest.mark.slow
def test_hf_import_then_export_gives_the_hf_tensors_bit_for_bit(hf_llama: Path, imported: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "again"
    result = run_cli("export", "--run", str(imported), "--out", str(out))
    assert result.returncode == 0, result.stderr
    original, again = safetensors_of(hf_llama), safetensors_of(out)
    assert sorted(again) == sorted(original) and len(original) == 3 + 9 * LAYERS
    for name, tensor in original.items():
        assert again[name].dtype == tensor.dtype and torch.equal(again[name], tensor), name
    config = json.loads((out / "config.json").read_text())
    assert (config["intermediate_size"], config["num_key_value_heads"], config["rope_theta"]) == \
        (INTERMEDIATE, KV_HEADS, ROPE_THETA)


@pytest.mark.slow
def test_export_import_export_is_bit_for_bit(tmp_path: Path) -> None:
    """Herd's own run (bf16 export, sharded into several files) survives the round trip exactly."""
    run = train_debug_run(tmp_path, steps=3)
    first, second = tmp_path / "first", tmp_path / "second"
    export_hf(open_run(str(run)), first, dtype="bfloat16", max_file_bytes=50_000)
    assert len(list(first.glob("model-*.safetensors"))) > 2  # read through model.safetensors.index.json
    # The debug run's shards name no real tokenizer: one of its 256 pieces stands in.
    tokenizer = train_sentencepiece(tmp_path, vocab_size=256)
    result = run_cli("import", "--hf", str(first), "--run", str(tmp_path / "back"), "--tokenizer", str(tokenizer))
    assert result.returncode == 0, result.stderr
    result = run_cli("export", "--run", str(tmp_path / "back"), "--out", str(second), "--dtype", "bfloat16")
    assert result.returncode == 0, result.stderr
    a, b = safetensors_of(first), safetensors_of(second)
    assert sorted(a) == sorted(b) and len(a) == 3 + 9 * 2
    for name in a:
        assert a[name].dtype == b[name].dtype == torch.bfloat16
        assert torch.equal(a[name].view(torch.int16), b[name].view(torch.int16)), name  # bits, not values


@pytest.mark.slow
def test_greedy_generation_equals_transformers(hf_llama: Path, imported: Path) -> None:
    tokenizer = spm.SentencePieceProcessor(model_file=str(hf_llama / "tokenizer.model"))
    prompt = [1] + tokenizer.encode("the cat sat on a mat and then")
    result = run_cli("generate", "--run", str(imported), "--prompt-ids", " ".join(map(str, prompt)),
                     "--temperature", "0", "--max-tokens", "24")
    assert result.returncode == 0, result.stderr
    ours = [int(t) for t in result.stdout.split()]
    with torch.no_grad():
        theirs = hf_model(hf_llama).generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=24,
                                             eos_token_id=2, pad_token_id=0)
    assert ours == theirs[0, len(prompt):].tolist()
    assert len(set(ours)) > 3  # not one token repeated: the comparison has something to tell apart


def write_token_shards(root: Path, tokenizer: Path, seed: int = 1) -> None:
    """Every llama1 source as token shards of `tokenizer`'s ids, meta.json naming its sha256."""
    processor = spm.SentencePieceProcessor(model_file=str(tokenizer))
    documents = [processor.encode(" ".join(sentences(6, seed + i))) for i in range(40)]
    for name in LLAMA1.proportions:
        write_source(root / name, documents, vocab_size=processor.vocab_size(), docs_per_shard=10,
                     tokenizer_sha256=file_sha256(tokenizer))


@pytest.mark.slow
def test_continued_pretraining_starts_at_the_hf_models_loss(hf_llama: Path, imported: Path,
                                                           tmp_path: Path) -> None:
    from train.data import MixtureLoader, open_mixture

    run = tmp_path / "continued"
    shutil.copytree(imported, run)
    tokens = tmp_path / "tokens"
    write_token_shards(tokens, hf_llama / "tokenizer.model")
    # Settings of this run's own choosing: the import trained no step with any.
    # No --config: a resumed run folder made by `train import` supplies its own train.toml.
    result = run_cli("--run", str(run), "--resume", "--steps", "2",
                     "--lr", "0.001", "--warmup-steps", "2", "--tokens", str(tokens), "--no-progress",
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [0, 1]
    config = json.loads((run / "config.json").read_text())["train"]
    # The batch of step 0, drawn as the run drew it (seed, context, micro-batch of the run's config).
    data = open_mixture(tokens, LLAMA1)
    loader = MixtureLoader(data.sources, data.proportions, seq_len=config["seq_len"],
                           micro_batch=config["micro_batch"], batch_tokens=config["batch_tokens"], seed=config["seed"])
    assert config["batch_tokens"] == config["seq_len"] * config["micro_batch"]  # one micro-batch a step
    inputs, targets = loader.batch(0, 0)
    targets = targets.contiguous()  # a view of the windows: transformers' loss flattens it with .view
    with torch.no_grad():
        theirs = hf_model(hf_llama)(input_ids=inputs, labels=targets, shift_labels=targets).loss
    assert abs(rows[0]["loss"] - theirs.item()) <= float32_tolerance(theirs)
    # The schedule starts fresh: warmup from step 0 (peak x (step + 1) / warmup), not the HF model's history.
    assert [row["lr"] for row in rows] == [0.0005, 0.001]
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "step-00000002"


@pytest.mark.slow
def test_token_shards_of_another_tokenizer_are_refused(imported: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    tokens = tmp_path / "tokens"
    write_token_shards(tokens, shutil.copyfile(train_sentencepiece(other), other / "other.model"))
    run = tmp_path / "run"
    shutil.copytree(imported, run)
    result = run_cli("--run", str(run), "--config", str(run / "train.toml"), "--resume", "--steps", "1",
                     "--tokens", str(tokens), "--no-progress")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "refusing to continue on another tokenizer's ids" in lines[0]
    assert not (run / "metrics.jsonl").exists()


@pytest.mark.slow
def test_resuming_with_another_model_says_where_the_imported_one_is(hf_llama: Path, imported: Path,
                                                             tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    write_token_shards(tokens, hf_llama / "tokenizer.model")
    run = tmp_path / "run"
    shutil.copytree(imported, run)
    other = tmp_path / "other.toml"
    other.write_text('model = "debug"\n')  # a config of its own, without the imported [model] table
    result = run_cli("--run", str(run), "--config", str(other), "--resume", "--steps", "1", "--tokens", str(tokens),
                     "--no-progress")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "cannot resume with a different model" in lines[0]
    assert lines[0].endswith(f"; the imported model is {run / 'train.toml'}'s (train import), used when --resume "
                             "is given without --model or --config")


# -- hostile input: one line naming the file -----------------------------------------------------------


def copy_of(hf_llama: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(hf_llama, folder)
    return folder


def edit_config(folder: Path, **changes) -> None:
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def edit_tensors(folder: Path, change) -> None:
    path = folder / "model.safetensors"
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path), metadata={"format": "pt"})


def test_folder_without_config_json_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "hf").mkdir()
    result = run_cli("import", "--hf", str(tmp_path / "hf"), "--run", str(tmp_path / "run"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"train: error: {tmp_path / 'hf' / 'config.json'}: missing: not a Hugging Face model folder"]
    assert not (tmp_path / "run").exists()


def test_a_config_tokenizer_or_run_that_is_no_file_or_folder_is_one_line(hf_llama: Path, tmp_path: Path) -> None:
    folder = copy_of(hf_llama, tmp_path)
    os.mkfifo(tmp_path / "fifo")  # no writer: an open of it to read would wait for ever (a short timeout)
    for flags, line in [
        (["--hf", "copy", "--run", "run", "--tokenizer", "fifo"], "fifo: a FIFO, not a tokenizer model"),
        (["--hf", "copy", "--run", "/dev/null"], "/dev/null: a device, not a folder (give another output folder)"),
    ]:
        assert one_error(run_script("train", "import", *flags, cwd=tmp_path, timeout=30), "train") == line
    (folder / "config.json").unlink()
    os.mkfifo(folder / "config.json")
    done = run_script("train", "import", "--hf", "copy", "--run", "run", cwd=tmp_path, timeout=30)
    assert one_error(done, "train") == "copy/config.json: a FIFO, not a JSON file"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("changes", "problem"), [
    ({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"},
     "architecture GPT2LMHeadModel is not LlamaForCausalLM: herd's model is LLaMA only"),
    ({"attention_bias": True}, "attention_bias = true is not supported: herd's model has no biases"),
    ({"mlp_bias": True}, "mlp_bias = true is not supported: herd's model has no biases"),
    ({"tie_word_embeddings": True},
     "tie_word_embeddings = true is not supported: herd's model has untied input and output embeddings"),
    ({"rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0}},
     "rope_parameters.rope_type 'llama3' is not supported: herd's rotary embedding is unscaled"),
    ({"hidden_act": "gelu"}, "hidden_act 'gelu' is not supported: herd's feed-forward is SwiGLU (silu)"),
    ({"head_dim": 32}, "head_dim 32 is not hidden_size / num_attention_heads = 16: herd's model derives it"),
    ({"hidden_size": "64"}, "setting 'hidden_size' must be int, got '64'"),
])
def test_config_herd_cannot_represent_is_refused(hf_llama: Path, tmp_path: Path, changes: dict, problem: str) -> None:
    folder = copy_of(hf_llama, tmp_path)
    edit_config(folder, **changes)
    with pytest.raises(UserError) as refused:
        import_hf(folder, tmp_path / "run", progress=False)
    assert str(refused.value) == f"{folder / 'config.json'}: {problem}"
    assert not (tmp_path / "run").exists()


def test_missing_extra_and_misshapen_tensors_are_refused(hf_llama: Path, tmp_path: Path) -> None:
    folder = copy_of(hf_llama, tmp_path)
    weights, config = folder / "model.safetensors", folder / "config.json"
    edit_tensors(folder, lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))
    with pytest.raises(UserError) as refused:
        import_hf(folder, tmp_path / "run", progress=False)
    assert str(refused.value) == f"{weights}: tensor model.layers.1.mlp.up_proj.weight is missing (1 in all)"

    shutil.copyfile(hf_llama / "model.safetensors", weights)
    edit_tensors(folder, lambda t: t.update({"model.layers.0.self_attn.q_proj.bias": torch.zeros(HIDDEN)}))
    with pytest.raises(UserError) as refused:
        import_hf(folder, tmp_path / "run", progress=False)
    assert str(refused.value) == (f"{weights}: unexpected tensor model.layers.0.self_attn.q_proj.bias (1 in all): "
                                  f"not part of the LlamaForCausalLM that {config} describes")

    shutil.copyfile(hf_llama / "model.safetensors", weights)
    edit_config(folder, intermediate_size=128)  # the tensors stay 160 wide
    with pytest.raises(UserError) as refused:
        import_hf(folder, tmp_path / "run", progress=False)
    assert str(refused.value) == (f"{weights}: model.layers.0.mlp.down_proj.weight has shape (64, 160) but "
                                  f"{config} implies (64, 128)")
    assert not (tmp_path / "run").exists()


def test_a_tokenizer_of_another_vocabulary_is_refused(hf_llama: Path, tmp_path: Path) -> None:
    folder = copy_of(hf_llama, tmp_path)
    shutil.copyfile(train_sentencepiece(tmp_path, vocab_size=256), folder / "tokenizer.model")
    with pytest.raises(UserError) as refused:
        import_hf(folder, tmp_path / "run", progress=False)
    assert str(refused.value) == (f"{folder / 'tokenizer.model'}: has 256 pieces but {folder / 'config.json'} "
                                  "says vocab_size 120: not the model's tokenizer")
    (folder / "tokenizer.model").write_bytes(b"not a model")
    with pytest.raises(UserError, match=r"tokenizer\.model: not a SentencePiece model \("):
        import_hf(folder, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_pickled_weights_are_never_loaded(hf_llama: Path, tmp_path: Path) -> None:
    folder = copy_of(hf_llama, tmp_path)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(UserError) as refused:
        import_hf(folder, tmp_path / "run", progress=False)
    assert str(refused.value) == (f"{folder}: holds no model.safetensors (pytorch_model.bin is a pickle, which "
                                  "import never loads: save the model with safetensors)")


@pytest.mark.slow
def test_an_existing_run_is_never_overwritten(hf_llama: Path, imported: Path) -> None:
    manifest = imported / "checkpoints" / "step-00000000" / "manifest.json"
    before = manifest.read_bytes()
    result = run_cli("import", "--hf", str(hf_llama), "--run", str(imported))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"train: error: {imported}: already a run folder (config.json exists); import into a new --run "
        "(nothing was overwritten)"]
    assert manifest.read_bytes() == before


# `train import` in a process that SIGKILLs itself as it starts writing the run's config.json (a
# real kill at that point, via an audit hook): the checkpoint, tokenizer and train.toml are written.
KILLED_IMPORT = """
import os, signal, sys
from pathlib import Path
from train.cli import main

def hook(event, args):
    if event == "open" and Path(str(args[0])).name.startswith("config.json.") and "w" in str(args[1]):
        os.kill(os.getpid(), signal.SIGKILL)

sys.addaudithook(hook)
main(["import", "--hf", sys.argv[1], "--run", sys.argv[2], "--no-progress"])
"""


def test_an_import_killed_before_config_json_says_so_on_the_rerun(hf_llama: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    killed = subprocess.run([sys.executable, "-c", KILLED_IMPORT, str(hf_llama), str(run)], env=subprocess_env(),
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = sorted(p.name for p in run.iterdir() if p.name != ".lock")  # a killed holder leaves its lock file
    assert left == ["checkpoints", "tokenizer.model", "train.toml"]
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    result = run_cli("import", "--hf", str(hf_llama), "--run", str(run), "--no-progress")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"train: error: {run}: an earlier import into it did not finish (it holds checkpoints/, tokenizer.model, "
        f"train.toml but no config.json); delete {run / 'checkpoints'} and {run / 'tokenizer.model'} and "
        f"{run / 'train.toml'}, then import again (nothing was overwritten)"]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    for path in (run / "checkpoints", run / "tokenizer.model", run / "train.toml"):  # as the line says
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert run_cli("import", "--hf", str(hf_llama), "--run", str(run), "--no-progress").returncode == 0
    assert (run / "config.json").is_file() and (run / "checkpoints" / "step-00000000" / "manifest.json").is_file()


@pytest.mark.parametrize("name", ["tokenizer.model", "train.toml"])
def test_a_users_file_of_a_name_import_writes_is_never_overwritten(hf_llama: Path, tmp_path: Path, name: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / name).write_text("the user's own")
    (home / "notes.txt").write_text("mine")
    with pytest.raises(UserError) as refused:
        import_hf(hf_llama, home, progress=False)
    assert str(refused.value) == (f"{home / name}: exists, and `train import` writes a file of that name; import "
                                  "into a new --run (nothing was overwritten)")
    assert {p.name: p.read_text() for p in home.iterdir()} == {name: "the user's own", "notes.txt": "mine"}


@pytest.mark.parametrize("where", [".", "run"])
def test_a_run_folder_in_the_hf_folder_is_refused(hf_llama: Path, tmp_path: Path, where: str) -> None:
    folder = copy_of(hf_llama, tmp_path)
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(UserError) as refused:
        import_hf(folder, folder / where, progress=False)
    assert str(refused.value) == (f"{folder / where}: the run folder overlaps the Hugging Face folder {folder}; "
                                  "import into a --run outside it (nothing was written)")
    assert sorted(p.name for p in folder.iterdir()) == before
