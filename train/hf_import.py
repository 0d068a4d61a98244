"""`train import --hf DIR --run runs/NAME`: a Hugging Face LlamaForCausalLM folder becomes a run.

The reverse of `train export` (train/hf_export.py): ours after an export, or any LLaMA-architecture
checkpoint with a SentencePiece `tokenizer.model`. The run folder gets

    config.json                    the resolved config, the model read from DIR/config.json
    train.toml                     that model as a `[model]` table, read by `train --run DIR --resume`
    tokenizer.model                DIR's tokenizer (generation and export find it here)
    checkpoints/step-00000000/     the weights in herd's checkpoint format, and nothing else

Continued pretraining starts its schedule fresh: the checkpoint is step 0 whatever the folder
was trained for, and holds the model's weights only (no optimizer moments, no data-loader
position, no RNG state), so

    train --run runs/NAME --resume --steps N --tokens DIR

warms up from step 0 with a fresh AdamW and settings of its own choosing (a weights-only
checkpoint fixes the model and the tokenizer, nothing else); the token shards must have been
encoded with DIR's tokenizer, the same sha256 check as any resume.

Rotary layout: HF rotates half-split pairs (i, i + head_dim/2), we rotate interleaved ones
(2i, 2i+1); the rows of q_proj and k_proj are put back per head, the inverse of export's.

What herd's model cannot represent is refused in one line naming DIR/config.json: another
architecture, biases, tied embeddings, rope scaling, an activation other than SiLU, a head size
other than hidden_size / heads. Weights are read from safetensors only (never a pickle).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import shutil
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import ConfigDict, Field, with_config
from typing_extensions import NotRequired, Required, TypedDict

from pipeline.common.cli import path_arg
from pipeline.common.config import Above0, Positive, validate
from pipeline.common.errors import InputError, UserError
from pipeline.common.files import check_output_folder, check_regular_file, file_sha256, overlapping
from pipeline.common.lock import folder_lock
from train import checkpoint
from train.config import IMPORTED_CONFIG, PRESETS, ResolvedConfig, TrainConfig, resolve, write_config
from train.hf_export import hf_name
from train.model import ModelArgs, Transformer
from train.parallel import join

ARCHITECTURE = "LlamaForCausalLM"
TOKENIZER = "tokenizer.model"
# Buffers older transformers saved beside the weights: derived from rope_theta, never learned.
DERIVED_SUFFIX = "rotary_emb.inv_freq"


@with_config(ConfigDict(strict=True, extra="ignore", allow_inf_nan=False))
class HFLlamaConfig(TypedDict, total=False):
    """The keys of a HF config.json that decide the model (every other key is ignored)."""

    architectures: list[str]
    model_type: str
    hidden_size: Required[Positive]
    intermediate_size: Required[Positive]
    num_hidden_layers: Required[Positive]
    num_attention_heads: Required[Positive]
    num_key_value_heads: Positive | None
    head_dim: Positive | None
    vocab_size: Required[Positive]
    rms_norm_eps: Above0
    rope_theta: Above0  # transformers < 5
    rope_parameters: dict[str, Any] | None  # transformers >= 5: {"rope_type": ..., "rope_theta": ...}
    rope_scaling: dict[str, Any] | None  # transformers < 5
    max_position_embeddings: Positive
    hidden_act: str
    attention_bias: bool
    mlp_bias: bool
    tie_word_embeddings: bool


# LlamaConfig's own defaults for keys a config.json may leave out.
HF_DEFAULTS = {"rms_norm_eps": 1e-6, "rope_theta": 10000.0, "max_position_embeddings": 2048}


def read_hf_config(folder: Path) -> HFLlamaConfig:
    path = folder / "config.json"
    if not folder.is_dir():
        raise InputError(str(folder), "no such folder")
    check_regular_file(path, "a JSON file")  # a FIFO would block the open, a device never end
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(str(path), "missing: not a Hugging Face model folder") from None
    except OSError as e:
        raise InputError(str(path), f"unreadable ({e.strerror})") from None
    except ValueError as e:  # bad JSON or bytes that are no UTF-8
        raise InputError(str(path), f"not valid JSON ({e})") from None
    if not isinstance(raw, dict):
        raise InputError(str(path), "not a JSON object")
    architectures = raw.get("architectures") or []
    if ARCHITECTURE not in architectures and raw.get("model_type") != "llama":
        named = ", ".join(map(str, architectures)) if isinstance(architectures, list) else str(architectures)
        raise InputError(str(path), f"architecture {named or raw.get('model_type') or 'unnamed'} is not "
                         f"{ARCHITECTURE}: herd's model is LLaMA only")
    return validate(HFLlamaConfig, raw, str(path))


def rope_theta(config: HFLlamaConfig, where: Path) -> float:
    """The rotary base; any scaling (linear, dynamic, YaRN, llama3) is refused: herd's rotary has none."""
    scaling = config.get("rope_scaling")
    if scaling and scaling.get("rope_type", scaling.get("type", "default")) != "default":
        raise InputError(str(where), f"rope_scaling {scaling} is not supported: herd's rotary embedding is unscaled")
    parameters = config.get("rope_parameters") or {}
    kind = parameters.get("rope_type", "default")
    if kind != "default":
        raise InputError(str(where), f"rope_parameters.rope_type {kind!r} is not supported: herd's rotary "
                         "embedding is unscaled")
    theta = parameters.get("rope_theta", config.get("rope_theta", HF_DEFAULTS["rope_theta"]))
    return validate(Above0, theta, str(where), name=lambda _: "setting 'rope_theta'")


