"""A run's checkpoint as a Hugging Face LlamaForCausalLM folder (`train export`, train/export.py).

The folder holds config.json, generation_config.json, model.safetensors and, when the run's
tokenizer model is found, tokenizer.model + tokenizer_config.json; `transformers` loads it with
`LlamaForCausalLM.from_pretrained(DIR)`, no custom code.

Our rotary embedding rotates interleaved pairs (dimensions 2i, 2i+1 of a head, Meta's layout);
HF's Llama rotates halves (dimensions i, i + head_dim/2). Reordering the output rows of wq and
wk within each head, (2i, 2i+1) -> (i, i + head_dim/2), makes HF's rotation compute exactly our
attention scores: q.k is a sum over dimensions, so the same permutation on q and k leaves it
unchanged. v and every other matrix keep their layout.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import torch

from pipeline.common.errors import UserError, out_of_space
from train import checkpoint
from train.model import ModelArgs, Transformer
from train.trained import TrainedRun, refuse_existing
from train.weights import check_shapes

def interleaved_to_half_split(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Rows of a q/k projection (n_heads * head_dim, dim) from pair-interleaved to half-split order."""
    out_dim, in_dim = weight.shape
    head_dim = out_dim // n_heads
    # (heads, head_dim/2 pairs, 2) -> (heads, 2, head_dim/2): evens first, then odds, per head.
    return weight.view(n_heads, head_dim // 2, 2, in_dim).transpose(1, 2).reshape(out_dim, in_dim)


def hf_name(name: str) -> str:
    """Our reference name of a tensor -> LlamaForCausalLM's."""
    fixed = {"tok_embeddings.weight": "model.embed_tokens.weight", "norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    if name in fixed:
        return fixed[name]
    _, layer, rest = name.split(".", 2)  # layers.N.<rest>
    return f"model.layers.{layer}.{HF_LAYER_NAMES[rest]}"


HF_LAYER_NAMES = {
    "attention.wq.weight": "self_attn.q_proj.weight", "attention.wk.weight": "self_attn.k_proj.weight",
    "attention.wv.weight": "self_attn.v_proj.weight", "attention.wo.weight": "self_attn.o_proj.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight", "feed_forward.w2.weight": "mlp.down_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight", "attention_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}


def hf_tensor(name: str, tensor: torch.Tensor, args: ModelArgs) -> torch.Tensor:
    """One of our tensors in HF's layout: q and k rows permuted to the half-split rotary order."""
    if name.endswith("attention.wq.weight"):
        tensor = interleaved_to_half_split(tensor, args.n_heads)
    elif name.endswith("attention.wk.weight"):
        tensor = interleaved_to_half_split(tensor, args.kv_heads)
    return tensor.contiguous()


def shard_files(sizes: list[tuple[str, int]], max_bytes: int) -> list[list[str]]:
    """Tensor names grouped, in order, into files of at most `max_bytes` (a bigger tensor alone)."""
    files: list[list[str]] = [[]]
    used = 0
    for name, size in sizes:
        if files[-1] and used + size > max_bytes:
            files.append([])
            used = 0
        files[-1].append(name)
        used += size
    return files


def hf_config(args: ModelArgs, bos_id: int, eos_id: int, dtype: str) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": args.dim,
        "intermediate_size": args.ffn_hidden_dim,
        "num_hidden_layers": args.n_layers,
        "num_attention_heads": args.n_heads,
        "num_key_value_heads": args.kv_heads,
        "head_dim": args.head_dim,
        "vocab_size": args.vocab_size,
        "max_position_embeddings": args.max_seq_len,
        "rms_norm_eps": args.norm_eps,
        "rope_theta": args.rope_theta,  # transformers < 5
        "rope_parameters": {"rope_type": "default", "rope_theta": args.rope_theta},  # transformers >= 5
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "initializer_range": 0.02,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "torch_dtype": dtype,
        "dtype": dtype,
        "use_cache": True,
    }


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
MAX_FILE_BYTES = 5 * 10**9  # Hugging Face's default shard size, "5GB"


def export_hf(run: TrainedRun, out: Path, dtype: str = "float32", tokenizer: str | None = None,
              max_file_bytes: int = MAX_FILE_BYTES) -> Path:
    """Write the HF folder to `out` (which must not exist) atomically; return it.

    The weights stream from the checkpoint tensor by tensor into safetensors files of at most
    `max_file_bytes` (one file's tensors in memory at a time, never the whole model), with
    `model.safetensors.index.json` naming each tensor's file when there is more than one.
    """
    refuse_existing(out)
    opened = checkpoint.open_checkpoint(run.checkpoint)  # every checksum, before anything is unpickled
    shapes = opened.model_shapes()
    with torch.device("meta"):
        shape_only = Transformer(run.args)
    check_shapes(shapes, shape_only, run.checkpoint)
    itemsize = DTYPES[dtype].itemsize
    sizes = [(name, math.prod(shape) * itemsize) for name, shape in shapes.items()]
    groups = shard_files(sizes, max_file_bytes)
    names = (["model.safetensors"] if len(groups) == 1 else
             [f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))])
    bos_id, eos_id = run.special_ids()
    tokenizer_model = run.tokenizer_path(tokenizer)

    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        weight_map = {}
        for filename, group in zip(names, groups):
            tensors = {hf_name(name): hf_tensor(name, tensor, run.args).to(DTYPES[dtype])
                       for name, tensor in opened.model_tensors(group)}
            save_safetensors(tensors, tmp / filename)
            weight_map.update(dict.fromkeys(tensors, filename))
            del tensors
        if len(names) > 1:
            index = {"metadata": {"total_size": sum(size for _, size in sizes)}, "weight_map": weight_map}
            (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
        (tmp / "config.json").write_text(json.dumps(hf_config(run.args, bos_id, eos_id, dtype), indent=2) + "\n")
        generation = {"bos_token_id": bos_id, "eos_token_id": eos_id, "do_sample": True, "temperature": 0.8,
                      "top_p": 0.95}
        (tmp / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
        if tokenizer_model is not None:
            from tokenizer.hf import write_hf_folder

            write_hf_folder(tokenizer_model, tmp)
        (tmp / "herd_export.json").write_text(json.dumps(
            {"run": str(run.run_dir), "checkpoint": str(run.checkpoint), "rotary": "permuted to half-split",
             "tokenizer": str(tokenizer_model) if tokenizer_model else None}, indent=2) + "\n")
        _fsync_folder(tmp)
        os.rename(tmp, out)
    except BaseException as e:
        # Only a whole export is ever named `out`: a partial one is removed, never left to look done.
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            failed = _named_as_final(e, tmp, out)
            line = out_of_space(failed)
            if line is not None:
                raise UserError(f"{line}; nothing was exported ({out} not created, the partial files removed); "
                                "free space and rerun the same command") from None
            raise failed from None
        raise
    return out


def save_safetensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors' save_file; a write that fails is an OSError with its errno, naming `path`."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        save_file(tensors, str(path), metadata={"format": "pt"})
    except SafetensorError as e:
        # The Rust writer reports a failed write as text only: "I/O error: File too large (os error 27)".
        found = re.search(r"\(os error (\d+)\)", str(e))
        if found is None:
            raise
        code = int(found.group(1))
        raise OSError(code, os.strerror(code), str(path)) from None


def _named_as_final(error: OSError, tmp: Path, out: Path) -> OSError:
    """`error` naming the file as it would have been called in `out` (the temporary folder is gone)."""
    name = str(error.filename or "")
    if error.errno is None or not name.startswith(str(tmp)):
        return error
    return OSError(error.errno, os.strerror(error.errno), str(out) + name[len(str(tmp)):])


def _fsync_folder(folder: Path) -> None:
    """Every file of `folder` on disk before the rename names it: a crash after the rename never
    leaves a complete-looking export of empty files."""
    for path in sorted(folder.iterdir()):
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
