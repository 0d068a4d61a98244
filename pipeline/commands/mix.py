"""Named mixtures: how much of each source a tokenizer sample or a training run draws.

`llama1` is the paper's Table 1: sampling proportions and the epochs each source sees over
1.4T tokens. Custom mixtures come from TOML files (see `load_mixture`):

    name = "mine"            # optional, default: the file's stem
    reference_tokens = 0     # optional: the total the reference epochs refer to
    [proportions]            # source -> share of sampled tokens, summing to 1
    c4 = 0.6
    wikipedia = 0.4
    [reference_epochs]       # optional: epochs reported elsewhere, shown beside ours
    c4 = 1.0

`pipeline mix` prints, per source, the proportion, the tokens available (counted from token
shards when `tokenizer encode` has run, else estimated from the corpus's text bytes), the
tokens a run of N tokens draws and the epochs that implies, in the shape of Table 1.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.common.errors import UserError
from sources import REGISTRY


@dataclass(frozen=True)
class Mixture:
    name: str
    proportions: dict[str, float]  # source -> share of sampled tokens, summing to 1
    reference_epochs: dict[str, float] = field(default_factory=dict)  # what the paper reports, if known
    reference_tokens: int = 0  # the total the reference epochs refer to

    def sources(self) -> list[str]:
        return list(self.proportions)


LLAMA1 = Mixture(
    name="llama1",
    proportions={
        "commoncrawl": 0.670,
        "c4": 0.150,
        "github": 0.045,
        "wikipedia": 0.045,
        "books": 0.045,
        "arxiv": 0.025,
        "stackexchange": 0.020,
    },
    reference_epochs={
        "commoncrawl": 1.10,
        "c4": 1.06,
        "github": 0.64,
        "wikipedia": 2.45,
        "books": 2.23,
        "arxiv": 1.06,
        "stackexchange": 1.03,
    },
    reference_tokens=1_400_000_000_000,
)

MIXTURES: dict[str, Mixture] = {"llama1": LLAMA1}

SUM_TOLERANCE = 1e-6
# LLaMA's tokenizer averages roughly 4 bytes of English text per token; code and other
# scripts take fewer. Only used before `tokenizer encode` has counted the real tokens.
DEFAULT_BYTES_PER_TOKEN = 4.0
DEFAULT_MAX_EPOCHS = 3.0  # the paper's most repeated source, Wikipedia, sees 2.45


def load_mixture(name_or_path: str | Path) -> Mixture:
    """A named mixture (`llama1`) or one read from a TOML file, validated.

    Raises UserError when the file is missing or malformed, names a source that does not
    exist, or its proportions do not sum to 1.
    """
    key = str(name_or_path)
    if key in MIXTURES:
        return MIXTURES[key]
    path = Path(key)
    if not path.exists():
        if path.suffix != ".toml" and "/" not in key:
            raise UserError(f"unknown mixture '{key}' (named: {', '.join(MIXTURES)}; or give a .toml file)")
        raise UserError(f"{path}: mixture file does not exist")
    from pipeline.common.config import read_toml

    table = read_toml(path)
    unknown = set(table) - {"name", "proportions", "reference_epochs", "reference_tokens"}
    if unknown:
        raise UserError(f"{path}: unknown key(s) {sorted(unknown)} (known: name, proportions, "
                        "reference_epochs, reference_tokens)")
    proportions = table.get("proportions")
    if not isinstance(proportions, dict) or not proportions:
        raise UserError(f"{path}: needs a [proportions] table of source = share")
    mixture = Mixture(
        name=str(table.get("name", path.stem)),
        proportions={str(k): _number(v, path, f"proportions.{k}") for k, v in proportions.items()},
        reference_epochs={str(k): _number(v, path, f"reference_epochs.{k}")
                          for k, v in dict(table.get("reference_epochs", {})).items()},
        reference_tokens=int(_number(table.get("reference_tokens", 0), path, "reference_tokens")),
    )
    validate(mixture, str(path))
    return mixture


def _number(value: object, path: Path, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
        raise UserError(f"{path}: {key} must be a number >= 0, got {value!r}")
    return float(value)


def validate(mixture: Mixture, where: str) -> None:
    """Every source exists in the registry and the proportions sum to 1."""
    unknown = [s for s in mixture.proportions if s not in REGISTRY]
    if unknown:
        raise UserError(f"{where}: unknown source(s) {unknown} in mixture '{mixture.name}' "
                        f"(known: {', '.join(REGISTRY)})")
    total = sum(mixture.proportions.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise UserError(f"{where}: proportions of mixture '{mixture.name}' sum to {total:.6g}, not 1")
    stray = set(mixture.reference_epochs) - set(mixture.proportions)
    if stray:
        raise UserError(f"{where}: reference_epochs names source(s) {sorted(stray)} not in the proportions")


# ---------------------------------------------------------------------------------------
# What the corpus and the token shards hold


@dataclass(frozen=True)
class CorpusSize:
    documents: int
    text_bytes: int  # UTF-8 bytes of the text column, the unit the tokenizer sample is drawn in


def string_offsets(array: pa.Array) -> np.ndarray:
    """The offsets of a string column's values (length + 1), read without touching the text."""
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=width)
    return offsets[array.offset:array.offset + len(array) + 1].astype(np.int64)


def string_bytes(array: pa.Array) -> int:
    """UTF-8 bytes held by a string column."""
    if len(array) == 0:
        return 0
    offsets = string_offsets(array)
    return int(offsets[-1] - offsets[0])


