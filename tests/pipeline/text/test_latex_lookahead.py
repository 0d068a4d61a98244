"""Look-ahead macros (`\\onedot` of the CVPR/ICCV/ECCV templates): the text LaTeX prints, by form
and by what follows. Expected strings are written by hand from LaTeX's behaviour: a dot unless a
"." follows, xspace's space before a word, none before punctuation."""

from __future__ import annotations

import time

import pytest

from pipeline.text import latex
from pipeline.text.latex_lookahead import LookAhead, choose
from pipeline.text.latex_macros import collect_macros, expand_macros
from pipeline.text.latex_packages import inline_packages


def expand(source: str) -> str:
    macros, text = collect_macros(source)
    return expand_macros(text, macros)


ABBREVIATIONS = r"\def\eg{e.g\onedot}\def\etal{\emph{et al}\onedot}"
FORMS = {
    # cvpr.sty and the CVPR/ICCV author kits.
    "futurelet": (r"\makeatletter\DeclareRobustCommand\onedot{\futurelet\@let@token\@onedot}"
                  r"\def\@onedot{\ifx\@let@token.\else.\null\fi\xspace}" + ABBREVIATIONS + r"\makeatother"),
    # The helper defined first, compared the other way round, \def instead of \DeclareRobustCommand.
    "futurelet_reversed": (r"\makeatletter\def\@onedot{\ifx.\@let@token\else.\fi\xspace}"
                           r"\def\onedot{\futurelet\@let@token\@onedot}" + ABBREVIATIONS + r"\makeatother"),
    "ifnextchar": r"\makeatletter\def\onedot{\@ifnextchar.{}{.\@\xspace}}" + ABBREVIATIONS + r"\makeatother",
    "ifnextchar_braced": (r"\makeatletter\newcommand{\onedot}{\@ifnextchar{.}{}{.\xspace}}" + ABBREVIATIONS
                          + r"\makeatother"),
}
PRINTED = [
    (r"as \eg trees", "as e.g. trees"),  # before a word: the paper's space
    (r"such as trees, \eg.", "such as trees, e.g."),  # before ".": no double dot
    (r"such as \eg, trees", "such as e.g., trees"),  # before ",": no space
    ("ends with \\eg\n\nNext paragraph", "ends with e.g.\n\nNext paragraph"),  # end of paragraph
    (r"ends with \eg", "ends with e.g."),  # end of text
    (r"by \etal\cite{k}, \etal~\cite{k} and \etal; \etal)",
     r"by \emph{et al}. \cite{k}, \emph{et al}.~\cite{k} and \emph{et al}.; \emph{et al}.)"),
    ("spaces TeX skips: \\eg .\n\\eg\n, x", "spaces TeX skips: e.g.\ne.g., x"),
    (r"{\eg} \eg{}x \eg\eg", r"{e.g.} e.g.{}x e.g. e.g."),
]


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("source, expected", PRINTED)
def test_onedot_prints_what_latex_prints(form: str, source: str, expected: str) -> None:
    assert expand(FORMS[form] + source) == r"\makeatletter\makeatother" + expected


def test_ifnextchar_after_text_and_without_xspace() -> None:
    # The LaTeX FAQ's \etc: the test ends a body that starts with text; no \xspace, so only the
    # paper's own space stands before a word.
    source = r"\makeatletter\newcommand\etc{etc\@ifnextchar.{}{.\@}}\makeatother (\etc) \etc. \etc, and \etc so"
    assert expand(source) == r"\makeatletter\makeatother (etc.) etc. etc., and etc. so"


def test_lookahead_macros_from_a_local_package() -> None:
    # CVPR 2022+ templates define \onedot and \eg in cvpr.sty itself.
    sty = (r"\ProvidesPackage{cvpr}\RequirePackage{xspace}\DeclareRobustCommand\onedot{\futurelet\@let@token\@onedot}"
           r"\def\@onedot{\ifx\@let@token.\else.\null\fi\xspace}\def\eg{\emph{e.g}\onedot}\def\ie{\emph{i.e}\onedot}")
    text = inline_packages(r"\usepackage[review]{cvpr}\begin{document}\eg it, \ie.", "", {"cvpr.sty": sty}.get)
    macros, rest = collect_macros(text)
    assert expand_macros(rest, macros) == r"\usepackage[review]{cvpr}\begin{document}\emph{e.g}. it, \emph{i.e}."


@pytest.mark.parametrize(
    "definitions",
    [
        r"\def\onedot{\@ifnextchar[{\opt}{\noopt}}",  # branches that are TeX, not text
        r"\def\onedot{\futurelet\@let@token\@onedot}",  # the helper is nowhere
        r"\def\onedot{\futurelet\@let@token\@onedot}\def\@onedot{\ifx\@let@token.\else\ifx\@let@token,\else.\fi\fi}",
        r"\def\onedot{\futurelet\@tok\@onedot}\def\@onedot{\ifx\@other.\else.\fi}",  # another token tested
        r"\def\onedot{\futurelet\@let@token\@onedot}\def\@onedot{\ifx\@let@token.\else.\fi" + " " * 300 + "}",  # long
    ],
)
def test_other_lookahead_stays_opaque(definitions: str) -> None:
    # As before: the uses go, no internal leaks, the abbreviation keeps its text.
    source = r"\makeatletter" + definitions + r"\def\eg{e.g\onedot}\makeatother see \eg it"
    assert expand(source) == r"\makeatletter\makeatother see e.g it"


def test_choose_reads_only_what_it_needs() -> None:
    onedot = LookAhead(".", "\\xspace", ".\\xspace")
    assert choose(onedot, "") == (".", 0)
    assert choose(onedot, "x") == (". ", 0)
    assert choose(onedot, " \n  .") == ("", 4)  # the spaces TeX skipped go
    assert choose(onedot, " \n \n.") == (".", 0)  # a blank line is \par, not "."
    assert choose(onedot, "\\footnote{x}") == (".", 0)


def test_lookahead_costs_constant_time_per_use() -> None:
    # 20k uses before a megabyte of spaces: only REACH characters are read (so the last use, which
    # cannot see the "." past them, prints its dot). Then 200 uses at the end of an 80-macro chain
    # (16k expansions): each sees past the frames the chain ended (none is left on the stack).
    definitions = r"\makeatletter\def\onedot{\@ifnextchar.{}{.\xspace}}\makeatother"
    started = time.perf_counter()
    assert expand(definitions + "\\onedot" * 19_999 + " " * 1_000_000 + ".").count(".") == 20_000
    names = [f"m{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(80)]
    chain = "".join(f"\\def\\{a}{{\\{b}}}" for a, b in zip(names, names[1:])) + f"\\def\\{names[-1]}{{\\onedot}}"
    assert expand(definitions + chain + f"\\{names[0]}" * 200 + ".").count(".") == 200
    assert time.perf_counter() - started < 5
    # A look-ahead that recurses is stopped by the expansion limit, as any recursive macro.
    with pytest.raises(latex.LatexError) as caught:
        expand(definitions + r"\def\a{\onedot\a}\a")
    assert caught.value.reason == "macro_expansion_limit"
