"""Hostile LaTeX, Gutenberg and wikitext inputs: seconds and output size of each, against the
targets of issue 15 (under a second each; LaTeX output at most 8x the input plus 1 MB).

    .venv/bin/python bench/hostile_text.py [--rounds 3]

Each case is built here (nothing third-party): expansion bombs a few hundred bytes gzipped,
19,500-deep nested macro arguments, 30k unclosed comment and verbatim environments, and
Gutenberg files of 20k blank lines, of 1 MB of them, of one 1 MB line of spaces, and of 200k
lines shaped like the start of a transcriber's note. The LaTeX cases run the arXiv source's
cleaning functions in stage order; a case "dropped" ends with the reason the stage counts. The
wikitext cases are articles of 8,000 openers that never close (or close once, at the end),
through the Wikipedia cleaner; "2x" is the time at 16,000 over the time at 8,000 (2 for linear
work, 4 for quadratic). Every case runs `--rounds` times, the cases in turn; cells give min /
median / max, with the load average (bench/rounds.py).
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rounds import alternate, spread, table  # noqa: E402
from pipeline.text.gutenberg import normalize_newlines, strip_boilerplate
from pipeline.text.latex import (
    LatexError,
    check_braces,
    cut_before_first_section,
    output_limit,
    remove_bibliography,
    strip_comments,
)
from pipeline.text.latex_macros import collect_macros, expand_macros
from pipeline.text.wikitext import clean_wikitext

PAPER = "\\documentclass{article}\n\\begin{document}\n\\section{Intro}\n{body}\n\\end{document}\n"
START = "*** START OF THE PROJECT GUTENBERG EBOOK X ***\n"

LATEX = {
    "wide expansion bomb": "\\newcommand{\\x}{" + "x" * 200_000 + "}" + "\\x" * 20_000,
    "deep expansion bomb": "\\def\\a{" + "y" * 100_000 + "}"
    + "".join("\\def\\" + c + "{" + ("\\" + p) * 8 + "}" for p, c in zip("abcdefg", "bcdefgh")) + "\\h",
    "19,500-deep nested arguments": "\\newcommand{\\m}[1]{(#1)}" + "\\m{" * 19_500 + "x" + "}" * 19_500,
    "30k unclosed \\begin{comment}": "text " + "\\begin{comment} x " * 30_000,
    "30k unclosed \\begin{verbatim}": "text " + "\\begin{verbatim}{ " * 30_000,
    "30k unclosed \\verb on one line": "text " + "\\verb|{ " * 30_000 + "}",
    "100k backslashes before %": "\\" * 100_000 + "% comment\ntext",
}
GUTENBERG = {
    "20k blank lines": "\n" * 20_000 + START + "\n" * 20_000 + "Body.\n" + "\n" * 20_000,
    "1 MB of CRLF blank lines": "\r\n" * 500_000 + START + "Produced by X\r\n" + "\r\n" * 10 + "Body.",
    "1 MB of space-only lines": " \n" * 500_000 + "Body.",
    "one line of 1 MB of spaces": START + " " * 1_000_000 + "\nBody.\n" + " " * 1_000_000 + "\n",
    "200k unclosed bracketed notes": START + "Body.\n\n" + "[Transcriber's Note: x\n" * 200_000,
    "200k bracketed notes in text": START + "Body.\n\n" + "[Transcriber's Note: x] y\n" * 200_000,
    "200k note headings after breaks": START + "Body.\n" + "x\n\n\nTranscriber's Note\n" * 200_000,
}

WIKITEXT = {
    "unclosed <ref>": lambda n: "<ref>" * n + " text",
    "unclosed <ref name=a>x": lambda n: '<ref name="a">x ' * n,
    "unclosed [http://x": lambda n: "[http://x " * n,
    "unclosed <!--": lambda n: "<!--" * n + "x",
    "unclosed {{a|b": lambda n: "{{a|b " * n,
    "unclosed [[File:": lambda n: "[[File:a.jpg|thumb|x " * n,
    "unclosed {|": lambda n: "{|\n" * n + "x",
    "unclosed <div>": lambda n: "<div>x " * n,
    "<ref> x n, one </ref>": lambda n: "<ref>" * n + "</ref>",
    "[[a|x x n, one ]]": lambda n: "[[a|x " * n + "]]",
    "{| x n, one |}": lambda n: "{|\n" * n + "|}",
}


def clean_latex(body: str) -> tuple[str, int]:
    text = strip_comments(PAPER.replace("{body}", body))
    try:
        check_braces(text)
        macros, text = collect_macros(text)
        text = expand_macros(text, macros)
        text = remove_bibliography(cut_before_first_section(text) or "")
    except LatexError as e:
        return f"dropped: {e.reason}", 0
    return "kept", len(text)


def timed(run: Callable[[], str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of every case (default %(default)s)")
    args = parser.parse_args()
    sizes: dict[str, tuple[int, str]] = {}  # case -> (input characters, gzipped bytes)
    cases: dict[str, Callable[[], str]] = {}
    for name, body in LATEX.items():
        source = PAPER.replace("{body}", body)
        sizes[name] = (len(source), f"{len(gzip.compress(source.encode())):,}")

        def latex(body: str = body, source: str = source) -> str:
            result, size = clean_latex(body)
            return f"{result} output {size:,} <= {output_limit(len(source)):,}" if result == "kept" else result
        cases[name] = latex
    for name, text in GUTENBERG.items():
        sizes[f"gutenberg: {name}"] = (len(text), "")

        def gutenberg(text: str = text) -> str:
            body = strip_boilerplate(normalize_newlines(text))
            return f"body {body!r}" if len(body) <= 40 else f"body of {len(body):,} characters"
        cases[f"gutenberg: {name}"] = gutenberg
    for name, make in WIKITEXT.items():
        for n in (8_000, 16_000):
            text = make(n)
            sizes[f"wikitext: {name}, {n:,}"] = (len(text), "")
            cases[f"wikitext: {name}, {n:,}"] = lambda text=text: (clean_wikitext(text), "cleaned")[1]
    runs = alternate({name: lambda run=run: timed(run) for name, run in cases.items()}, args.rounds)
    rows = []
    for name, measured in runs.items():
        result = measured[0][1]
        if name.startswith("wikitext: ") and name.endswith(", 16,000"):  # 2 for linear work, 4 for quadratic
            half = statistics.median(s for s, _ in runs[name.replace(", 16,000", ", 8,000")])
            result = f"2x {statistics.median(s for s, _ in measured) / half:.1f} (medians)"
        rows.append([name, f"{sizes[name][0]:,}", sizes[name][1], spread([s for s, _ in measured], ".3f"), result])
    table("Hostile text inputs (issue 15: under a second each)", ["case", "input", "gzipped", "seconds", "result"],
          rows, args.rounds)


if __name__ == "__main__":
    main()
