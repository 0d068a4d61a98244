"""The paper's own packages: their notation macros and verbatim environments written into the
paper, with the expected text written out by hand."""

from __future__ import annotations

from pipeline.text import latex
from pipeline.text.latex_macros import collect_macros, expand_macros
from pipeline.text.latex_packages import inline_packages
from pipeline.text.latex_verbatim import Environments


def expand(source: str) -> str:
    macros, text = collect_macros(source)
    return expand_macros(text, macros)


def test_package_notation_macros_only() -> None:
    sty = (
        "\\ProvidesPackage{own}\\newcommand{\\Reals}{\\mathbb{R}}\\DeclareMathOperator{\\Tr}{Tr}"
        "\\renewcommand{\\left}{\\mathopen{}\\mathclose\\bgroup\\originalleft}\\providecommand{\\section}{}"
        "\\DeclareRobustCommand\\citet{\\begingroup\\NAT@swafalse\\@citex}\\def\\@internal{x}\\def\\vx{\\mathbf{x}}"
        "\\usepackage{more}"
    )
    files = {"own.sty": sty, "more.sty": "\\newcommand{\\half}{\\frac12}"}
    text = inline_packages("\\usepackage[opt]{amsmath,own}\\begin{document}\\section{A} $\\Reals \\Tr \\vx \\half$ \\citet{k}",
                           "", files.get)
    macros, rest = collect_macros(text)
    assert sorted(macros) == ["Reals", "Tr", "half", "vx"]
    assert expand_macros(latex.cut_before_first_section(rest), macros) == (
        "\\section{A} $\\mathbb{R} \\operatorname{Tr} \\mathbf{x} \\frac12$ \\citet{k}"
    )


def test_usepackage_in_a_listing_loads_nothing() -> None:
    files = {"mine.sty": "\\newcommand{\\R}{\\mathbb{R}}"}
    text = "\\begin{verbatim}\\usepackage{mine}\\end{verbatim}\\usepackage{mine}"
    assert inline_packages(text, "", files.get) == (
        "\\begin{verbatim}\\usepackage{mine}\\end{verbatim}\\usepackage{mine}\\newcommand{\\R}[0]{\\mathbb{R}}")


def test_a_package_brings_its_verbatim_environments() -> None:
    files = {"listings.sty": "\\lstnewenvironment{code}{}{}\\newcommand{\\R}{\\mathbb{R}}"}
    text = inline_packages("\\usepackage{listings}", "", files.get)
    assert text == ("\\usepackage{listings}\\newcommand{\\R}[0]{\\mathbb{R}}"
                    "\\DefineVerbatimEnvironment{code}{Verbatim}{}")
    # So the paper's text reads `code` as verbatim: no macro expands and no `%` is a comment there.
    expanded = expand(text + "\\begin{code}\\R 5%\\end{code} $\\R$")
    assert expanded.endswith("\\begin{code}\\R 5%\\end{code} $\\mathbb{R}$")


def test_usepackage_in_a_listing_of_an_environment_another_file_defines_loads_nothing() -> None:
    # `code` is verbatim by a package's \lstnewenvironment, which the text alone does not show.
    files = {"mine.sty": "\\newcommand{\\R}{\\mathbb{R}}"}
    text = "\\begin{code}\n\\usepackage{mine}\n\\end{code}"
    assert inline_packages(text, "", files.get, Environments(frozenset({"code"}))) == text
