"""`train data`: what a run will draw from each source, without training.

The same config resolution as `train` (preset, then flags) fixes seq_len, the batch and the
steps; the same sampler (train/sampler.py) says which windows each step draws. Per source: the
tokens available, the windows they make, the sequences and tokens drawn, the exact epochs and how
many times each window is drawn. The tokens available come from the token shards (`--data`), or,
to plan before encoding, from `--available FILE.json` (source -> tokens) or `--available
reference` (the mixture's reference epochs: tokens = proportion x reference total / epochs).
Nothing is read per sequence, so the paper's 1.4T tokens take well under a second.

`--trace FILE` writes one JSON line per sequence the run draws (train/provenance.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from pipeline.common.cli import add_renamed, path_arg
from pipeline.common.config import check_flags
from pipeline.common.errors import InputError, UserError
from pipeline.common.files import check_regular_file
from pipeline.common.units import human
from pipeline.corpus.mixture import Mixture, load_mixture

if TYPE_CHECKING:  # torch loads with train.data: not for --help
    from train.data import MixtureLoader
    from train.sampler import ExactEpochSampler

DESCRIPTION = """\
Show what a training run will draw from each source, without training: per source the tokens
available, the windows of seq-len + 1 tokens they make, the sequences and tokens drawn and the
exact epochs (every window is drawn floor(epochs) or ceil(epochs) times). The run is the one
`train` would make with the same flags (model preset, steps, batch); the world size changes only
which rank draws what, never what is drawn.

  train data --mixture llama1 --model tiny --steps 200                 from data/tokens
  train data --model 65b --available reference                         the paper's 1.4T-token run
  train data --model tiny --steps 10 --trace draws.jsonl               one JSON line per sequence
