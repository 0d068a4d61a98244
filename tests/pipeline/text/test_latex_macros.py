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
        # Redefined only after the \let: the \let took the LaTeX command, which prints as written
        # (\renewcommand, \def and \DeclareRobustCommand all replace a command LaTeX has).
        (r"\let\a\b\renewcommand{\b}{B}\a\b", r"\b B"),
        (r"\let\latexcite\cite\def\cite#1{[#1]}\latexcite{k} \cite{k}", r"\cite{k} [k]"),
        (r"\let\oldvec\vec\DeclareRobustCommand{\vec}[1]{\mathbf{#1}}$\oldvec{x}\vec{y}$", r"$\vec{x}\mathbf{y}$"),
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


@pytest.mark.parametrize(
    "source, expected",
    [
        # \newcommand after the \let: LaTeX refuses it for a defined name, so the target was
        # undefined at the \let. A paper printing through the copy compiled only with the \let
        # run later (\AtBeginDocument): the copy prints the definition's text, never the name.
        (r"\let\foo\bar\newcommand{\bar}{B}\foo{} and \bar", "B and B"),
        (r"\let\cvec\myvec \newcommand{\myvec}[1]{\mathbf{#1}}$\cvec{x}+\myvec{y}$", r" $\mathbf{x}+\mathbf{y}$"),
        (r"\AtBeginDocument{\let\foo\bar}\newcommand{\bar}{B}\foo.", r"\AtBeginDocument{}B."),
        (r"\let\Exp\E \DeclareMathOperator{\E}{\mathbb{E}}$\Exp x$", r" $\operatorname{\mathbb{E}} x$"),
        (r"\let\nrm\norm \DeclarePairedDelimiter{\norm}{\lVert}{\rVert}$\nrm{v}$", r" $\lVert v\rVert$"),
        (r"\let\pp\pair \NewDocumentCommand{\pair}{m m}{(#1,#2)}\pp{a}{b}", " (a,b)"),
        # The copy redefined before the target is defined: its own definition holds.
        (r"\let\foo\bar \renewcommand{\foo}{F}\newcommand{\bar}{B}\foo\bar", " FB"),
        # Only the target's first definition after the \let binds the copy.
        (r"\let\foo\bar \newcommand{\bar}{B}\renewcommand{\bar}{C}\foo\bar", " BC"),
        # A wrapper over a command that was not there: TeX's copy is undefined and prints nothing
        # (bound to the wrapper, it would call itself without end).
        (r"\let\oldx\x \newcommand{\x}{[\oldx]}\x{} and \oldx.", " [] and ."),
    ],
)
def test_let_of_a_macro_the_paper_defines_later(source: str, expected: str) -> None:
    assert expand(source) == expected
