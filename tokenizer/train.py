"""SentencePiece BPE training with LLaMA's settings on a mixture sample of the corpus.

Writes `OUT/<mixture>.model`, `OUT/<mixture>.vocab` and `OUT/<mixture>.json`: the
settings, the model's sha256 and vocabulary size, and the sample (documents and bytes per
source, and what happened to a source short of text).

The model file depends on the sample and the settings alone: the trainer spec names the sample
`<mixture>.sample.txt` and the prefix `<mixture>` instead of the paths trained from, and holds no
thread count, so the same corpus and seed give the same bytes (and sha256) in any --out folder
and with any --threads.

A corpus too small for the requested vocabulary (the laptop sample) is an error naming the
largest size it supports, unless `allow_smaller_vocab` is set: then SentencePiece's
hard_vocab_limit is off and the model keeps every piece the sample supports (the JSON records
requested and actual sizes; everything downstream reads the size from the model).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm

from pipeline.common.cli import add_renamed
from pipeline.common.errors import UserError, sigterm_ends_at_once
from pipeline.common.files import file_sha256, plain_name, write_json_atomic
from pipeline.common.lock import folder_lock
from pipeline.corpus.mixture import Mixture, load_mixture
from tokenizer.sample import draw_sample

# LLaMA-1's trainer spec as stored in its tokenizer.model (the Llama 2 paper: "same tokenizer").
LLAMA_SETTINGS: dict[str, object] = {
    "model_type": "bpe",
    "split_digits": True,
    "byte_fallback": True,
    "normalization_rule_name": "identity",
    "add_dummy_prefix": True,
    "remove_extra_whitespaces": False,
    "allow_whitespace_only_pieces": True,
    "character_coverage": 0.99995,
    "max_sentencepiece_length": 16,
    "max_sentence_length": 4192,
    "split_by_unicode_script": True,
    "split_by_whitespace": True,
    "split_by_number": True,
    "unk_id": 0,
    "bos_id": 1,
    "eos_id": 2,
    "pad_id": -1,
}

DEFAULT_SAMPLE_MB = 1024


@dataclass(frozen=True)
class TrainResult:
    model: Path
    vocab: Path
    report: Path
    vocab_size: int
    sha256: str


def train_tokenizer(
    mixture: Mixture,
    corpus_root: Path,
    output: Path,
    vocab_size: int = 32000,
    sample_bytes: int = DEFAULT_SAMPLE_MB << 20,
    seed: int = 0,
    threads: int | None = None,
    allow_smaller_vocab: bool = False,
    keep_sample: bool = False,
    show_progress: bool | None = None,
) -> TrainResult:
    """Sample `corpus_root` at the mixture's proportions and train SentencePiece on it into `output`.

    `show_progress` says on stderr what it is doing (sampling, training: each can take many
    minutes on a real corpus); None: only on a terminal."""
    if vocab_size < 260:
        raise UserError(f"--vocab-size {vocab_size}: needs room for 3 special pieces and 256 byte pieces")
    if sample_bytes < 1:
        raise UserError("--sample-mb must be positive")
    if threads is not None and threads < 1:
        raise UserError(f"--threads {threads}: must be at least 1")
    if not plain_name(mixture.name):
        # It names the files written into `output`: a path would put them somewhere else.
        raise UserError(f"mixture name {mixture.name!r}: must be a plain name (it names the files in {output})")
    # One writer per output folder: two would race on the sample, the temporary model and the
    # renames. The lock makes the folder.
    with folder_lock(output, "tokenizer train"):
        prefix = output / mixture.name
        sample_path = output / f"{mixture.name}.sample.txt"
        refuse_foreign_outputs(output, mixture.name)
        # Drawn under a temporary name: a kill while drawing leaves no `<mixture>.sample.txt` that
        # looks whole, and one is there only when --keep-sample asked for it.
        drawing = output / f".{mixture.name}.sample.tmp"
        started = time.time()
        say = _progress_printer(show_progress)
        say(f"sampling {corpus_root} at the {mixture.name} proportions (at most {sample_bytes / 1e6:,.0f} MB)")
        sample = draw_sample(mixture, corpus_root, drawing, sample_bytes, seed)
        sampled = time.time()
        say(f"sampled {sample.bytes / 1e6:,.1f} MB in {sampled - started:.1f} s; training SentencePiece BPE "
            f"({vocab_size:,} pieces)")

        # Train under a temporary prefix and rename, so a killed run never leaves a half model.
        tmp_prefix = output / f".{mixture.name}.tmp"
        try:
            _train(drawing, tmp_prefix, vocab_size, threads, allow_smaller_vocab, output)
        finally:
            if keep_sample:
                os.replace(drawing, sample_path)
            else:
                drawing.unlink(missing_ok=True)
        _record_names_not_paths(Path(f"{tmp_prefix}.model"), mixture.name)
        os.replace(f"{tmp_prefix}.model", f"{prefix}.model")
        os.replace(f"{tmp_prefix}.vocab", f"{prefix}.vocab")
        model, vocab = Path(f"{prefix}.model"), Path(f"{prefix}.vocab")
        actual = spm.SentencePieceProcessor(model_file=str(model)).vocab_size()
        sha = file_sha256(model)
        described = {
            "model": str(model),
            "sha256": sha,
            "vocab_size": actual,
            "requested_vocab_size": vocab_size,
            "hard_vocab_limit": not allow_smaller_vocab,
            "mixture": {"name": mixture.name, "proportions": mixture.proportions},
            "corpus": str(corpus_root),
            "settings": LLAMA_SETTINGS,
            "seconds": {"sample": round(sampled - started, 2), "train": round(time.time() - sampled, 2)},
            "sample": sample.to_json(),
        }
        report = output / f"{mixture.name}.json"
        write_json_atomic(report, described)
    return TrainResult(model, vocab, report, actual, sha)


def refuse_foreign_outputs(output: Path, name: str) -> None:
    """Refuse to train over `<name>.model`, `.vocab` or `.sample.txt` in `output` unless an earlier
    `tokenizer train` wrote them: its `<name>.json` names that model with its sha256. Anything
    else of those names is a user's (another tokenizer, a model copied in), never overwritten."""
    outputs = [output / f"{name}.{suffix}" for suffix in ("model", "vocab", "sample.txt")]
    present = [p for p in outputs if p.exists() or p.is_symlink()]
    if not present:
        return
    described = output / f"{name}.json"
    try:
        recorded = json.loads(described.read_text()) if described.is_file() else {}
    except (OSError, ValueError):
        recorded = {}
    model = outputs[0]
    ours = (isinstance(recorded, dict) and model.is_file() and not model.is_symlink()
            and recorded.get("sha256") == file_sha256(model))
    if not ours and isinstance(recorded, dict) and recorded.get("sha256") and model.is_file():
        raise UserError(f"{model}: not the model {described.name} beside it records (its sha256 differs: another "
                        f"tokenizer's put in its place, or damaged since `tokenizer train` wrote it); move it away or "
                        f"give another --out (nothing was overwritten)")
    if not ours:
        raise UserError(f"{present[0]}: exists, and no {described.name} beside it says `tokenizer train` wrote it "
                        f"(another tokenizer's, a copy, or a training killed while finishing); move it away or give "
                        f"another --out (nothing was overwritten)")