"""

REFERENCE = "reference"


@dataclass(frozen=True)
class SourceDraws:
    source: str
    proportion: float
    tokens_available: int
    windows: int
    sequences: int
    tokens_drawn: int

    @property
    def epochs(self) -> float:
        return self.sequences / self.windows

    @property
    def times_each_window(self) -> tuple[int, int]:
        """(fewest, most) times any window is drawn."""
        full, partial = divmod(self.sequences, self.windows)
        return full, full + (1 if partial else 0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mixture", type=path_arg, help="mixture name or TOML file (default llama1)")
    tokens = parser.add_argument("--tokens", type=path_arg, dest="data", metavar="DIR",
                                 help="token shard root, one folder per source (default data/tokens)")
    add_renamed(parser, tokens, "--data")
    parser.add_argument("--available", type=path_arg, metavar="FILE.json|reference",
                        help="plan without token shards: a JSON object of source -> tokens available, or "
                        f"'{REFERENCE}' for the mixture's reference epochs (llama1: the paper's Table 1)")
    parser.add_argument("--model", help="preset: debug, tiny, 1b, 7b, 13b, 33b, 65b (default tiny)")
    parser.add_argument("--steps", type=int, help="optimizer steps (default: the preset's)")
    parser.add_argument("--seq-len", type=int, help="context length (default: the preset's)")
    parser.add_argument("--micro-batch", type=int, help="sequences per forward/backward (default: the preset's)")
    parser.add_argument("--batch-tokens", type=int, help="tokens per optimizer step (default: the preset's)")
    parser.add_argument("--world-size", type=int, default=1, help="data-parallel ranks (default %(default)s)")
    parser.add_argument("--seed", type=int, help="seed of the batches drawn (default 0)")
    parser.add_argument("--skip-missing-sources", action="store_const", const=True,
                        help="leave out mixture sources without token shards and renormalise the rest")
    parser.add_argument("--trace", type=path_arg, metavar="FILE", help="write one JSON line per sequence the run draws")
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar while tracing")


TRAIN_FLAGS = ("mixture", "data", "model", "steps", "seq_len", "micro_batch", "batch_tokens", "seed",
               "skip_missing_sources")


def run(args: argparse.Namespace) -> None:
    # torch loads with train.config: not for --help
    from train.config import MAX_RANKS, load_overrides, refuse_preset_markers, resolve

    check_flags(args, {"world_size": Annotated[int, Field(ge=1, le=MAX_RANKS)]})
    if args.available and args.data:
        raise UserError("--available plans without token shards: pass it or --tokens, not both")
    if args.trace:
        # Its temporary is renamed over it: a FIFO or a device there (/dev/null) would be replaced.
        check_regular_file(args.trace, "a trace file to write")
    flags = {key: getattr(args, key) for key in TRAIN_FLAGS}
    refuse_preset_markers(flags)
    config = load_overrides(None, flags)
    resolved = resolve(config, world_size=args.world_size)
    cfg = resolved.train
    mixture = load_mixture(cfg.mixture)
    loader = None
    if args.available:
        available = read_available(args.available, mixture)
        names, proportions = list(available), [mixture.proportions[name] for name in available]
        from train.sampler import ExactEpochSampler, window_count

        too_small = [name for name, tokens in available.items() if tokens < cfg.seq_len + 1]
        if too_small:
            raise InputError(args.available, f"source '{too_small[0]}' has fewer tokens than one sequence of "
                             f"{cfg.seq_len + 1}")
        sampler = ExactEpochSampler(names, [window_count(available[n], cfg.seq_len) for n in names], proportions,
                                    seq_len=cfg.seq_len, seed=cfg.seed)
    else:
        from train.data import MixtureLoader, open_mixture

        data = open_mixture(Path(cfg.data), mixture, skip_missing=cfg.skip_missing_sources)
        loader = MixtureLoader(data.sources, data.proportions, seq_len=cfg.seq_len, micro_batch=cfg.micro_batch,
                               batch_tokens=cfg.batch_tokens, seed=cfg.seed)
        sampler = loader.sampler
        available = {s.name: s.tokens for s in data.sources}
    step_sequences = cfg.batch_tokens // cfg.seq_len
    counts = sampler.sequences_drawn(cfg.steps * step_sequences)
    rows = [SourceDraws(name, share, available[name], int(windows), counts[name], counts[name] * cfg.seq_len)
            for name, share, windows in zip(sampler.names, sampler.proportions, sampler.windows)]
    summary = {"mixture": mixture.name, "model": cfg.model, "steps": cfg.steps, "seq_len": cfg.seq_len,
               "batch_tokens": cfg.batch_tokens, "micro_batch": cfg.micro_batch, "world_size": args.world_size,
               "grad_accum": resolved.grad_accum, "tokens": cfg.steps * cfg.batch_tokens, "seed": cfg.seed}
    if args.json:
        print(json.dumps({**summary, "sources": [as_json(row) for row in rows]}, indent=2))
    else:
        print(format_table(summary, rows, mixture))
    if args.trace:
        write_trace(Path(args.trace), sampler, loader, cfg.steps, step_sequences=step_sequences,
                    micro_batch=cfg.micro_batch, data_ranks=args.world_size, progress=not args.no_progress)


# The most tokens a source may have here: window counts are int64 (the paper's largest source had
# about 10^12 tokens); a larger number in --available is a typo, not data.
MAX_TOKENS = 10**18


def read_available(spec: str, mixture: Mixture) -> dict[str, int]:
    """Tokens available per source of the mixture (in its order), from a JSON file or its reference."""
    wanted = [name for name, share in mixture.proportions.items() if share > 0]
    if spec == REFERENCE:
        missing = [name for name in wanted if not mixture.reference_epochs.get(name)]
        if not mixture.reference_tokens or missing:
            raise UserError(f"mixture '{mixture.name}' has no reference epochs{f' for {missing[0]}' if missing else ''}"
                            " and total: pass --available FILE.json")
        return {name: round(mixture.proportions[name] * mixture.reference_tokens / mixture.reference_epochs[name])
                for name in wanted}
    check_regular_file(spec, "a JSON file")  # a FIFO would block the open, /dev/zero never end
    try:
        table = json.loads(Path(spec).read_text())
    except FileNotFoundError:
        raise InputError(spec, "does not exist") from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise InputError(spec, f"not a readable JSON file ({e})") from None
    if not isinstance(table, dict):
        raise InputError(spec, "must be a JSON object of source -> tokens available")
    missing = [name for name in wanted if name not in table]
    if missing:
        raise InputError(spec, f"no tokens for source '{missing[0]}' of mixture '{mixture.name}'")
    stray = sorted(set(table) - set(wanted))
    if stray:
        raise InputError(spec, f"source '{stray[0]}' is not in mixture '{mixture.name}'")
    for name in wanted:
        if not isinstance(table[name], int) or isinstance(table[name], bool) or not 1 <= table[name] <= MAX_TOKENS:
            raise InputError(spec, f"tokens of '{name}' must be a positive integer up to 10^18, got {table[name]!r}")
    return {name: table[name] for name in wanted}


def as_json(row: SourceDraws) -> dict[str, Any]:
    fewest, most = row.times_each_window
    return {"source": row.source, "proportion": row.proportion, "tokens_available": row.tokens_available,
            "windows": row.windows, "sequences": row.sequences, "tokens_drawn": row.tokens_drawn,
            "epochs": row.epochs, "times_each_window": [fewest, most]}


def format_table(summary: dict[str, Any], rows: list[SourceDraws], mixture: Mixture) -> str:
    header = ["source", "proportion", "tokens available", "windows", "sequences", "tokens drawn", "epochs",
              "each window drawn"]
    reference = bool(mixture.reference_epochs)
    if reference:
        header.append("paper epochs")
    lines = []
    for row in rows:
        fewest, most = row.times_each_window
        cells = [row.source, f"{row.proportion * 100:.2f}%", human(row.tokens_available), human(row.windows),
                 human(row.sequences), human(row.tokens_drawn), f"{row.epochs:.4f}",
                 f"{fewest} times" if fewest == most else f"{fewest} or {most} times"]
        if reference:
            paper = mixture.reference_epochs.get(row.source)
            cells.append(f"{paper:.2f}" if paper is not None else "-")
        lines.append(cells)
    widths = [max(len(c) for c in column) for column in zip(header, *lines)]
    out = [f"mixture {summary['mixture']}, model {summary['model']}: {summary['steps']:,} steps x "
           f"{summary['batch_tokens']:,} tokens = {human(summary['tokens'])} tokens ({summary['tokens']:,}); "
           f"seq-len {summary['seq_len']}, {summary['world_size']} rank(s) x {summary['grad_accum']} micro-batches "
           f"of {summary['micro_batch']}"]
    for cells in [header, *lines]:
        out.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths))))
    return "\n".join(out)


def write_trace(path: Path, sampler: ExactEpochSampler, loader: MixtureLoader | None, steps: int, *,
                step_sequences: int, micro_batch: int, data_ranks: int, progress: bool) -> None:
    """One JSON line per sequence of the run, written under a temporary name, then renamed."""
    from tqdm import tqdm

    from train.provenance import NO_DOCUMENT_IDS, step_rows

    documents = loader.documents_of if loader is not None and loader.has_document_ids else None
    if documents is None:
        print(f"note: {NO_DOCUMENT_IDS}", file=sys.stderr)
    partial = path.with_name(path.name + ".tmp")
    try:
        with open(partial, "w") as out:
            for step in tqdm(range(steps), desc="trace", unit="step", disable=not progress, mininterval=0.5):
                for row in step_rows(sampler, step, step_sequences=step_sequences, micro_batch=micro_batch,
                                     data_ranks=data_ranks, documents=documents):
                    out.write(json.dumps(row) + "\n")
        os.replace(partial, path)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise InputError(str(path), f"cannot write the trace ({e.strerror})") from None
    print(f"trace: {steps * step_sequences:,} sequences -> {path}", file=sys.stderr)