def feed_forward_fields(dim: int, hidden: int) -> dict[str, Any]:
    """ModelArgs' multiple_of and ffn_dim_multiplier that give a SwiGLU hidden size of `hidden`.

    The LLaMA rule (2/3 * 4d rounded up to 256) when it gives `hidden` (7B: 11008); otherwise
    `hidden` as the multiple, with a multiplier that brings 2/3 * 4d to at most `hidden`, so that
    rounding up lands exactly on it."""
    natural = ModelArgs(dim=dim, multiple_of=256)
    if natural.ffn_hidden_dim == hidden:
        return {"multiple_of": 256, "ffn_dim_multiplier": None}
    base = int(2 * (4 * dim) / 3)
    return {"multiple_of": hidden, "ffn_dim_multiplier": None if base <= hidden else hidden / base}


def model_args_from_hf(config: HFLlamaConfig, where: Path) -> ModelArgs:
    """ModelArgs of the same network, or InputError naming `where` for what herd cannot represent."""
    for key, why in (("attention_bias", "no biases"), ("mlp_bias", "no biases"),
                     ("tie_word_embeddings", "untied input and output embeddings")):
        if config.get(key):
            raise InputError(str(where), f"{key} = true is not supported: herd's model has {why}")
    if config.get("hidden_act", "silu") != "silu":
        raise InputError(str(where), f"hidden_act {config['hidden_act']!r} is not supported: herd's "
                         "feed-forward is SwiGLU (silu)")
    dim, heads = config["hidden_size"], config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    if dim % heads:
        raise InputError(str(where), f"hidden_size {dim} is not divisible by num_attention_heads {heads}")
    head_dim = config.get("head_dim") or dim // heads
    if head_dim != dim // heads:
        raise InputError(str(where), f"head_dim {head_dim} is not hidden_size / num_attention_heads = "
                         f"{dim // heads}: herd's model derives it")
    if heads % kv_heads:
        raise InputError(str(where), f"num_attention_heads {heads} is not a multiple of num_key_value_heads "
                         f"{kv_heads}")
    args = ModelArgs(dim=dim, n_layers=config["num_hidden_layers"], n_heads=heads,
                     n_kv_heads=kv_heads if kv_heads != heads else None, vocab_size=config["vocab_size"],
                     norm_eps=float(config.get("rms_norm_eps", HF_DEFAULTS["rms_norm_eps"])),
                     rope_theta=float(rope_theta(config, where)),
                     max_seq_len=config.get("max_position_embeddings", HF_DEFAULTS["max_position_embeddings"]),
                     **feed_forward_fields(dim, config["intermediate_size"]))
    if args.ffn_hidden_dim != config["intermediate_size"]:  # no (multiple, multiplier) gives it: float rounding
        raise InputError(str(where), f"intermediate_size {config['intermediate_size']} cannot be represented "
                         f"(herd's model computes {args.ffn_hidden_dim})")
    return args