def _train(sample: Path, prefix: Path, vocab_size: int, threads: int | None, allow_smaller: bool,
           output: Path) -> None:
    try:
        with sigterm_ends_at_once():
            spm.SentencePieceTrainer.train(
                input=str(sample),
                model_prefix=str(prefix),
                vocab_size=vocab_size,
                hard_vocab_limit=not allow_smaller,
                input_sentence_size=0,  # the sample is capped already: train on all of it
                num_threads=threads or os.cpu_count() or 1,
                minloglevel=2,
                **LLAMA_SETTINGS,
            )
    except RuntimeError as e:
        for suffix in (".model", ".vocab"):
            Path(f"{prefix}{suffix}").unlink(missing_ok=True)
        limit = re.search(r"value <= (\d+)", str(e))
        if limit:
            raise UserError(
                f"{output}: the corpus sample supports at most {limit.group(1)} pieces, fewer than --vocab-size "
                f"{vocab_size}; pass --vocab-size {limit.group(1)} (or less), or --allow-smaller-vocab to keep "
                "what the sample supports"
            ) from None
        needed = re.search(r"smaller than required_chars\. \d+ vs (\d+)", str(e))
        if needed:
            # Not a case for --allow-smaller-vocab: no model of this sample is that small.
            raise UserError(
                f"{output}: --vocab-size {vocab_size} is below the {needed.group(1)} pieces any model of this sample "
                f"holds (one for each character within character_coverage {LLAMA_SETTINGS['character_coverage']}, "
                f"the 256 byte-fallback pieces and the special ones); pass --vocab-size {needed.group(1)} or more"
            ) from None
        raise UserError(f"{output}: SentencePiece training failed: {str(e).strip().splitlines()[-1]}") from None


