"""SentencePiece BPE training with LLaMA's settings on a mixture sample of the corpus.

Writes `OUT/<mixture>.model`, `OUT/<mixture>.vocab` and `OUT/<mixture>.json`: the
settings, the model's sha256 and vocabulary size, and the sample (documents and bytes per
source, and what happened to a source short of text).

A rerun with nothing to do rewrites nothing: when the JSON describes the model and .vocab there
(their sha256s) and records the inputs this run would train from (`training_inputs`: the settings,
the seed and cap of the sample, the corpus shards' sha256s from their manifest.json), the command
says so in one line and writes no file. Other inputs or settings, or a JSON older than those
records, train again in place; a model deleted since is trained again as well.

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
from typing import Annotated, Any

import sentencepiece as spm
from pydantic import Field

from pipeline.common.cli import add_renamed, path_arg
from pipeline.common.config import MAX_VOCAB, check_flags
from pipeline.common.errors import UserError, sigterm_ends_at_once
from pipeline.common.files import check_regular_file, file_sha256, plain_name, refuse_overlap, write_json_atomic
from pipeline.common.lock import folder_lock
from pipeline.corpus.mixture import Mixture, load_mixture
from pipeline.engine.shards import shard_entries
from tokenizer.sample import draw_sample
from tokenizer.token_shards import token_dtype

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
    already_trained: bool = False  # the model there was made from these inputs: nothing was written


MAX_THREADS = 1024  # SentencePiece's trainer refuses more (trainer_interface.cc), after the sample is drawn


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
    if threads is not None and not 1 <= threads <= MAX_THREADS:
        raise UserError(f"--threads {threads}: must be from 1 to {MAX_THREADS} (SentencePiece's most), checked "
                        "before the sample is drawn")
    if not plain_name(mixture.name):
        # It names the files written into `output`: a path would put them somewhere else.
        raise UserError(f"mixture name {mixture.name!r}: must be a plain name (it names the files in {output})")
    # Written into a corpus folder it samples, its files would be read as the corpus's by a
    # later command (`pipeline sample` refuses the folder): refused as `tokenizer encode` refuses
    # token shards there, before the lock makes the folder.
    for source in mixture.sources():
        refuse_overlap(output, "tokenizer folder", corpus_root / source, f"the corpus folder {corpus_root / source}",
                       "pick another --out")
    # One writer per output folder: two would race on the sample, the temporary model and the
    # renames. The lock makes the folder.
    with folder_lock(output, "tokenizer train"):
        prefix = output / mixture.name
        sample_path = output / f"{mixture.name}.sample.txt"
        report = output / f"{mixture.name}.json"
        finish_commit(output, mixture.name)  # of a training killed while it installed its model
        recorded = refuse_foreign_outputs(output, mixture.name)
        inputs = training_inputs(mixture, corpus_root, vocab_size, sample_bytes, seed, allow_smaller_vocab)
        if recorded is not None and already_trained(output, mixture.name, recorded, inputs, keep_sample):
            return TrainResult(Path(f"{prefix}.model"), Path(f"{prefix}.vocab"), report, recorded["vocab_size"],
                               recorded["sha256"], already_trained=True)
        # Drawn under a temporary name: a kill while drawing leaves no `<mixture>.sample.txt` that
        # looks whole, and one is there only when --keep-sample asked for it.
        drawing = output / f".{mixture.name}.sample.tmp"
        started = time.time()
        say = _progress_printer(show_progress)
        say(f"sampling {corpus_root} at the {mixture.name} proportions (at most {sample_bytes / 1e6:,.0f} MB)")
        sample = draw_sample(mixture, corpus_root, drawing, sample_bytes, seed)
        # What a kept sample.txt must hash to for a rerun to skip; none kept, no rerun reads it (and a
        # 1 GB sample is not hashed for nothing).
        sample_sha256 = file_sha256(drawing) if keep_sample else ""
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
        trained_model, trained_vocab = Path(f"{tmp_prefix}.model"), Path(f"{tmp_prefix}.vocab")
        _record_names_not_paths(trained_model, mixture.name)
        model, vocab = Path(f"{prefix}.model"), Path(f"{prefix}.vocab")
        actual = spm.SentencePieceProcessor(model_file=str(trained_model)).vocab_size()
        sha = file_sha256(trained_model)
        described = {
            "model": str(model),
            "sha256": sha,
            "vocab_sha256": file_sha256(trained_vocab),
            "sample_sha256": sample_sha256,
            "vocab_size": actual,
            **inputs,
            "seconds": {"sample": round(sampled - started, 2), "train": round(time.time() - sampled, 2)},
            "sample": sample.to_json(),
        }
        write_json_atomic(_pending(output, mixture.name), described)
        finish_commit(output, mixture.name)
    return TrainResult(model, vocab, report, actual, sha)


def _pending(output: Path, name: str) -> Path:
    return output / f".{name}.pending.json"


def finish_commit(output: Path, name: str) -> None:
    """Install a trained model as one step: its description is written first, as
    `.<name>.pending.json`; then the model and the vocabulary are moved from their temporary
    names into place, and the description last, to `<name>.json`. A training killed in between
    is finished here by the next `tokenizer train` (the moves are repeated where the temporary
    file is still the one described), so it never leaves a model beside a description of
    another, which every later run would refuse as a stranger's. A pending description whose
    files are gone, or are not the ones it describes, is dropped: the commit had not begun."""
    pending = _pending(output, name)
    if not pending.is_file():
        return
    recorded, _ = _read_description(pending)
    temporary = output / f".{name}.tmp"
    for suffix, key in (("model", "sha256"), ("vocab", "vocab_sha256")):
        moving, final = Path(f"{temporary}.{suffix}"), output / f"{name}.{suffix}"
        if recorded is None or not isinstance(recorded.get(key), str):
            break
        if moving.is_file() and file_sha256(moving) == recorded[key]:
            os.replace(moving, final)
        elif not (final.is_file() and not final.is_symlink() and file_sha256(final) == recorded[key]):
            break
    else:
        os.replace(pending, output / f"{name}.json")
        return
    pending.unlink()


def training_inputs(mixture: Mixture, corpus_root: Path, vocab_size: int, sample_bytes: int, seed: int,
                    allow_smaller_vocab: bool) -> dict:
    """Everything the model is made from, as `<mixture>.json` records it (JSON values): with the
    same inputs a training writes the same model, so a JSON recording these has nothing to redo."""
    inputs = {
        "requested_vocab_size": vocab_size,
        "hard_vocab_limit": not allow_smaller_vocab,
        "mixture": {"name": mixture.name, "proportions": mixture.proportions},
        "corpus": str(corpus_root),
        "corpus_shards": corpus_shards(mixture, corpus_root),
        "settings": LLAMA_SETTINGS,
        "seed": seed,
        "sample_cap_bytes": sample_bytes,
    }
    return json.loads(json.dumps(inputs))  # as read back from the JSON: lists, not tuples


def corpus_shards(mixture: Mixture, corpus_root: Path) -> dict[str, list[str]] | None:
    """Each source's shards as `name:sha256` from its manifest.json ([] for a source with no
    folder): the sample is drawn from those bytes, and a corpus rebuilt or rewritten since
    (`pipeline remove`) lists other sha256s. Reads the manifests only; the sample's draw checks
    the shards against them. None when a shard has no sha256 to tell (no manifest): then no
    earlier training counts as made from this corpus."""
    shards: dict[str, list[str]] = {}
    for source in mixture.proportions:
        folder = corpus_root / source
        entries = shard_entries(folder) if folder.is_dir() else []
        if not all(entry.get("sha256") for _, entry in entries):
            return None
        shards[source] = [f"{path.name}:{entry['sha256']}" for path, entry in entries]
    return shards


def already_trained(output: Path, name: str, recorded: dict, inputs: dict, keep_sample: bool) -> bool:
    """Whether the model `recorded` describes (its sha256 already checked) is what training on
    `inputs` would write, with its .vocab as written, and the sample.txt when asked to keep it:
    nothing left to do. A JSON written before it recorded all of `inputs` never is (trained again)."""
    if inputs["corpus_shards"] is None or any(recorded.get(key) != value for key, value in inputs.items()):
        return False
    if not _plain_file_with_sha256(output / f"{name}.vocab", recorded.get("vocab_sha256")):
        return False
    return not keep_sample or _plain_file_with_sha256(output / f"{name}.sample.txt", recorded.get("sample_sha256"))


def _plain_file_with_sha256(path: Path, sha256: object) -> bool:
    return isinstance(sha256, str) and path.is_file() and not path.is_symlink() and file_sha256(path) == sha256


def refuse_foreign_outputs(output: Path, name: str) -> dict | None:
    """Refuse to train over `<name>.model`, `.vocab` or `.sample.txt` in `output` unless an earlier
    `tokenizer train` wrote them: its `<name>.json` names that model with its sha256. Anything
    else of those names is a user's (another tokenizer, a model copied in), never overwritten.

    Returns what the JSON records when the model is the one it describes; None when there is
    nothing to check against it: no outputs, or the model deleted since (the command's own output
    gone: trained again). A JSON that cannot be read is named as damaged, not taken for absent."""
    outputs = [output / f"{name}.{suffix}" for suffix in ("model", "vocab", "sample.txt")]
    present = [p for p in outputs if p.exists() or p.is_symlink()]
    if not present:
        return None
    described = output / f"{name}.json"
    if not described.is_file():
        raise _not_written_here(present[0], described)
    recorded, problem = _read_description(described)
    if recorded is None:
        raise UserError(f"{described}: {problem}, so nothing shows that `tokenizer train` wrote {present[0].name} "
                        f"beside it; move them away or give another --out (nothing was overwritten)")
    model = outputs[0]
    if not (model.exists() or model.is_symlink()):
        return None
    if model.is_file() and not model.is_symlink() and file_sha256(model) == recorded["sha256"]:
        return recorded
    if model.is_file():
        raise UserError(f"{model}: not the model {described.name} beside it records (its sha256 differs: another "
                        f"tokenizer's put in its place, or damaged since `tokenizer train` wrote it); move it away or "
                        f"give another --out (nothing was overwritten)")
    raise _not_written_here(model, described)


def _not_written_here(path: Path, described: Path) -> UserError:
    return UserError(f"{path}: exists, and no {described.name} beside it says `tokenizer train` wrote it (another "
                     f"tokenizer's, a copy, or a training killed while finishing); move it away or give another --out "
                     f"(nothing was overwritten)")


def model_for_encoding(model: Path) -> dict[str, Any]:
    """The tokenizer `model` as token shards record it (meta.json's fields), once checked: a
    SentencePiece model with BOS and EOS pieces, and the one its `<name>.json` records."""
    check_regular_file(model, "a tokenizer model")  # a FIFO would block SentencePiece's open
    if not model.is_file():
        raise UserError(f"{model}: tokenizer model does not exist (run `tokenizer train` first)")
    try:
        processor = spm.SentencePieceProcessor(model_file=str(model))
    except (RuntimeError, OSError) as e:
        raise UserError(f"{model}: not a SentencePiece model ({str(e).strip().splitlines()[-1]})") from None
    tokenizer = {
        "tokenizer": str(model),
        "tokenizer_sha256": file_sha256(model),
        "vocab_size": processor.vocab_size(),
        "dtype": token_dtype(processor.vocab_size()),
        "bos_id": processor.bos_id(),
        "eos_id": processor.eos_id(),
    }
    if tokenizer["bos_id"] < 0 or tokenizer["eos_id"] < 0:
        raise UserError(f"{model}: the tokenizer has no BOS or EOS piece")
    mismatch = description_mismatch(model, tokenizer["tokenizer_sha256"])
    if mismatch is not None:
        raise UserError(f"{model}: {mismatch}; train it again, or encode with the model it records")
    return tokenizer


def description_mismatch(model: Path, sha256: str) -> str | None:
    """Why `model` (of this sha256) is not the model that `tokenizer train`'s `<name>.json` beside it
    records, or None: no such description, or one that records this model. The check
    `refuse_foreign_outputs` makes before training over a model, for the commands that use one."""
    described = model.with_suffix(".json")
    if not described.is_file():
        return None
    recorded, _ = _read_description(described)
    if recorded is None or recorded["sha256"] == sha256:
        return None
    return (f"not the model {described.name} beside it records (its sha256 differs: another tokenizer's put in its "
            "place, or damaged since `tokenizer train` wrote it)")


def _read_description(path: Path) -> tuple[dict | None, str]:
    """`<name>.json` as `tokenizer train` wrote it (an object with the model's sha256), or None
    and what is wrong with it: a cut or edited file, or one that cannot be read."""
    try:
        recorded = json.loads(path.read_text())
    except OSError as e:
        return None, f"unreadable ({e.strerror})"
    except (UnicodeDecodeError, ValueError):
        return None, "damaged (not valid JSON)"
    if not isinstance(recorded, dict):
        return None, "damaged (not a JSON object)"
    if not isinstance(recorded.get("sha256"), str):
        return None, "damaged (it records no model sha256)"
    return recorded, ""


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
.json (settings, sha256, and documents and bytes drawn per source). Run again with the same settings
on the same corpus shards, it finds the model there and says so without writing a file.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    corpus = p.add_argument("--corpus", type=path_arg, default="data/corpus", metavar="DIR",
                            help="corpus root holding <source>/ shards (default %(default)s)")
    add_renamed(p, corpus, "--data")
    p.add_argument("--mixture", type=path_arg, default="llama1",
                   help="a named mixture or a TOML file (default %(default)s)")
    p.add_argument("--vocab-size", type=int, default=32000, help="pieces in the vocabulary (default %(default)s)")
    out = p.add_argument("--out", type=path_arg, default="data/tokenizer", metavar="DIR",
                         help="output folder (default %(default)s)")
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


# Bounds the flags' own checks below leave out (pipeline/common/config.py check_flags). SentencePiece
# reads the vocabulary size as an int32: 2^31 was its traceback, after the sample was drawn.
FLAGS = {"vocab_size": Annotated[int, Field(le=MAX_VOCAB)], "seed": int}


def run(args: argparse.Namespace) -> None:
    check_flags(args, FLAGS)
    mixture = load_mixture(args.mixture)
    if not (math.isfinite(args.sample_mb) and 0 < args.sample_mb <= 1 << 30):
        raise UserError(f"--sample-mb {args.sample_mb}: must be a positive number of megabytes")
    result = train_tokenizer(
        mixture, Path(args.corpus), Path(args.out), vocab_size=args.vocab_size,
        sample_bytes=int(args.sample_mb * (1 << 20)), seed=args.seed, threads=args.threads,
        allow_smaller_vocab=args.allow_smaller_vocab, keep_sample=args.keep_sample,
        show_progress=False if args.no_progress else None,
    )
    if result.already_trained:
        print(f"{result.model}: already trained with these settings; nothing to do")
        return
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
