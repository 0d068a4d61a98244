"""LaTeX that would hang or blow up a naive expander: unbalanced braces, self-recursive,
mutually recursive and exponentially growing macros, \\input cycles. Each paper is dropped
with its reason (or, for cycles, cut) in bounded time, and the papers beside it are kept."""

from __future__ import annotations

import time
from pathlib import Path

from sources.arxiv import ArXiv, ArxivConfig
from tests.hostile.helpers import run
from tests.hostile.sources_data import PAPER, PAPER_TEXT, write_paper

BODY = "Every $x \\in \\R$ is real."
HOSTILE = {
    "extra_open": BODY + " {unclosed",
    "extra_close": BODY + " closed}}",
    "unclosed_definition": "\\newcommand{\\bad}{never closed " + BODY,
    "self_recursive_def": "\\def\\loop{\\loop}\\loop " + BODY,
    "self_recursive_newcommand": "\\newcommand{\\again}{x\\again}\\again " + BODY,
    "recursive_with_argument": "\\newcommand{\\f}[1]{\\f{#1#1}}\\f{a} " + BODY,
    "mutually_recursive": "\\newcommand{\\ping}{\\pong}\\newcommand{\\pong}{\\ping}\\ping " + BODY,
    "exponential": "".join(f"\\newcommand{{\\m{chr(97 + i)}}}{{\\m{chr(98 + i)}\\m{chr(98 + i)}}}" for i in range(24))
    + "\\newcommand{\\my}{boom}\\ma " + BODY,
    "missing_argument": "\\newcommand{\\pair}[2]{(#1,#2)}" + BODY + " \\pair{a}}",
}
REASONS = {
    "extra_open": "unbalanced_braces",
    "extra_close": "unbalanced_braces",
    "unclosed_definition": "unbalanced_braces",
    "self_recursive_def": "macro_expansion_limit",
    "self_recursive_newcommand": "macro_expansion_limit",
    "recursive_with_argument": "macro_expansion_limit",
    "mutually_recursive": "macro_expansion_limit",
    "exponential": "macro_expansion_limit",
    "missing_argument": "unbalanced_braces",
}


def test_hostile_latex_is_dropped_with_its_reason_in_bounded_time(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_paper(raw / "2101.00000.tar.gz")
    for number, (name, body) in enumerate(HOSTILE.items(), start=1):
        write_paper(raw / f"2101.{number:05d}.tar.gz", [("main.tex", PAPER.replace(BODY, body).encode())])
    started = time.perf_counter()
    stats, docs = run(ArXiv(ArxivConfig(min_chars=1)), raw, tmp_path / "out")
    assert time.perf_counter() - started < 20
    assert [(d.id, d.text) for d in docs] == [("2101.00000", PAPER_TEXT)]
    expand = stats["stages"][1]
    assert expand["name"] == "expand_macros"
    expected: dict[str, int] = {}
    for reason in REASONS.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert expand["dropped"] == expected


def test_input_cycles_and_deep_nesting_are_cut(tmp_path: Path) -> None:
    main = PAPER.replace(BODY, BODY + " \\input{a}")
    members = [("main.tex", main.encode()), ("a.tex", b"A \\input{b}"), ("b.tex", b"B \\input{a} \\input{main}")]
    members += [(f"d{i}.tex", f"D{i} \\input{{d{i + 1}}}".encode()) for i in range(20)]
    members[0] = ("main.tex", main.replace("\\input{a}", "\\input{a} \\input{d0}").encode())
    write_paper(tmp_path / "raw/2101.00001.tar.gz", members)
    _, docs = run(ArXiv(ArxivConfig(min_chars=1)), tmp_path / "raw", tmp_path / "out")
    # a -> b -> a again (cut), main again (cut); d0 -> d1 -> ... stops at depth 8.
    assert docs[0].text == PAPER_TEXT + " A B   D0 D1 D2 D3 D4 D5 D6 D7"


# Inputs the first cleaner could not finish: a tiny archive whose expansion is huge (a wide
# and a deep bomb), 19,500-deep nested macro arguments, 30k unclosed comment environments.
BOMBS = {
    "wide_bomb": "\\newcommand{\\x}{" + "x" * 200_000 + "}" + "\\x" * 20_000,
    "deep_bomb": "\\def\\a{" + "y" * 100_000 + "}"
    + "".join("\\def\\" + c + "{" + ("\\" + p) * 8 + "}" for p, c in zip("abcdefg", "bcdefgh")) + "\\h",
    "nested_arguments": "\\newcommand{\\m}[1]{(#1)}" + "\\m{" * 19_500 + "x" + "}" * 19_500,
}


def test_expansion_bombs_are_dropped_with_bounded_output(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_paper(raw / "2101.00000.tar.gz")
    sizes = {}
    for number, (name, body) in enumerate(BOMBS.items(), start=1):
        path = write_paper(raw / f"2101.{number:05d}.tar.gz", [("main.tex", PAPER.replace(BODY, body).encode())])
        sizes[name] = path.stat().st_size
    assert max(sizes.values()) < 500  # each archive is a few hundred bytes
    stats, docs = run(ArXiv(ArxivConfig(min_chars=1)), raw, tmp_path / "out")
    assert [(d.id, d.text) for d in docs] == [("2101.00000", PAPER_TEXT)]
    assert stats["stages"][1]["dropped"] == {"macro_expansion_limit": 3}


def test_unclosed_comment_environments_end_the_text(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    body = BODY + "\n\\begin{comment}" * 30_000
    write_paper(raw / "2101.00001.tar.gz", [("main.tex", PAPER.replace(BODY, body).encode())])
    _, docs = run(ArXiv(ArxivConfig(min_chars=1)), raw, tmp_path / "out")
    # Oracle: an unclosed comment environment runs to the end of the file, as LaTeX reads it.
    assert [d.text for d in docs] == ["\\section{Intro}\nEvery $x \\in \\mathbb{R}$ is real."]
