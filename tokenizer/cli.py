"""`tokenizer`: train the SentencePiece BPE tokenizer on a mixture sample, encode the corpus."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokenizer",
        description="Train LLaMA's tokenizer (SentencePiece BPE, 32k, split digits, byte fallback) on a "
        "sample of the corpus drawn at the mixture's proportions, and encode the corpus into token shards.",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    sub.add_parser("train", help="train the tokenizer (not built yet)")
    sub.add_parser("encode", help="encode corpus shards into token shards (not built yet)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    del args
    print("tokenizer: error: not built yet (tokenizer training and encoding land with the tokenizer issue)",
          file=sys.stderr)
    sys.exit(2)
