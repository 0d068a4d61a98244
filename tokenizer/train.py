"""SentencePiece BPE training with LLaMA's settings on a mixture sample of the corpus.

Writes `OUTPUT/<mixture>.model`, `OUTPUT/<mixture>.vocab` and `OUTPUT/<mixture>.json`: the
settings, the model's sha256 and vocabulary size, and the sample (documents and bytes per
source, and what happened to a source short of text).

A corpus too small for the requested vocabulary (the laptop sample) is an error naming the
largest size it supports, unless `allow_smaller_vocab` is set: then SentencePiece's
hard_vocab_limit is off and the model keeps every piece the sample supports (the JSON records
requested and actual sizes; everything downstream reads the size from the model).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm

from pipeline.common.errors import UserError
from pipeline.common.files import file_sha256, write_json_atomic
from pipeline.common.lock import folder_lock
from pipeline.corpus.mixture import Mixture
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
) -> TrainResult:
    if vocab_size < 260:
        raise UserError(f"--vocab-size {vocab_size}: needs room for 3 special pieces and 256 byte pieces")
    if sample_bytes < 1:
        raise UserError("--sample-mb must be positive")
    if Path(mixture.name).name != mixture.name or mixture.name in ("", ".", ".."):
        # It names the files written into `output`: a path would put them somewhere else.
        raise UserError(f"mixture name {mixture.name!r}: must be a plain name (it names the files in {output})")
    # One writer per output folder: two would race on the sample, the temporary model and the
    # renames. The lock makes the folder.
    with folder_lock(output, "tokenizer train"):
        prefix = output / mixture.name
        sample_path = output / f"{mixture.name}.sample.txt"
        started = time.time()
        sample = draw_sample(mixture, corpus_root, sample_path, sample_bytes, seed)
        sampled = time.time()

        # Train under a temporary prefix and rename, so a killed run never leaves a half model.
        tmp_prefix = output / f".{mixture.name}.tmp"
        try:
            _train(sample_path, tmp_prefix, vocab_size, threads, allow_smaller_vocab, output)
        finally:
            if not keep_sample:
                sample_path.unlink(missing_ok=True)
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


def _train(sample: Path, prefix: Path, vocab_size: int, threads: int | None, allow_smaller: bool,
           output: Path) -> None:
    try:
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
        raise UserError(f"{output}: SentencePiece training failed: {str(e).strip().splitlines()[-1]}") from None
