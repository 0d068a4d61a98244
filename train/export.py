"""`train export --run runs/NAME --format hf --out DIR`: a Hugging Face LlamaForCausalLM folder
(train/hf_export.py writes it).

Everything that can be refused without torch is refused first, in a fraction of a second: the
run folder, the checkpoint named, an existing --out, a tokenizer the run was not trained with.
Only then is torch loaded (seconds) and the checkpoint converted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.common.cli import path_arg
from train.trained import open_run, refuse_existing, refuse_inside_checkpoints

FORMATS = ("hf",)
DTYPES = ("float32", "bfloat16", "float16")

DESCRIPTION = (
    "Convert a run's checkpoint into a Hugging Face LlamaForCausalLM folder (config.json, "
    "model.safetensors, tokenizer files) that transformers and lm-evaluation-harness load."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=path_arg, required=True, help="run folder, e.g. runs/llama1-tiny")
    parser.add_argument("--checkpoint", help="step number or step-NNNNNNNN folder name (default: the latest)")
    parser.add_argument("--format", default="hf", choices=FORMATS, help="output format (default hf)")
    parser.add_argument("--out", type=path_arg, required=True, help="folder to create; must not exist")
    parser.add_argument("--dtype", default="float32", choices=DTYPES, help="weight dtype (default float32)")
    parser.add_argument("--tokenizer", type=path_arg,
                        help="SentencePiece .model (default: the one the run's token shards name)")


def run(args: argparse.Namespace) -> None:
    run = open_run(args.run, args.checkpoint)
    refuse_existing(Path(args.out))
    refuse_inside_checkpoints(Path(args.out), run)
    run.tokenizer_path(args.tokenizer)  # a tokenizer the run was not trained with is refused here

    from train.hf_export import export_hf  # torch, once nothing above refused the command

    out = export_hf(run, Path(args.out), args.dtype, args.tokenizer)
    print(f"train export: {run.checkpoint} -> {out} (LlamaForCausalLM, {args.dtype})")
    if not (out / "tokenizer.model").exists():
        print(f"train export: warning: no tokenizer model found for {run.run_dir} (pass --tokenizer PATH); "
              "the folder holds weights and config only", file=sys.stderr)
