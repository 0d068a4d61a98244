"""`pipeline mix`: what a mixture draws from each source, in the shape of the paper's Table 1.

Per source: the proportion, the tokens available (counted from token shards when `tokenizer
encode` has run, else estimated from the corpus's text bytes), the tokens a run of N tokens
draws and the epochs that implies. These are the epochs a training run draws, not an expectation:
the trainer walks every source's windows epoch by epoch (train/sampler.py), so a source at 1.10
epochs has every token drawn once or twice; `train data` shows a run's exact counts for its batch
and context length. The mixtures themselves live in pipeline/corpus/mixture.py.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.common.cli import add_renamed, path_arg
from pipeline.common.errors import UserError
from pipeline.common.files import check_regular_file, file_sha256
from pipeline.common.units import human
from pipeline.common.warn import warn
from pipeline.engine.shards import corpus_size
from pipeline.corpus.mixture import MIXTURES, Mixture, exact_fractions, largest_remainder, load_mixture
from tokenizer.token_shards import META, check_same_tokenizer, check_tokenizer, read_meta

# LLaMA's tokenizer averages roughly 4 bytes of English text per token; code and other
# scripts take fewer. Only used before `tokenizer encode` has counted the real tokens.
DEFAULT_BYTES_PER_TOKEN = 4.0
DEFAULT_MAX_EPOCHS = 3.0  # the paper's most repeated source, Wikipedia, sees 2.45


@dataclass(frozen=True)
class SourcePlan:
    source: str
    proportion: float
    available: int  # tokens available (counted or estimated); 0 when the source has no data
    counted: bool  # True when counted from token shards, False when estimated from bytes
    drawn: int  # tokens a run of the requested total draws from this source

    @property
    def epochs(self) -> float:
        return self.drawn / self.available if self.available else math.inf


def plan(
    mixture: Mixture,
    total_tokens: int,
    corpus_root: Path,
    tokens_root: Path,
    tokenizer: Path | None = None,
    bytes_per_token: float = DEFAULT_BYTES_PER_TOKEN,
) -> list[SourcePlan]:
    """Per source: tokens available, tokens drawn for `total_tokens`, hence epochs.

    Token counts of different tokenizers cannot be added up: the sources' token shards must
    share one tokenizer, and `tokenizer` when that file exists.
    """
    folders = {source: tokens_root / source for source in mixture.sources()}
    # exists(), not is_encoded(): a meta.json that is not a readable file is refused, not skipped.
    metas = {source: read_meta(folder) for source, folder in folders.items() if (folder / META).exists()}
    if tokenizer is not None and tokenizer.exists():
        check_regular_file(tokenizer, "a tokenizer model")  # hashing a FIFO would wait for a writer
        sha256 = file_sha256(tokenizer)
        for source, meta in metas.items():
            check_tokenizer(meta, sha256, str(tokenizer), folders[source])
    check_same_tokenizer({folders[source]: meta for source, meta in metas.items()})
    rows = []
    shares = largest_remainder(exact_fractions(list(mixture.proportions.values())), total_tokens)
    for (source, proportion), drawn in zip(mixture.proportions.items(), shares):
        if source in metas:
            available, counted = int(metas[source]["splits"]["train"]["tokens"]), True
        else:
            size = corpus_size(corpus_root / source)
            available, counted = (round(size.text_bytes / bytes_per_token) if size else 0), False
        rows.append(SourcePlan(source, proportion, available, counted, drawn))
    return rows


def parse_tokens(text: str) -> int:
    """'1.4T', '300B', '2e9', '1_000_000' -> an integer count."""
    match = re.fullmatch(r"\s*([0-9_.eE+]+)\s*([kKmMbBtT]?)\s*", text)
    scale = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}
    try:
        if not match:
            raise ValueError
        value = float(match.group(1).replace("_", "")) * scale[match.group(2).lower()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a token count: {text!r} (examples: 1.4T, 300B, 2e9)") from None
    if not 0 < value < 1e18:  # 1e999 is inf: no count, and no integer either
        raise argparse.ArgumentTypeError(f"the token count must be positive and below 1e18, got {text!r}")
    return round(value)


def format_table(mixture: Mixture, total_tokens: int, rows: list[SourcePlan]) -> str:
    header = ["source", "proportion", "tokens available", "counted from", "tokens drawn", "epochs"]
    show_reference = bool(mixture.reference_epochs)
    if show_reference:
        header.append(f"paper epochs at {human(mixture.reference_tokens)}" if mixture.reference_tokens
                      else "reference epochs")
    lines = []
    for row in rows:
        cells = [
            row.source,
            f"{row.proportion * 100:.1f}%",
            human(row.available) if row.available else "none",
            ("token shards" if row.counted else "corpus bytes (est.)") if row.available else "-",
            human(row.drawn),
            (f"{row.epochs:.2f}" if row.epochs < 1e4 else human(row.epochs)) if row.available else "-",
        ]
        if show_reference:
            ref = mixture.reference_epochs.get(row.source)
            cells.append(f"{ref:.2f}" if ref is not None else "-")
        lines.append(cells)
    total = ["total", f"{sum(r.proportion for r in rows) * 100:.1f}%",
             human(sum(r.available for r in rows)), "", human(sum(r.drawn for r in rows)), ""]
    if show_reference:
        total.append("")
    lines.append(total)
    widths = [max(len(str(c)) for c in column) for column in zip(header, *lines)]
    out = [f"mixture {mixture.name}: {human(total_tokens)} tokens ({total_tokens:,})"]
    for i, cells in enumerate([header, *lines]):
        if i == len(lines):  # a rule above the total
            out.append("  ".join("-" * w for w in widths))
        out.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths))))
    return "\n".join(out)


DESCRIPTION = """\
Show what a mixture draws from each source for a run of N tokens: proportion, tokens available
(counted from token shards when `tokenizer encode` has run, else estimated from the corpus's text
bytes), tokens drawn and the epochs that implies, like the paper's Table 1. The trainer draws
exactly these epochs (every token of a source at 1.10 epochs seen once or twice, never some of it
unseen); `train data` shows a run's exact counts. Warns when a source would be repeated more than
--max-epochs times.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mixture", type=path_arg, default="llama1",
                        help=f"a named mixture ({', '.join(MIXTURES)}) or a TOML file (default %(default)s)")
    total = parser.add_argument("--total-tokens", type=parse_tokens, metavar="N",
                                help="total training tokens, e.g. 1.4T, 300B, 2e9 (default: the mixture's reference "
                                "total, 1.4T for llama1)")
    # The old `--tokens N` is the count; it cannot also be the token root (`--tokens DIR` elsewhere):
    # "300B" is a count and a folder name alike. The token root is --token-shards here.
    add_renamed(parser, total, "--tokens")
    corpus = parser.add_argument("--corpus", type=path_arg, default="data/corpus", metavar="DIR",
                                 help="corpus root (default %(default)s)")
    add_renamed(parser, corpus, "--data")
    parser.add_argument("--token-shards", type=path_arg, default="data/tokens", metavar="DIR",
                        help="token shard root (default %(default)s)")
    parser.add_argument("--tokenizer", type=path_arg, default="data/tokenizer/llama1.model",
                        help="tokenizer the token shards must have been encoded with, checked when the file "
                        "exists (default %(default)s)")
    parser.add_argument("--max-epochs", type=float, default=DEFAULT_MAX_EPOCHS,
                        help="warn when a source would be repeated more than this many times (default %(default)s)")
    parser.add_argument("--bytes-per-token", type=float, default=DEFAULT_BYTES_PER_TOKEN,
                        help="text bytes per token for estimates before encoding (default %(default)s)")