def half_split_to_interleaved(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Rows of a q/k projection from HF's half-split rotary order back to pair-interleaved (export's inverse)."""
    out_dim, in_dim = weight.shape
    head_dim = out_dim // n_heads
    # (heads, 2 halves, head_dim/2) -> (heads, head_dim/2, 2): the i-th of each half side by side.
    return weight.view(n_heads, 2, head_dim // 2, in_dim).transpose(1, 2).reshape(out_dim, in_dim)


def weight_files(folder: Path) -> dict[str, Path]:
    """HF tensor name -> the safetensors file holding it (one file, or an index naming several)."""
    index = folder / "model.safetensors.index.json"
    single = folder / "model.safetensors"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
            if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(str(index), "unreadable safetensors index (no weight_map of tensor -> file)") from None
        files = {name: folder / file for name, file in weight_map.items()}
        for path in sorted(set(files.values())):
            if path.parent != folder or not path.is_file():
                raise InputError(str(path), f"missing: {index.name} names it")
        return files
    if single.is_file():
        from safetensors import safe_open

        with _safetensors_errors(single):
            with safe_open(str(single), "pt") as f:
                return dict.fromkeys(f.keys(), single)
    pickled = sorted(p.name for p in folder.glob("pytorch_model*.bin"))
    why = f" ({pickled[0]} is a pickle, which import never loads: save the model with safetensors)" if pickled else ""
    raise InputError(str(folder), f"holds no model.safetensors{why}")


@contextlib.contextmanager
def _safetensors_errors(path: Path):
    from safetensors import SafetensorError

    try:
        yield
    except (SafetensorError, OSError) as e:
        raise InputError(str(path), f"not a readable safetensors file ({str(e).splitlines()[0][:200]})") from None


def expected_tensors(args: ModelArgs) -> dict[str, tuple[str, tuple[int, ...]]]:
    """HF name -> (our name, shape) of every tensor of the model `args` describes."""
    with torch.device("meta"):
        shapes = {name: tuple(t.shape) for name, t in Transformer(args).state_dict().items()}
    return {hf_name(name): (name, shape) for name, shape in shapes.items()}


def check_tensors(files: dict[str, Path], args: ModelArgs, folder: Path) -> None:
    """Every tensor the config implies, none other, each of its shape: else one line naming the file."""
    from safetensors import safe_open

    expected = expected_tensors(args)
    extra = sorted(name for name in files if name not in expected and not name.endswith(DERIVED_SUFFIX))
    if extra:
        raise InputError(str(files[extra[0]]), f"unexpected tensor {extra[0]} ({len(extra)} in all): not part "
                         f"of the LlamaForCausalLM that {folder / 'config.json'} describes")
    missing = sorted(name for name in expected if name not in files)
    if missing:
        where = folder / "model.safetensors.index.json" if len(set(files.values())) > 1 else \
            next(iter(files.values()), folder / "model.safetensors")
        raise InputError(str(where), f"tensor {missing[0]} is missing ({len(missing)} in all)")
    for path in sorted(set(files.values())):
        with _safetensors_errors(path), safe_open(str(path), "pt") as f:
            held = set(f.keys())
            for name in sorted(n for n, file in files.items() if file == path and n in expected):
                if name not in held:
                    raise InputError(str(path), f"tensor {name} is missing (the safetensors index names this file)")
                shape = tuple(f.get_slice(name).get_shape())
                if shape != expected[name][1]:
                    raise InputError(str(path), f"{name} has shape {shape} but {folder / 'config.json'} "
                                     f"implies {expected[name][1]}")


def load_weights(folder: Path, args: ModelArgs, progress: bool = True) -> dict[str, torch.Tensor]:
    """Our name -> fp32 tensor in our layout (q and k rows back to interleaved pairs), checked first."""
    from safetensors import safe_open
    from tqdm import tqdm

    files = weight_files(folder)
    check_tensors(files, args, folder)
    expected = expected_tensors(args)
    weights = {}
    bar = tqdm(total=len(expected), desc="import", unit="tensor", disable=not progress)
    for path in sorted(set(files.values())):
        with _safetensors_errors(path), safe_open(str(path), "pt") as f:
            for name in sorted(n for n, file in files.items() if file == path and n in expected):
                bar.update(1)
                ours = expected[name][0]
                # fp32 master weights, as every herd checkpoint holds: exact from bf16 and fp16.
                tensor = f.get_tensor(name).to(torch.float32)
                if ours.endswith("attention.wq.weight"):
                    tensor = half_split_to_interleaved(tensor, args.n_heads)
                elif ours.endswith("attention.wk.weight"):
                    tensor = half_split_to_interleaved(tensor, args.kv_heads)
                weights[ours] = tensor.contiguous()
    bar.close()
    return weights


def nearest_preset(args: ModelArgs) -> str:
    """The preset of the nearest width: its optimisation defaults (lr, batch, warmup) suit the model best."""
    return min(PRESETS, key=lambda name: (abs(math.log(PRESETS[name].model.dim / args.dim)), name))


def run_config(args: ModelArgs, run_dir: Path, tokenizer_sha256: str) -> tuple[ResolvedConfig, dict[str, Any]]:
    """The run's resolved config and the TOML values that reproduce its model on `--resume`.

    Every ModelArgs field is an override (the preset supplies optimisation defaults only); the
    context is capped at the model's own when the preset's is longer."""
    preset = nearest_preset(args)
    # None fields are the presets' defaults (TOML has no null to write them with).
    overrides = {key: value for key, value in dataclasses.asdict(args).items() if value is not None}
    values: dict[str, Any] = {}
    if PRESETS[preset].seq_len > args.max_seq_len:
        values["seq_len"] = args.max_seq_len
    config = TrainConfig(model=preset, model_overrides=overrides, run=str(run_dir), **values)
    resolved = resolve(config).with_tokens(args.vocab_size, tokenizer_sha256)
    return resolved, {**values, "model": {"preset": preset, **overrides}}


def toml_text(values: dict[str, Any], source: Path, run_dir: Path) -> str:
    """train.toml: top-level keys, then the [model] table."""
    lines = [f"# Written by `train import --hf {source}`: the model of {source / 'config.json'}.",
             "# Continue pretraining it (a fresh schedule and optimizer, from step 0) with",
             f"#   train --run {run_dir} --resume --steps N --tokens DIR   (this file is read when --config is not given)",
             "# Settings not named here are the preset's; flags override them."]
    model = values["model"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in values.items() if key != "model"]
    lines += ["", "[model]"] + [f"{key} = {_toml_value(value)}" for key, value in model.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    return repr(value)  # int, float (repr round-trips it exactly)


def tokenizer_pieces(tokenizer: Path) -> int:
    """The vocabulary size of a SentencePiece model, or InputError when it is missing or none."""
    import sentencepiece as spm

    check_regular_file(tokenizer, "a tokenizer model")  # a FIFO would block SentencePiece's open
    if not tokenizer.is_file():
        raise InputError(str(tokenizer), "missing: a SentencePiece tokenizer.model is needed (pass --tokenizer "
                         "PATH): continued pretraining checks its token shards against it")
    try:
        return spm.SentencePieceProcessor(model_file=str(tokenizer)).vocab_size()
    except (RuntimeError, OSError) as e:
        raise InputError(str(tokenizer), f"not a SentencePiece model ({str(e).splitlines()[0][:200]})") from None


def refuse_existing_run(run_dir: Path) -> None:
    """Refuse a --run that holds a run, an unfinished import, or a file of a name import writes
    (a user's tokenizer.model or train.toml would be overwritten)."""
    if (run_dir / "config.json").exists():
        raise UserError(f"{run_dir}: already a run folder (config.json exists); import into a new --run "
                        "(nothing was overwritten)")
    written = [checkpoint.checkpoint_root(run_dir), run_dir / TOKENIZER, run_dir / IMPORTED_CONFIG]
    taken = [p for p in written if p.is_symlink() or p.exists()]
    if taken and taken[0] == written[0]:
        # config.json comes last (import_hf), and `train` writes it before any checkpoint: a
        # checkpoint without it is an import killed before it finished.
        names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in taken)
        raise UserError(f"{run_dir}: an earlier import into it did not finish (it holds {names} but no config.json); "
                        f"delete {' and '.join(str(p) for p in taken)}, then import again (nothing was overwritten)")
    if taken:
        raise UserError(f"{taken[0]}: exists, and `train import` writes a file of that name; import into a new "
                        "--run (nothing was overwritten)")


