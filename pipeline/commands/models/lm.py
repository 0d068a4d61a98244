"""`pipeline models lm`: train the SentencePiece + KenLM 5-gram perplexity model of one language (CCNet).

Run again on the same inputs (each file read: its size and mtime) with the same settings (--memory
aside: it changes no byte of the model), while <lang>.sp.model and <lang>.arpa.bin are as
<lang>.lm.json records them (bytes and sha256), it says the model is already trained and writes
nothing. Anything else trains again: another input, setting, or a model file missing or damaged."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Annotated

from pydantic import Field

from pipeline.common.cli import add_renamed, path_arg
from pipeline.common.config import MAX_VOCAB, Count, check_flags
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


# The numeric flags' bounds, checked before any work (pipeline/common/config.py check_flags).
FLAGS = {
    "vocab_size": Annotated[int, Field(ge=10, le=MAX_VOCAB)],  # SentencePiece reads it as an int32
    "order": Annotated[int, Field(ge=2)],  # and at most KENLM_MAX_ORDER, said with its reason below
    "max_documents": Count,
    "sp_sentences": Count,
    # SentencePiece's seed is an unsigned 32-bit number whose largest value means "unseeded".
    "seed": Annotated[int, Field(ge=0, le=(1 << 31) - 1)],
}
# lmplz's -S: a share of the RAM, or a size with its unit (K, M, G, T: binary). A whole number: lmplz
# refuses a decimal point (1.5G), and a bare number is kilobytes to it.
MEMORY = re.compile(r"([0-9]{1,15})([%KkMGT])")
# The least -S that lmplz runs with: its vocabulary hash alone takes 24 MiB, and a smaller budget
# ended it (after SentencePiece had trained) with "exceeds total memory" or a block size too small.
LEAST_MEMORY = 32 << 20


def check_memory(text: str) -> None:
    """`--memory` as lmplz's -S reads it, within what it can run with on this machine."""
    match = MEMORY.fullmatch(text)
    if match is None:
        raise UserError(f"--memory {text!r}: expected a share of the RAM such as 50% or a size such as 500M or "
                        "4G (lmplz's -S)")
    number, unit = int(match.group(1)), match.group(2).upper()
    if unit == "%" and not 1 <= number <= 100:
        raise UserError(f"--memory {text}: a share of the RAM is from 1% to 100%")
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")  # what lmplz's own % is a share of
    size = ram * number // 100 if unit == "%" else number << (10 * "KMGT".index(unit) + 10)
    if size < LEAST_MEMORY:
        raise UserError(f"--memory {text}: lmplz needs at least 32M (its vocabulary hash alone takes 24 MiB)")
    if size > ram:
        raise UserError(f"--memory {text}: more than this machine's {ram / (1 << 30):.1f} GiB of RAM, which lmplz "
                        "would fail to allocate; give a share such as 50%")


def run(a: argparse.Namespace) -> None:
    check_flags(a, FLAGS)
    if a.order > KENLM_MAX_ORDER:
        raise UserError(f"--order {a.order}: KenLM here is built for orders up to {KENLM_MAX_ORDER} "
                        "(KENLM_MAX_ORDER); CCNet uses 5")
    check_memory(a.memory)
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