def run(options: argparse.Namespace) -> None:
    mixture = load_mixture(options.mixture)
    total = options.total_tokens or mixture.reference_tokens
    if not total:
        raise UserError(f"mixture '{mixture.name}' has no reference total: pass --total-tokens N")
    # A token covers at least one byte (byte fallback) and SentencePiece's longest pieces a few
    # dozen: outside that an estimate is a typo (1e308 counted no corpus; 1e-300 printed 300 digits).
    if not 1 <= options.bytes_per_token <= 64 or not options.max_epochs > 0:  # NaN fails both
        raise UserError("--bytes-per-token must be between 1 and 64, --max-epochs positive")
    rows = plan(mixture, total, Path(options.corpus), Path(options.token_shards), Path(options.tokenizer),
                options.bytes_per_token)
    if not any(r.available for r in rows):
        raise UserError(f"{options.corpus}: no corpus shards or token shards for any source of mixture "
                        f"'{mixture.name}' (run `pipeline run all` first)")
    print(format_table(mixture, total, rows))
    for row in rows:
        if not row.available:
            warn(f"warning: {row.source}: no corpus or token shards found, nothing to draw from")
        elif row.epochs > options.max_epochs:
            epochs = f"{row.epochs:.2f}" if row.epochs < 1e4 else human(row.epochs)
            warn(f"warning: {row.source}: {epochs} epochs, more than the repeat cap of "
                 f"{options.max_epochs:g} (--max-epochs)")
