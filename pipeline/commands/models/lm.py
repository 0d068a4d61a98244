"""`pipeline models lm`: train the SentencePiece + KenLM 5-gram perplexity model of one language (CCNet).

Run again on the same inputs (each file read: its size and mtime) with the same settings (--memory
aside: it changes no byte of the model), while <lang>.sp.model and <lang>.arpa.bin are as
<lang>.lm.json records them (bytes and sha256), it says the model is already trained and writes
nothing. Anything else trains again: another input, setting, or a model file missing or damaged."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pipeline.common.cli import add_renamed, path_arg
from pipeline.common.errors import UserError
from pipeline.commands.models import (
    DEFAULT_OUTPUT, REFERENCE_DEFAULTS, check_output, command_line, default_input, train_lm,
)
from pipeline.commands.models.made_from import already_trained, lm_made_from
from pipeline.filters.perplexity import lm_description_path, lm_model_path, sp_model_path




def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--language", default="en", help="language code (default %(default)s)")
    p.add_argument("--input", type=path_arg, nargs="+",
                   help="reference text: shard folders, .arrow, .jsonl, .txt files "
                   f"(default: the first of {', '.join(REFERENCE_DEFAULTS)} that exists)")
    out = p.add_argument("--out", type=path_arg, default=DEFAULT_OUTPUT, metavar="DIR",
                         help="model folder (default %(default)s)")
    add_renamed(p, out, "--output")
    p.add_argument("--vocab-size", type=int, default=65536, help="SentencePiece vocabulary, capped by what the "
                   "text holds (default %(default)s, CCNet's)")
    p.add_argument("--order", type=int, default=5, help="n-gram order (default %(default)s)")
    p.add_argument("--max-documents", type=int, default=0, help="use at most this many documents (0: all)")
    p.add_argument("--sp-sentences", type=int, default=2_000_000, help="SentencePiece trains on this many of "
                   "the text's lines, drawn at random, when it has more (default %(default)s; 0: all). KenLM "
                   "counts every line")
    p.add_argument("--seed", type=int, default=0, help="seed of that draw (default %(default)s): the same text "
                   "and seed give the same model files")
    p.add_argument("--memory", default="20%", help="lmplz's sort memory (-S): a size such as 4G or a share of "
                   "RAM such as 50%% (default %(default)s; lmplz's own default is 80%%)")


# The largest n-gram order the installed KenLM takes: lmplz, build_binary and the Python module are
# built with KenLM's default KENLM_MAX_ORDER, and a higher order fails only after lmplz has counted.
KENLM_MAX_ORDER = 6


def run(a: argparse.Namespace) -> None:
    if a.vocab_size < 10 or a.order < 2 or a.max_documents < 0 or a.sp_sentences < 0:
        raise UserError("--vocab-size must be at least 10, --order at least 2, --max-documents at least 0 and "
                        "--sp-sentences at least 0")
    if a.order > KENLM_MAX_ORDER:
        raise UserError(f"--order {a.order}: KenLM here is built for orders up to {KENLM_MAX_ORDER} "
                        "(KENLM_MAX_ORDER); CCNet uses 5")
    if not 0 <= a.seed < 1 << 31:
        # SentencePiece's seed is an unsigned 32-bit number whose largest value means "unseeded".
        raise UserError(f"--seed {a.seed}: must be between 0 and {(1 << 31) - 1}")
    if not re.fullmatch(r"[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?", a.language):
        # It names the model files: `../../x` would write outside --out.
        raise UserError(f"--language {a.language!r}: expected a language code such as en, de or zh_Hans")
    inputs = default_input(a.input, REFERENCE_DEFAULTS, "reference text", "--input")
    out = Path(a.out)
    check_output(out, inputs)
    wanted = lm_made_from(inputs, a.language, a.vocab_size, a.order, a.max_documents, a.sp_sentences, a.seed)
    if already_trained(lm_description_path(out, a.language), wanted,
                       [sp_model_path(out, a.language), lm_model_path(out, a.language)]):
        print(f"the {a.language} perplexity model is already trained with these inputs and settings: "
              f"{a.out}/{a.language}.sp.model, {a.language}.arpa.bin ({a.language}.lm.json); nothing to do")
        return
    info = train_lm(inputs, Path(a.out), a.language, a.vocab_size, a.order, a.max_documents,
                    command_line("lm", a), a.memory, a.sp_sentences, a.seed)
    print(f"trained the {a.language} perplexity model on {info['documents']:,} documents "
          f"({info['lines']:,} lines, {info['sentencepiece']['vocab_size']:,} pieces) from "
          f"{', '.join(inputs)} -> {a.out}/{a.language}.sp.model, {a.language}.arpa.bin")