def _record_names_not_paths(model: Path, name: str) -> None:
    """Put the file names `tokenizer train` keeps (`<name>.sample.txt`, prefix `<name>`) where
    SentencePiece recorded the paths it trained from and to in the model's trainer spec: they hold
    --out, so the same sample trained in another folder gave another file, another sha256, and
    `tokenizer encode` refused to add to token shards of the equal tokenizer. The pieces, scores
    and the other settings are read back as they were."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto.FromString(model.read_bytes())
    del proto.trainer_spec.input[:]
    proto.trainer_spec.input.append(f"{name}.sample.txt")
    proto.trainer_spec.model_prefix = name
    # The thread count is the machine's (--threads defaults to its cores) and the pieces are the
    # same for any: left out, so two machines write the same file.
    proto.trainer_spec.ClearField("num_threads")
    model.write_bytes(proto.SerializeToString())


def _progress_printer(show: bool | None) -> Callable[[str], None]:
    if not (sys.stderr.isatty() if show is None else show):
        return lambda line: None
    return lambda line: print(f"tokenizer train: {line}", file=sys.stderr, flush=True)


# --- `tokenizer train` ---------------------------------------------------------------------

DESCRIPTION = """\
Draw a deterministic sample of the corpus at the mixture's proportions (byte shares, capped by
--sample-mb; a source short of text gives all it has and the others make up the rest) and train
SentencePiece with LLaMA's settings: BPE, split_digits, byte_fallback, identity normalisation,
add_dummy_prefix, remove_extra_whitespaces off, allow_whitespace_only_pieces, character_coverage
0.99995, max piece length 16, unk/bos/eos ids 0/1/2, no pad. Writes OUT/<mixture>.model, .vocab and
.json (settings, sha256, and documents and bytes drawn per source).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    corpus = p.add_argument("--corpus", default="data/corpus", metavar="DIR",
                            help="corpus root holding <source>/ shards (default %(default)s)")
    add_renamed(p, corpus, "--data")
    p.add_argument("--mixture", default="llama1", help="a named mixture or a TOML file (default %(default)s)")
    p.add_argument("--vocab-size", type=int, default=32000, help="pieces in the vocabulary (default %(default)s)")
    out = p.add_argument("--out", default="data/tokenizer", metavar="DIR", help="output folder (default %(default)s)")
    add_renamed(p, out, "--output")
    p.add_argument("--sample-mb", type=float, default=1024,
                   help="cap of the training sample in MB of text; SentencePiece holds it all in memory, about "
                   "10-20 times over while training (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default %(default)s)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="SentencePiece training threads (default: the number of cores, %(default)s)")
    p.add_argument("--allow-smaller-vocab", action="store_true",
                   help="when the sample supports fewer pieces than --vocab-size, keep what it supports instead of "
                   "failing (SentencePiece's hard_vocab_limit off; the actual size is in the .json)")
    p.add_argument("--keep-sample", action="store_true", help="keep the sample text as OUT/<mixture>.sample.txt")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress lines on stderr (default: shown on a terminal)")


def run(args: argparse.Namespace) -> None:
    mixture = load_mixture(args.mixture)
    if not (math.isfinite(args.sample_mb) and 0 < args.sample_mb <= 1 << 30):
        raise UserError(f"--sample-mb {args.sample_mb}: must be a positive number of megabytes")
    result = train_tokenizer(
        mixture, Path(args.corpus), Path(args.out), vocab_size=args.vocab_size,
        sample_bytes=int(args.sample_mb * (1 << 20)), seed=args.seed, threads=args.threads,
        allow_smaller_vocab=args.allow_smaller_vocab, keep_sample=args.keep_sample,
        show_progress=False if args.no_progress else None,
    )
    sample = json.loads(result.report.read_text())["sample"]
    print(f"{result.model}: {result.vocab_size:,} pieces, sha256 {result.sha256[:12]}, trained on "
          f"{sample['documents']:,} documents ({sample['bytes'] / 1e6:.1f} MB)")
    for name, entry in sample["sources"].items():
        if entry["missing"]:
            print(f"  {name:14s} missing: {entry['note']}")
        else:
            flag = f"  ({entry['note']})" if entry["short"] else ""
            print(f"  {name:14s} {entry['share'] * 100:5.1f}% of bytes (mixture {entry['proportion'] * 100:.1f}%), "
                  f"{entry['documents']:,} documents{flag}")
