"""`pipeline report`: one self-contained HTML page about a finished corpus.

Per source: the funnel of documents (and, with --keep-dropped, bytes) through each stage with
its drop reasons, document lengths kept vs dropped, the distribution of every score column
(CommonCrawl's language score, perplexity, Wikipedia-reference probability) and every
categorical column (language, perplexity bucket, GitHub licence), the `pipeline audit` residue
table where an audit exists, and a few escaped examples of dropped documents per reason; once,
the mixture table with epochs when token shards exist. The page holds its charts as inline SVG
and no script: it opens offline, in any browser, from a mail attachment.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.commands.audit import RESIDUE, residue_names, run_audit
from pipeline.commands.mix import parse_tokens, plan
from pipeline.common.cli import READ_ONLY_HINT, path_arg
from pipeline.common.config import Count, check_flags
from pipeline.common.errors import UserError
from pipeline.common.files import check_regular_file
from pipeline.corpus.folder import finished_runs
from pipeline.corpus.mixture import load_mixture
from pipeline.report.facts import SourceFacts, read_source_facts
from pipeline.report.page import ResidueRow, render

DESCRIPTION = """\
Write one self-contained HTML page (no network, no JavaScript) showing a finished corpus:
the documents through each stage with drop reasons, document lengths kept vs dropped, score and
category columns (language scores, perplexity buckets, licences), markup residue (`pipeline
audit`, for wikipedia, arxiv and books), a few dropped documents per reason (from runs with
--keep-dropped), and the mixture table with epochs when token shards exist.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a source, or `all` for every finished source under --corpus")
    p.add_argument("--corpus", type=path_arg, default="data/corpus", metavar="DIR",
                   help="corpus root (default %(default)s)")
    p.add_argument("--out", type=path_arg, default="report.html", metavar="FILE",
                   help="the page to write (default %(default)s)")
    p.add_argument("--tokens", type=path_arg, default="data/tokens", metavar="DIR",
                   help="token shard root for the mixture table, shown when it holds shards (default %(default)s)")
    p.add_argument("--mixture", type=path_arg, default="llama1", help="mixture of the table (default %(default)s)")
    p.add_argument("--total-tokens", type=parse_tokens, metavar="N",
                   help="training tokens of the mixture table (default: the mixture's reference, 1.4T for llama1)")
    p.add_argument("--examples", type=int, default=3, metavar="K",
                   help="dropped documents shown per drop reason (default %(default)s)")


def residue_rows(facts: SourceFacts) -> list[ResidueRow] | None:
    if facts.source not in RESIDUE:
        return None
    audit = run_audit(facts.source, facts.folder)
    return [ResidueRow(name, audit.documents_with[name], audit.occurrences[name], audit.examples.get(name, ""))
            for name in residue_names(facts.source)]


TITLE = "herd corpus report: "  # the <title> of every page this writes: how a page of ours is told apart


def check_out(out: Path) -> None:
    """Refuse an --out that cannot be written, before minutes of reading; and one that is a file
    of the user's: --out replaces only a page this command wrote."""
    if out.is_dir():
        raise UserError(f"{out}: a folder; --out names the HTML file to write")
    # Before its first bytes are read: opening a FIFO waits for a writer; and the page is renamed
    # over --out, which would replace a FIFO or a device (/dev/null) by a file.
    check_regular_file(out, "an HTML file to write")
    if not out.parent.is_dir():
        raise UserError(f"{out.parent}: no such folder (for --out {out})")
    if out.exists():  # os.replace swaps a link itself, never its target: only a file's bytes matter
        try:
            with open(out, "rb") as f:
                ours = f"<title>{TITLE}".encode() in f.read(4096)
        except OSError:
            ours = False
        if not ours:
            raise UserError(f"{out}: exists and is not a page `pipeline report` wrote; refusing to overwrite it "
                            "(give another --out, or delete it first)")


RERUN_HINT = READ_ONLY_HINT


def run(args: argparse.Namespace) -> None:
    check_flags(args, {"examples": Count})
    corpus, out = Path(args.corpus), Path(args.out)
    check_out(out)
    mixture = load_mixture(args.mixture)
    sources, residue = [], {}
    for folder in finished_runs(corpus, args.source):
        print(f"report: reading {folder}", file=sys.stderr)
        facts = read_source_facts(folder, args.examples)
        sources.append(facts)
        rows = residue_rows(facts)
        if rows is not None:
            residue[facts.source] = rows
    total = args.total_tokens or mixture.reference_tokens
    rows = plan(mixture, total, corpus, Path(args.tokens)) if total else []
    mixture_rows = rows if any(row.counted for row in rows) else []
    page = render(f"{TITLE}{corpus}", sources, residue, mixture.name, total, mixture_rows)
    temporary = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, out)
    except OSError as e:
        temporary.unlink(missing_ok=True)
        raise UserError(f"{out}: cannot write the report ({e.strerror or e})") from None
    print(f"report: wrote {out} ({len(page.encode()):,} bytes, {len(sources)} source(s))")
