"""`tokenizer`: train the SentencePiece BPE tokenizer on a mixture sample, encode the corpus."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.common.cli import Command
from pipeline.common.cli import main as run_cli
from pipeline.common.cli import without_blas_threads

DESCRIPTION = """\
Train LLaMA's tokenizer and encode the corpus for the trainer:

  tokenizer train      sample data/corpus at the llama1 proportions, train SentencePiece BPE
                       (32k pieces, split digits, byte fallback) into data/tokenizer/llama1.model
  tokenizer encode     encode every source of data/corpus into token shards in data/tokens/<source>/
  tokenizer verify     check every token shard against its meta.json (after copying them)

On the small laptop sample pass `tokenizer train --allow-smaller-vocab` (or a --vocab-size it
supports): generated sample text has too few distinct words for 32,000 pieces.
"""

COMMANDS = [
    Command("train", "tokenizer.train", "train the tokenizer on a mixture sample of the corpus"),
    Command("encode", "tokenizer.encode", "encode corpus shards into token shards"),
    Command("verify", "tokenizer.verify", "check token shards against the sizes and sha256s in their meta.json"),
]


def main(argv: Sequence[str] | None = None) -> None:
    without_blas_threads()  # before numpy loads
    run_cli("tokenizer", DESCRIPTION, COMMANDS, argv, "rerun the same command to resume")


if __name__ == "__main__":  # `python -m tokenizer.cli ...`, as the `tokenizer` command
    main()