def corpus_size(folder: Path) -> CorpusSize | None:
    """Documents and text bytes of a source's corpus shards; None when there are none.

    Reads only the Arrow metadata and the text column's offsets through a memory map, so it
    costs a few pages per record batch, not a pass over the text.
    """
    from pipeline.engine.shards import shard_paths

    paths = [p for p in shard_paths(folder) if p.exists()] if folder.is_dir() else []
    if not paths:
        return None
    sizes = [shard_text_size(path) for path in paths]
    return CorpusSize(sum(d for d, _ in sizes), sum(b for _, b in sizes))


def shard_text_size(path: Path) -> tuple[int, int]:
    """(documents, UTF-8 bytes of text) of one corpus shard, from its offsets only."""
    documents = text_bytes = 0
    try:
        with pa.memory_map(str(path)) as source:
            for batch in pa.ipc.open_stream(source):
                documents += batch.num_rows
                text_bytes += string_bytes(batch.column("text"))
    except (OSError, pa.ArrowException) as e:
        raise UserError(f"{path}: unreadable corpus shard ({e})") from None
    return documents, text_bytes


def token_meta(folder: Path) -> dict | None:
    """The token shards' meta.json of one source, or None when it has not been encoded."""
    path = folder / "meta.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable token shard metadata ({e})") from None


def check_same_tokenizer(metas: dict[str, dict], tokenizer: Path | None) -> str | None:
    """The one tokenizer hash every source's token shards share (and `tokenizer`, if given).

    Token counts from different tokenizers cannot be mixed: raises UserError naming both.
    """
    expected: str | None = None
    expected_from = ""
    if tokenizer is not None and tokenizer.exists():
        from pipeline.common.files import file_sha256

        expected, expected_from = file_sha256(tokenizer), str(tokenizer)
    for source, meta in metas.items():
        digest = meta.get("tokenizer_sha256")
        if expected is None:
            expected, expected_from = digest, f"the token shards of {source}"
        elif digest != expected:
            raise UserError(
                f"the token shards of {source} were encoded with tokenizer sha256 {str(digest)[:12]}, "
                f"but {expected_from} has {expected[:12]}: refusing to mix them (re-encode with "
                "`tokenizer encode --restart`)"
            )
    return expected


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
    """Per source: tokens available, tokens drawn for `total_tokens`, hence epochs."""
    metas = {s: m for s in mixture.sources() if (m := token_meta(tokens_root / s)) is not None}
    check_same_tokenizer(metas, tokenizer)
    rows = []
    for source, proportion in mixture.proportions.items():
        drawn = round(proportion * total_tokens)
        if source in metas:
            available, counted = int(metas[source]["splits"]["train"]["tokens"]), True
        else:
            size = corpus_size(corpus_root / source)
            available, counted = (round(size.text_bytes / bytes_per_token) if size else 0), False
        rows.append(SourcePlan(source, proportion, available, counted, drawn))
    return rows


# ---------------------------------------------------------------------------------------
# `pipeline mix`


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


def human(count: float) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(count) >= size:
            return f"{count / size:.2f}{unit}"
    return f"{count:.0f}"


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline mix",
        description="Show what a mixture draws from each source for a run of N tokens: proportion, tokens "
        "available (counted from token shards when `tokenizer encode` has run, else estimated from the corpus's "
        "text bytes), tokens drawn and the epochs that implies, like the paper's Table 1. Warns when a source "
        "would be repeated more than --max-epochs times.",
    )
    parser.add_argument("--mixture", default="llama1",
                        help=f"a named mixture ({', '.join(MIXTURES)}) or a TOML file (default %(default)s)")
    parser.add_argument("--tokens", type=parse_tokens,
                        help="total training tokens, e.g. 1.4T, 300B, 2e9 (default: the mixture's reference total, "
                        "1.4T for llama1)")
    parser.add_argument("--data", default="data/corpus", help="corpus root (default %(default)s)")
    parser.add_argument("--token-shards", default="data/tokens", help="token shard root (default %(default)s)")
    parser.add_argument("--tokenizer", default="data/tokenizer/llama1.model",
                        help="tokenizer the token shards must have been encoded with, checked when the file "
                        "exists (default %(default)s)")
    parser.add_argument("--max-epochs", type=float, default=DEFAULT_MAX_EPOCHS,
                        help="warn when a source would be repeated more than this many times (default %(default)s)")
    parser.add_argument("--bytes-per-token", type=float, default=DEFAULT_BYTES_PER_TOKEN,
                        help="text bytes per token for estimates before encoding (default %(default)s)")
    return parser


def command(args: argparse.Namespace) -> None:
    """`pipeline mix`: the CLI hands over the remaining arguments in args.rest."""
    options = build_parser().parse_args(getattr(args, "rest", []) or [])
    mixture = load_mixture(options.mixture)
    total = options.tokens or mixture.reference_tokens
    if not total:
        raise UserError(f"mixture '{mixture.name}' has no reference total: pass --tokens N")
    if options.bytes_per_token <= 0 or options.max_epochs <= 0:
        raise UserError("--bytes-per-token and --max-epochs must be positive")
    rows = plan(mixture, total, Path(options.data), Path(options.token_shards), Path(options.tokenizer),
                options.bytes_per_token)
    if not any(r.available for r in rows):
        raise UserError(f"{options.data}: no corpus shards or token shards for any source of mixture "
                        f"'{mixture.name}' (run `pipeline run all` first)")
    print(format_table(mixture, total, rows))
    for row in rows:
        if not row.available:
            print(f"warning: {row.source}: no corpus or token shards found, nothing to draw from", file=sys.stderr)
        elif row.epochs > options.max_epochs:
            epochs = f"{row.epochs:.2f}" if row.epochs < 1e4 else human(row.epochs)
            print(f"warning: {row.source}: {epochs} epochs, more than the repeat cap of "
                  f"{options.max_epochs:g} (--max-epochs)", file=sys.stderr)
