"""`train generate --run runs/NAME --prompt TEXT`: text sampled from a checkpoint, streamed as it
is generated (train/sampling.py samples it).

The run folder, the checkpoint named, the sampling flags, --prompt-ids and the tokenizer are
checked before torch loads (seconds): a wrong one is one line at once.
"""

from __future__ import annotations

import argparse
import math
import sys

from pipeline.common.cli import path_arg
from pipeline.common.config import check_flags
from pipeline.common.errors import UserError
from train.trained import open_run

DESCRIPTION = "Sample text from a run's checkpoint with a KV cache, printing it as it is generated."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=path_arg, required=True, help="run folder, e.g. runs/llama1-tiny")
    parser.add_argument("--checkpoint", help="step number or step-NNNNNNNN folder name (default: the latest)")
    prompt = parser.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--prompt", help="text to continue (needs the run's tokenizer)")
    prompt.add_argument("--prompt-ids", help="token ids to continue, space-separated; prints ids")
    parser.add_argument("--max-tokens", type=int, default=128, help="new tokens at most (default 128)")
    parser.add_argument("--temperature", type=float, default=0.8, help="0 for greedy (default 0.8)")
    parser.add_argument("--top-p", type=float, default=0.95, help="nucleus mass kept (default 0.95)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokenizer", type=path_arg,
                        help="SentencePiece .model (default: the one the run's token shards name)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")


def run(args: argparse.Namespace) -> None:
    # Written so that NaN fails each test (every comparison with NaN is false): --temperature nan
    # reached torch's sampler and ended in its RuntimeError.
    if args.max_tokens < 1 or not 0 < args.top_p <= 1 or not 0 <= args.temperature < math.inf:
        raise UserError("--max-tokens must be at least 1, --top-p in (0, 1], --temperature at least 0 and finite")
    check_flags(args, {"max_tokens": int, "seed": int})  # an int64, as torch's generator takes its seed
    run = open_run(args.run, args.checkpoint)
    bos_id, eos_id = run.special_ids()
    prompt_ids = None
    tokenizer_path = None
    if args.prompt_ids is not None:
        try:
            prompt_ids = [int(t) for t in args.prompt_ids.split()]
        except ValueError:
            raise UserError(f"--prompt-ids: expected integers separated by spaces, got {args.prompt_ids!r}") from None
        if any(not 0 <= t < run.args.vocab_size for t in prompt_ids):
            raise UserError(f"--prompt-ids: ids must be in [0, {run.args.vocab_size})")
    else:
        tokenizer_path = run.tokenizer_path(args.tokenizer)
        if tokenizer_path is None:
            raise UserError(f"{run.run_dir}: the tokenizer its token shards name was not found; pass --tokenizer PATH "
                            "or --prompt-ids")

    # torch, once nothing above refused the command
    from train.sampling import Sampling, generate
    from train.weights import load_model

    sampling = Sampling(args.max_tokens, args.temperature, args.top_p, args.seed)
    if prompt_ids is not None:
        model = load_model(run, args.device)
        for token in generate(model, prompt_ids, sampling, eos_id):
            print(token, end=" ", flush=True)
        print()
        return
    import sentencepiece as spm

    tokenizer = spm.SentencePieceProcessor(model_file=str(tokenizer_path))
    model = load_model(run, args.device)
    prompt = [bos_id] + tokenizer.encode(args.prompt)
    # Decode prompt and continuation together: a piece's leading space only shows after other
    # text, and pieces only become text once a multi-byte character is whole.
    shown = tokenizer.decode(prompt[1:])
    sys.stdout.write(shown)
    new: list[int] = []
    for token in generate(model, prompt, sampling, eos_id):
        if token == eos_id:
            break
        new.append(token)
        text = tokenizer.decode(prompt[1:] + new)
        if text.startswith(shown) and not text.endswith("\ufffd"):
            sys.stdout.write(text[len(shown):])
            sys.stdout.flush()
            shown = text
    print()
