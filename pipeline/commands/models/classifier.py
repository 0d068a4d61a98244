"""`pipeline models classifier`: train the fastText classifier of reference pages against random
CommonCrawl pages.

Run again on the same inputs in the same roles (each file read: its size and mtime) with the same
settings, while classifier.bin is as classifier.json records it (bytes and sha256), it says the
classifier is already trained and writes nothing. Anything else trains again: another input,
setting, or a model file missing or damaged."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated

from pydantic import Field

from pipeline.common.cli import add_renamed, path_arg
from pipeline.common.config import Count, Positive, check_flags
from pipeline.common.errors import UserError
from pipeline.commands.models import (
    CITED, CITED_URLS_DEFAULT, DEFAULT_OUTPUT, RANDOM_PAGES_DEFAULT, REFERENCE_DEFAULTS, check_output, command_line,
    default_input, train_classifier, train_classifier_on_cited,
)
from pipeline.commands.models.made_from import already_trained, classifier_made_from
from pipeline.filters.quality_classifier import classifier_description_path




def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--positives", type=path_arg, nargs="+",
                   help="reference pages, or `cited`: the pages Wikipedia cites, as in "
                   f"the paper (default: the first of {', '.join(REFERENCE_DEFAULTS)} that exists)")
    p.add_argument("--cited-urls", type=path_arg, nargs="+",
                   help="with --positives cited: Wikipedia corpus shards (their "
                   f"cited_urls column) or .txt files of URLs (default {CITED_URLS_DEFAULT})")
    p.add_argument("--cited-pages", type=path_arg, nargs="+",
                   help="with --positives cited: WARC/WET files or a folder of fetched "
                   "pages to find the cited pages in (default: the --negatives inputs)")
    p.add_argument("--negatives", type=path_arg, nargs="+",
                   help=f"random CommonCrawl pages (default {RANDOM_PAGES_DEFAULT})")
    out = p.add_argument("--out", type=path_arg, default=DEFAULT_OUTPUT, metavar="DIR",
                         help="model folder (default %(default)s)")
    add_renamed(p, out, "--output")
    p.add_argument("--min-chars", type=int, default=1000, help="shortest reference page used (default %(default)s)")
    p.add_argument("--max-per-class", type=int, default=100_000, help="documents per class at most")
    p.add_argument("--epochs", type=int, default=10, help="fastText epochs (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default %(default)s)")


# The numeric flags' bounds, checked before any page is read (pipeline/common/config.py check_flags).
# fastText takes its epoch count and seed as C++ ints; past one, its message was pybind11's about
# the call. Zero epochs it trains without a word: a model of its initial weights, which the run
# would then filter CommonCrawl by. A thousand passes (its default is 5, this command's 10) over
# 200,000 pages is hours already.
MAX_EPOCHS = 1000
FLAGS = {
    "min_chars": Count,
    "max_per_class": Positive,
    "epochs": Annotated[int, Field(ge=1, le=MAX_EPOCHS)],
    "seed": Annotated[int, Field(ge=-(1 << 31), lt=1 << 31)],
}


def run(a: argparse.Namespace) -> None:
    check_flags(a, FLAGS)
    negatives = default_input(a.negatives, [RANDOM_PAGES_DEFAULT], "CommonCrawl pages", "--negatives")
    if a.positives == [CITED]:
        cited = default_input(a.cited_urls, [CITED_URLS_DEFAULT], "cited URLs", "--cited-urls")
        pages = a.cited_pages or negatives
        check_output(Path(a.out), [*cited, *pages, *negatives])
        if _say_if_already_trained(a, {"cited_urls": cited, "cited_pages": pages, "negatives": negatives}):
            return
        info = train_classifier_on_cited(cited, pages, negatives, Path(a.out), a.min_chars, a.max_per_class,
                                         a.epochs, a.seed, command_line("classifier", a))
        print(f"trained the reference classifier on {info['documents_per_class']:,} pages per class "
              f"({info['cited_pages_found']:,} cited pages found in {', '.join(pages)}, of "
              f"{info['cited_urls_known']:,} URLs cited; against {', '.join(negatives)}) -> {a.out}/classifier.bin")
        return
    if a.cited_urls or a.cited_pages:
        raise UserError("--cited-urls and --cited-pages go with --positives cited")
    positives = default_input(a.positives, REFERENCE_DEFAULTS, "reference pages", "--positives")
    check_output(Path(a.out), [*positives, *negatives])
    if _say_if_already_trained(a, {"positives": positives, "negatives": negatives}):
        return
    info = train_classifier(positives, negatives, Path(a.out), a.min_chars, a.max_per_class, a.epochs,
                            a.seed, command_line("classifier", a))
    print(f"trained the reference classifier on {info['documents_per_class']:,} pages per class "
          f"({', '.join(positives)} against {', '.join(negatives)}) -> {a.out}/classifier.bin")


def _say_if_already_trained(a: argparse.Namespace, inputs: dict[str, list[str]]) -> bool:
    """Whether --out holds the classifier these inputs (by role) and settings make, intact; then
    it says so."""
    model = Path(a.out) / "classifier.bin"
    wanted = classifier_made_from(inputs, a.min_chars, a.max_per_class, a.epochs, a.seed)
    if not already_trained(classifier_description_path(model), wanted, [model]):
        return False
    print(f"the reference classifier is already trained with these inputs and settings: {a.out}/classifier.bin "
          "(classifier.json); nothing to do")
    return True
