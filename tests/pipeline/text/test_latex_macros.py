"""User macros: `\\let` copies the meaning its target has at that point, as TeX does. Expected
strings are written by hand from TeX's rules."""

from __future__ import annotations

import pytest

from pipeline.text.latex_macros import collect_macros, expand_macros


def expand(source: str) -> str:
    macros, text = collect_macros(source)
    return expand_macros(text, macros)


@pytest.mark.parametrize(
    "source, expected",
    [
        # Saving a LaTeX command and wrapping it: the saved name prints the command itself.
        (r"\let\oldemph\emph\renewcommand{\emph}[1]{\textbf{\oldemph{#1}}}a \emph{word} b",
         r"a \textbf{\emph{word}} b"),
        (r"\let\oldref\ref\renewcommand{\ref}[1]{Sec.~\oldref{#1}}see \ref{s:intro}", r"see Sec.~\ref{s:intro}"),
        (r"\let\oldsection\section\renewcommand{\section}{\clearpage\oldsection}\section{A}", r"\clearpage\section{A}"),
        (r"\let\oldemph=\emph\def\emph#1{[\oldemph{#1}]}\emph{x}", r"[\emph{x}]"),
        # A user macro is copied as it is then: a later redefinition leaves the copy alone.
        (r"\newcommand{\b}{old}\let\a\b\renewcommand{\b}{new}\a \b", "old new"),
        (r"\newcommand{\f}[1]{(#1)}\let\g\f\renewcommand{\f}[1]{[#1]}\g{x}\f{y}", "(x)[y]"),
        (r"\def\b{x}\let\a=\b\def\b{y}\a\b", "xy"),
        (r"\newcommand{\pair}[2][x]{(#1,#2)}\let\pp\pair\renewcommand{\pair}{P}\pp{y} \pp[z]{y} \pair",
         "(x,y) (z,y) P"),
        # Defined only after the \let: the \let took the LaTeX command, which prints as written.
        (r"\let\a\b\newcommand{\b}{B}\a\b", r"\b B"),
        # A wrapper of a saved macro of the paper's own: the old body inside the new one.
        (r"\newcommand{\ours}{Net}\let\oldours\ours\renewcommand{\ours}{\textsc{\oldours}}\ours", r"\textsc{Net}"),
    ],
)
def test_let_takes_the_meaning_its_target_has_then(source: str, expected: str) -> None:
    assert expand(source) == expected


def test_let_of_a_layout_macro_is_layout_too() -> None:
    # `\linkdest` is machinery (removed with its argument): a copy of it is removed the same way.
    source = r"\makeatletter\newcommand{\linkdest}[1]{\Hy@raisedlink{#1}}\makeatother\let\ld\linkdest a\ld{x}b"
    assert expand(source) == r"\makeatletter\makeatother ab"
