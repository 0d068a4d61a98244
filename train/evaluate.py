"""`train eval --run runs/NAME`: held-out loss and perplexity of a checkpoint, per source and for
the mixture, printed as a table and saved as JSON (train/heldout.py scores them).

The run folder, the checkpoint named, --seq-len, --max-tokens and the mixture are checked before
torch loads (seconds), and the held-out token shards (made with the run's tokenizer?) before the
model is: a wrong one is one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.common.cli import add_renamed, path_arg
from pipeline.common.config import check_flags
from pipeline.common.errors import UserError
from pipeline.common.files import check_regular_file, write_json_atomic
from pipeline.corpus.mixture import load_mixture
from train.trained import open_run

DESCRIPTION = """\
Loss and perplexity of a run's checkpoint on held-out token shards (each source's heldout-NNNNN.bin
split, written by `tokenizer encode`), per source and for the mixture; a table and a JSON file.
A source's loss is the mean next-token cross-entropy (nats per token) over consecutive windows of
context + 1 tokens from the start of its split, at most --max-tokens predicted tokens; its
perplexity is exp(loss). The mixture's loss is the mean of the sources' losses weighted by the
mixture's proportions (renormalised over the sources with a held-out split). No downstream
benchmarks."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=path_arg, required=True, help="run folder, e.g. runs/llama1-tiny")
    parser.add_argument("--checkpoint", help="step number or step-NNNNNNNN folder name (default: the latest)")
    tokens = parser.add_argument("--tokens", type=path_arg, metavar="DIR",
                                 help="token root with held-out splits (default: the run's)")
    add_renamed(parser, tokens, "--data")
    parser.add_argument("--mixture", type=path_arg, help="mixture weighting the sources (default: the run's)")
    parser.add_argument("--seq-len", type=int, help="window length (default: the run's context)")
    parser.add_argument("--max-tokens", type=int, default=1_000_000, help="tokens scored per source at most "
                        "(default 1,000,000)")
    parser.add_argument("--out", type=path_arg, help="JSON file (default <run>/eval.json)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")


def run(args: argparse.Namespace) -> None:
    check_flags(args, {"seq_len": int, "max_tokens": int})  # int64s; the run's context bounds --seq-len below
    run = open_run(args.run, args.checkpoint)
    seq_len = args.seq_len or int(run.config["train"]["seq_len"])
    if not 1 <= seq_len <= run.args.max_seq_len or args.max_tokens < 1:
        raise UserError(f"--seq-len must be in [1, {run.args.max_seq_len}] and --max-tokens at least 1")
    mixture = load_mixture(args.mixture or run.mixture)
    out = Path(args.out) if args.out else run.run_dir / "eval.json"
    # Before minutes of scoring; the JSON is renamed over it, which would replace a FIFO or a device.
    check_regular_file(out, "a JSON file to write")

    # torch, once nothing above refused the command
    from train.heldout import open_heldout, score
    from train.weights import load_model

    heldout = open_heldout(Path(args.tokens) if args.tokens else run.data_root, dict(mixture.proportions),
                           run.check_tokens)
    model = load_model(run, args.device)
    result = score(model, heldout, seq_len, args.max_tokens)
    result["run"], result["checkpoint"] = str(run.run_dir), str(run.checkpoint)
    write_json_atomic(out, result)  # a reader (or a second eval) never sees half a file
    print(f"held-out perplexity of {run.checkpoint}:")
    print(format_table(result))
    print(f"saved {out}")


def format_table(result: dict) -> str:
    lines = [f"{'source':<16}{'tokens':>10}{'nll':>9}{'perplexity':>12}"]
    for s in result["sources"]:
        lines.append(f"{s['source']:<16}{s['tokens']:>10,}{s['nll']:>9.4f}{s['perplexity']:>12.3f}")
    m = result["mixture"]
    lines.append(f"{'mixture':<16}{sum(s['tokens'] for s in result['sources']):>10,}{m['nll']:>9.4f}"
                 f"{m['perplexity']:>12.3f}")
    if result["without_heldout"]:
        lines.append(f"(no held-out split: {', '.join(result['without_heldout'])})")
    return "\n".join(lines)
