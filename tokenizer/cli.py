"""`tokenizer`: train the SentencePiece BPE tokenizer on a mixture sample, encode the corpus."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from pipeline.common.errors import UserError, exit_on_errors

DESCRIPTION = """\
Train LLaMA's tokenizer and encode the corpus for the trainer:

  tokenizer train      sample data/corpus at the llama1 proportions, train SentencePiece BPE
                       (32k pieces, split digits, byte fallback) into data/tokenizer/llama1.model
  tokenizer encode     encode every source of data/corpus into token shards in data/tokens/<source>/

On the small laptop sample pass `tokenizer train --allow-smaller-vocab` (or a --vocab-size it
supports): generated sample text has too few distinct words for 32,000 pieces.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokenizer", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser(
        "train", help="train the tokenizer on a mixture sample of the corpus",
        description="Draw a deterministic sample of the corpus at the mixture's proportions (byte shares, capped "
        "by --sample-mb; a source short of text gives all it has and the others make up the rest) and train "
        "SentencePiece with LLaMA's settings: BPE, split_digits, byte_fallback, identity normalisation, "
        "add_dummy_prefix, remove_extra_whitespaces off, allow_whitespace_only_pieces, character_coverage "
        "0.99995, max piece length 16, unk/bos/eos ids 0/1/2, no pad. Writes OUTPUT/<mixture>.model, .vocab and "
        ".json (settings, sha256, and documents and bytes drawn per source).",
    )
    p.add_argument("--data", default="data/corpus", help="corpus root holding <source>/ shards (default %(default)s)")
    p.add_argument("--mixture", default="llama1", help="a named mixture or a TOML file (default %(default)s)")
    p.add_argument("--vocab-size", type=int, default=32000, help="pieces in the vocabulary (default %(default)s)")
    p.add_argument("--output", default="data/tokenizer", help="output folder (default %(default)s)")
    p.add_argument("--sample-mb", type=float, default=1024,
                   help="cap of the training sample in MB of text; SentencePiece holds it all in memory, about "
                   "10-20 times over while training (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default %(default)s)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="SentencePiece training threads (default: the number of cores, %(default)s)")
    p.add_argument("--allow-smaller-vocab", action="store_true",
                   help="when the sample supports fewer pieces than --vocab-size, keep what it supports instead of "
                   "failing (SentencePiece's hard_vocab_limit off; the actual size is in the .json)")
    p.add_argument("--keep-sample", action="store_true", help="keep the sample text as OUTPUT/<mixture>.sample.txt")
    p.set_defaults(handler=_cmd_train)

    p = sub.add_parser(
        "encode", help="encode corpus shards into token shards",
        description="Encode every source under --data (or --sources) into token shards OUTPUT/<source>/: "
        "train-NNNNN.bin/.idx and heldout-NNNNN.bin/.idx (flat little-endian ids, uint16 while the vocabulary "
        "fits, BOS before and EOS after each document; int64 document offsets) and meta.json (token counts, "
        "tokenizer sha256). One task per corpus shard, at most --workers processes. Rerunning resumes: finished "
        "shards are skipped and the files are the same as an uninterrupted run's. A folder encoded with another "
        "tokenizer is refused unless --restart.",
    )
    p.add_argument("--data", default="data/corpus", help="corpus root holding <source>/ shards (default %(default)s)")
    p.add_argument("--model", default="data/tokenizer/llama1.model", help="SentencePiece model (default %(default)s)")
    p.add_argument("--output", default="data/tokens", help="token shard root (default %(default)s)")
    p.add_argument("--sources", nargs="+", help="only these sources (default: every source with corpus shards)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes (default: the number of cores, %(default)s)")
    p.add_argument("--heldout", type=float, default=0.005,
                   help="fraction of each source's documents held out for evaluation, chosen by a hash of the "
                   "document id; a source too small for it holds out one document (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out choice (default %(default)s)")
    p.add_argument("--restart", action="store_true", help="discard earlier token shards of these sources")
    p.add_argument("--document-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="a worker that makes no progress on a batch of documents for this long is killed; a "
                   "document that stalls or kills a worker twice is left out and listed in meta.json "
                   "(default %(default)g)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_encode)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        sys.exit(2)
    with exit_on_errors("tokenizer", "rerun the same command to resume"):
        args.handler(args)


def _cmd_train(args: argparse.Namespace) -> None:
    from pipeline.corpus.mixture import load_mixture
    from tokenizer.train import train_tokenizer

    mixture = load_mixture(args.mixture)
    if not (math.isfinite(args.sample_mb) and 0 < args.sample_mb <= 1 << 30):
        raise UserError(f"--sample-mb {args.sample_mb}: must be a positive number of megabytes")
    result = train_tokenizer(
        mixture, Path(args.data), Path(args.output), vocab_size=args.vocab_size,
        sample_bytes=int(args.sample_mb * (1 << 20)), seed=args.seed, threads=args.threads,
        allow_smaller_vocab=args.allow_smaller_vocab, keep_sample=args.keep_sample,
    )
    import json

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


def _cmd_encode(args: argparse.Namespace) -> None:
    from tokenizer.encode import encode_corpus

    report = encode_corpus(
        Path(args.data), Path(args.model), Path(args.output), sources=args.sources, workers=args.workers,
        heldout_fraction=args.heldout, seed=args.seed, restart=args.restart,
        show_progress=False if args.no_progress else None, document_budget_s=args.document_timeout,
    )
    rate = report.text_bytes / report.seconds / 1e6 if report.seconds and report.tasks_run else 0
    print(f"encoded {report.tasks_run} corpus shard(s) in {report.seconds:.1f} s ({rate:.1f} MB/s) -> {args.output}")
    for name, meta in report.sources.items():
        train, heldout = meta["splits"]["train"], meta["splits"]["heldout"]
        print(f"  {name:14s} train {train['documents']:,} documents, {train['tokens']:,} tokens; "
              f"heldout {heldout['documents']:,} documents, {heldout['tokens']:,} tokens")