def import_hf(folder: Path, run_dir: Path, tokenizer: Path | None = None, progress: bool = True) -> Path:
    """Write the run folder `run_dir` from the HF folder `folder`; return its step-0 checkpoint."""
    check_output_folder(run_dir)  # before minutes of reading weights, not at the lock after them
    if folder.is_dir() and overlapping(folder, run_dir):  # its config.json and tokenizer.model are the input's
        raise UserError(f"{run_dir}: the run folder overlaps the Hugging Face folder {folder}; import into a --run "
                        "outside it (nothing was written)")
    config = read_hf_config(folder)
    args = model_args_from_hf(config, folder / "config.json")
    tokenizer = tokenizer or folder / TOKENIZER
    pieces = tokenizer_pieces(tokenizer)
    if pieces != args.vocab_size:
        # Token shards carry the tokenizer's vocabulary: a run of another size would not resume on them.
        raise InputError(str(tokenizer), f"has {pieces} pieces but {folder / 'config.json'} says vocab_size "
                         f"{args.vocab_size}: not the model's tokenizer")
    refuse_existing_run(run_dir)  # before minutes of reading weights
    weights = load_weights(folder, args, progress)  # every tensor checked before the run folder is touched
    with folder_lock(run_dir, "train"):
        refuse_existing_run(run_dir)  # again, now that no other import or run can start one
        resolved, toml_values = run_config(args, run_dir, file_sha256(tokenizer))
        with torch.device("meta"):
            model = Transformer(args)
        model.load_state_dict(weights, assign=True)  # the loaded tensors become the parameters: no second copy
        model.init_rope("cpu")
        del weights
        state = {"step": 0, "config": resolved.to_json(),
                 "imported_from": str(folder)}
        saved = checkpoint.save(join("ddp", "cpu"), run_dir, checkpoint.step_name(0), model, None, state)
        shutil.copyfile(tokenizer, run_dir / TOKENIZER)
        (run_dir / IMPORTED_CONFIG).write_text(toml_text(toml_values, folder, run_dir))
        # Last: config.json is what makes the folder a run (train.trained.open_run).
        write_config(resolved, run_dir / "config.json")
    return saved


DESCRIPTION = (
    "Turn a Hugging Face LlamaForCausalLM folder (safetensors weights, config.json, a SentencePiece "
    "tokenizer.model) into a run folder: config.json, train.toml and a step-0 checkpoint of the weights "
    "only. Generate from it, export it, or continue pretraining it from a fresh schedule with "
    "`train --run RUN --resume --steps N --tokens DIR` (token shards of the "
    "same tokenizer)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hf", type=path_arg, required=True, metavar="DIR",
                        help="folder with config.json and model.safetensors "
                        "(or model.safetensors.index.json and its files)")
    parser.add_argument("--run", type=path_arg, required=True,
                        help="run folder to create, e.g. runs/imported; must hold no run")
    parser.add_argument("--tokenizer", type=path_arg, help=f"SentencePiece .model (default: DIR/{TOKENIZER})")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(args: argparse.Namespace) -> None:
    saved = import_hf(Path(args.hf), Path(args.run), Path(args.tokenizer) if args.tokenizer else None, args.progress)
    print(f"train import: {args.hf} -> {saved} (weights only, step 0); continue it with: train --run {args.run} "
          f"--resume --steps N --tokens DIR")
