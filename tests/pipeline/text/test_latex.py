"""LaTeX cleaning helpers: exact expansions, comments, inputs, bounded recursion."""

from __future__ import annotations

import pytest

from pipeline.text.latex import (
    LatexError,
    check_braces,
    collect_macros,
    cut_before_first_section,
    expand_macros,
    inline_inputs,
    remove_bibliography,
    strip_comments,
)


def expand(source: str) -> str:
    macros, text = collect_macros(source)
    return expand_macros(text, macros)


@pytest.mark.parametrize(
    "source, expected",
    [
        (r"\newcommand{\R}{\mathbb{R}}$\R^n$", r"$\mathbb{R}^n$"),
        (r"\newcommand{\norm}[1]{\lVert #1 \rVert}$\norm{x+y}$", r"$\lVert x+y \rVert$"),
        (r"\newcommand{\pair}[2][x]{(#1,#2)}\pair{y} \pair[z]{y}", "(x,y) (z,y)"),
        (r"\def\eps{\varepsilon}$\eps$", r"$\varepsilon$"),
        (r"\newcommand{\R}{\mathbb{R}}\newcommand{\Real}{\mathrm{Re}}\R \Real \Rbar", r"\mathbb{R} \mathrm{Re} \Rbar"),
        (r"\newcommand\ip[2]{\langle #1, #2\rangle}\ip a{\beta}", r"\langle a, \beta\rangle"),
        (r"\renewcommand{\vec}[1]{\mathbf{#1}}\vec v", r"\mathbf{v}"),
        (r"\newcommand{\x}{a}\providecommand{\x}{b}\providecommand{\y}{c}\x\y", "ac"),
        (r"\DeclareMathOperator{\tr}{tr}\DeclareMathOperator*{\am}{arg\,max}\tr A \am", r"\operatorname{tr} A \operatorname*{arg\,max}"),
        (r"\def\sq#1{#1^2}\def\two#1#2{#2#1}\sq{x} \two ab", "x^2 ba"),
        (r"\newcommand{\ours}{OurNet}\ours{} is", "OurNet is"),
        (r"\newcommand{\outer}[1]{\inner{#1}}\newcommand{\inner}[1]{[#1]}\outer{z}", "[z]"),
        (r"\newcommand{\R}{X}\\R and \\\R", r"\\R and \\X"),
        (r"\newcommand*{\hash}[1]{##1-#1}\hash{q}", "#1-q"),
    ],
)
def test_macro_expansion_is_exact(source: str, expected: str) -> None:
    assert expand(source) == expected


@pytest.mark.parametrize("source", [r"\def\a{\a}\a", r"\newcommand{\a}{\b x}\newcommand{\b}{\a}\a",
                                    r"\newcommand{\big}{\big\big}\big"])
def test_recursive_macros_stop_with_a_reason(source: str) -> None:
    with pytest.raises(LatexError) as caught:
        expand(source)
    assert caught.value.reason == "macro_expansion_limit"


def test_unbalanced_braces_are_reported() -> None:
    for bad in [r"\textbf{open", r"close}", r"\newcommand{\a}{b"]:
        with pytest.raises(LatexError) as caught:
            check_braces(bad)
        assert caught.value.reason == "unbalanced_braces"
    check_braces(r"\{ escaped \} and \verb|{| and {ok}")


def test_comments_removed_but_escaped_percent_kept() -> None:
    text = "50\\% of % a comment\nthe rest\n% whole line\n\\\\% after a line break\nend\n\\begin{comment}x\\end{comment}"
    assert strip_comments(text) == "50\\% of the rest\n\\\\end\n"


def test_inputs_inlined_relative_to_main_file_with_cycles_cut() -> None:
    files = {"tex/a.tex": "A \\input{b} %\\input{c}\n", "tex/b.tex": "B \\include{a}", "tex/c.tex": "C"}
    assert inline_inputs("start \\input{a.tex} \\input{../../etc/passwd} end", "tex", files.get) == "start A B  \n  end"


def test_structure_cuts() -> None:
    for command in ["part", "chapter", "section", "subsection", "subsubsection", "paragraph", "subparagraph"]:
        assert cut_before_first_section(f"preamble \\{command}*{{T}} body") == f"\\{command}*{{T}} body"
    assert cut_before_first_section("\\sectionmark{x} no section") is None
    text = "\\section{A} a\n\\begin{thebibliography}{9}\\bibitem{x} X\\end{thebibliography}\n\\appendix\nB\n\\printbibliography[heading=none]\\end{document}tail"
    assert remove_bibliography(text) == "\\section{A} a\n\n\\appendix\nB"
