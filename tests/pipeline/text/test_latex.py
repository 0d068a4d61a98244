"""LaTeX cleaning helpers: exact expansions, comments, inputs, bounded recursion."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from pipeline.text import latex
from pipeline.text.latex_macros import collect_macros, expand_macros
from pipeline.text.latex_verbatim import Environments


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
    with pytest.raises(latex.LatexError) as caught:
        expand(source)
    assert caught.value.reason == "macro_expansion_limit"


@pytest.mark.parametrize("source", [r"\DeclareMathOperator{\a b}{x} see \a here", r"\DeclareMathOperator{a}{x} \a",
                                    r"\DeclareMathOperator*{\a\begin{a}}{x} \a"])
def test_a_math_operator_whose_name_is_not_one_control_word_defines_nothing(source: str) -> None:
    # Found by fuzzing: `{\a b}` was taken as the name "a b", which made `\a` a use of no macro (KeyError).
    macros, text = collect_macros(source)
    assert macros == {} and text == source
    assert expand_macros(text, macros) == source


def test_unbalanced_braces_are_reported() -> None:
    for bad in [r"\textbf{open", r"close}", r"\newcommand{\a}{b"]:
        with pytest.raises(latex.LatexError) as caught:
            latex.check_braces(bad)
        assert caught.value.reason == "unbalanced_braces"
    latex.check_braces(r"\{ escaped \} and \verb|{| and {ok}")
    # A lone surrogate (a source decoded with surrogateescape) is one more character, not an error.
    latex.check_braces("{\ud800}")
    with pytest.raises(latex.LatexError):
        latex.check_braces("\udc80{")


def test_comments_removed_but_escaped_percent_kept() -> None:
    text = "50\\% of % a comment\nthe rest\n% whole line\n\\\\% after a line break\nend\n\\begin{comment}x\\end{comment}"
    assert latex.strip_comments(text) == "50\\% of the rest\n\\\\end\n"


def test_inputs_inlined_relative_to_main_file_with_cycles_cut() -> None:
    files = {"tex/a.tex": "A \\input{b} %\\input{c}\n", "tex/b.tex": "B \\include{a}", "tex/c.tex": "C"}
    assert latex.inline_inputs("start \\input{a.tex} \\input{../../etc/passwd} end", "tex", files.get) == "start A B  \n  end"


def test_structure_cuts() -> None:
    for command in ["part", "chapter", "section", "subsection", "subsubsection", "paragraph", "subparagraph"]:
        assert latex.cut_before_first_section(f"preamble \\{command}*{{T}} body") == f"\\{command}*{{T}} body"
    assert latex.cut_before_first_section("\\sectionmark{x} no section") is None
    text = "\\section{A} a\n\\begin{thebibliography}{9}\\bibitem{x} X\\end{thebibliography}\n\\appendix\nB\n\\printbibliography[heading=none]\\end{document}tail"
    assert latex.remove_bibliography(text) == "\\section{A} a\n\n\\appendix\nB"


@pytest.mark.parametrize(
    "source, expected",
    [
        # A body starting with a letter after a control word: TeX would read `\gammaq`.
        (r"\newcommand{\idx}{q}$\gamma\idx \times\idx$", r"$\gamma q \times q$"),
        (r"\newcommand{\f}[1]{\alpha#1}\newcommand{\g}[1]{#1x}\f{y} \g{\beta}", r"\alpha y \beta x"),
        (r"\newcommand{\two}{ab}\\\two", r"\\ab"),  # `\\` is a line break, not a control word
        (r"\newcommand*\eg{e.g.\@\xspace}\eg it", r"e.g.\@\xspace it"),
        (r"\newcommand*{\ip}[2]{\langle#1,#2\rangle}\ip{a}{b}", r"\langle a,b\rangle"),
        (r"\DeclareRobustCommand{\vect}[1]{\mathbf{#1}}\DeclareRobustCommand\ours{Ours}\vect{v} \ours", r"\mathbf{v} Ours"),
        (r"\DeclarePairedDelimiter{\ceil}{\lceil}{\rceil}\ceil{x} \ceil*{y} \ceil[\big]{z}",
         r"\lceil x\rceil \left\lceil y\right\rceil \bigl\lceil z\bigr\rceil"),
        (r"\DeclarePairedDelimiterX{\kl}[2]{(}{)}{#1\;\delimsize\|\;#2}\kl{p}{q} \kl*{p}{q}",
         r"(p\;\|\;q) \left(p\;\middle\|\;q\right)"),
        (r"\let\eps\varepsilon\let\phi=\varphi$\eps\phi$", r"$\varepsilon\varphi$"),
        # \makeatletter code is layout: internals never leak, uses of its macros go.
        (r"\makeatletter\newcommand{\linkdest}[1]{\Hy@raisedlink{\hypertarget{#1}{}}}\def\@x{X}\makeatother a\linkdest{id}b",
         r"\makeatletter\makeatother ab"),
        ((r"\makeatletter\DeclareRobustCommand\onedot{\futurelet\@let@token\@onedot}"
          r"\def\@onedot{\ifx\@let@token.\else.\null\fi\xspace}\def\eg{\emph{e.g}\onedot}\makeatother see \eg it"),
         r"\makeatletter\makeatother see \emph{e.g}. it"),  # more in test_latex_lookahead.py
        (r"\makeatletter\newcommand{\R}{\mathbb{R}}\makeatother$\R$", r"\makeatletter\makeatother$\mathbb{R}$"),
        (r"\newcommand{\outer}{\inner}\newcommand{\inner}[1]{[#1]}\outer{z}", "[z]"),
        # TeX primitives are text to keep (the number), a TeX loop (calls itself under \if) is not.
        (r"\newcommand{\RNum}[1]{\uppercase\expandafter{\romannumeral #1\relax}}Set-\RNum{2}",
         r"Set-\uppercase\expandafter{\romannumeral 2\relax}"),
        (r"\def\next#1{#1\ifnum\c>0 \expandafter\next\fi}[\next{a}]", "[]"),
    ],
)
def test_expansion_of_real_paper_idioms(source: str, expected: str) -> None:
    assert expand(source) == expected


def test_expansion_never_creates_a_control_word() -> None:
    source = r"\newcommand{\idx}{q}\newcommand{\e}{}\newcommand{\w}[1]{#1}$\gamma\idx\e x \w{\beta}y \times\w{z}$"
    result = expand(source)
    # Oracle: every control word of the output is one the input spelled out.
    words_in = set(re.findall(r"\\[A-Za-z]+", source))
    assert set(re.findall(r"\\[A-Za-z]+", result)) <= words_in
    assert result == r"$\gamma q x \beta y \times z$"


def test_inputs_include_star_import_and_subimport() -> None:
    files = {
        "main.tex": "",
        "chapters/one.tex": "ONE \\input{part}",  # \input resolves against the main folder
        "part.tex": "PART",
        "figs/sub/plot.tex": "PLOT \\input{data}",  # inside \import, against the import folder
        "figs/sub/data.tex": "DATA",
        "figs/table.tex": "TABLE \\subimport{sub/}{plot}",
    }
    text = "\\include*{chapters/one} \\import{figs/sub/}{plot.tex} \\subimport*{figs}{table} \\import{fig/}{diagram.pdf_tex}."
    assert latex.inline_inputs(text, "", files.get) == "ONE PART PLOT DATA TABLE PLOT DATA ."


@pytest.mark.parametrize(
    "text, expected",
    [
        # NeurIPS checklist (an unnumbered section) after the references: dropped; appendix kept.
        (("\\section{A} a\n\\bibliography{refs}\n\\section*{Checklist}\n\\begin{enumerate}\\item Q \\answerYes{}\\end{enumerate}"
          "\n\\appendix\n\\section{Proofs} p"), "\\section{A} a\n\n\\appendix\n\\section{Proofs} p"),
        # Journal back matter and a consortium name list: dropped.
        ("\\section{A} a\n\\bibliography{refs}\n\\section*{Author Contributions} X did it.\n\\section*{Consortium}\n{\\bfseries A, B}",
         "\\section{A} a"),
        # The bibliography inside a font group leaves no empty group behind.
        ("\\section{A} a\n{\\footnotesize\\bibliography{amor}}\n\\end{document}", "\\section{A} a"),
        # A `References` heading over the bibliography goes with it; a numbered section after it stays.
        ("\\section{A} a\n\\section{References}\n\\bibliographystyle{plain}\n\\bibliography{p}\n\\section{Supplement} s",
         "\\section{A} a\n\n\\section{Supplement} s"),
        ("\\section{A} a\n\\begin{thebibliography}{1}\\bibitem{k} K\\end{thebibliography}\n\\clearpage\\input{x}\\appendix B",
         "\\section{A} a\n\n\\appendix B"),
        ("\\section{A} a\n\\printbibliography\n\\appendix\n", "\\section{A} a"),
    ],
)
def test_what_follows_the_bibliography(text: str, expected: str) -> None:
    assert latex.remove_bibliography(text) == expected


def test_unclosed_environments_and_comments_scan_linearly() -> None:
    # 30k unclosed comment environments: the first runs to the end of the file, as in LaTeX.
    text = "kept " + "\\begin{comment} x " * 30_000
    assert latex.strip_comments(text) == "kept "
    # The same for verbatim when braces are checked, and unclosed \verb on one line is text.
    latex.check_braces("{ok}" + "\\begin{verbatim}{" * 30_000)
    with pytest.raises(latex.LatexError):
        latex.check_braces("\\verb|" * 30_000 + "{")
    assert latex.strip_comments("\\" * 100_001 + "%x\ny") == "\\" * 100_001 + "%x\ny"


def test_expansion_output_is_bounded() -> None:
    # A 100 kB body used 20 times is 2 MB from 100 kB of input: past 8x + 1 MB.
    source = "\\newcommand{\\big}{" + "x" * 100_000 + "}" + "\\big" * 20
    with pytest.raises(latex.LatexError) as caught:
        expand(source)
    assert caught.value.reason == "macro_expansion_limit"
    # Within the bound it expands exactly.
    assert expand("\\newcommand{\\m}{" + "x" * 1000 + "}" + "\\m" * 5) == "x" * 5000


def test_inlining_is_bounded_in_total_size() -> None:
    # Each level inputs the next ten times: 10^6 copies of the leaf from a few hundred bytes.
    files = {f"l{i}.tex": f"\\input{{l{i + 1}}}" * 10 for i in range(6)}
    files["l6.tex"] = "leaf text " * 10
    with pytest.raises(latex.LatexError) as caught:
        latex.inline_inputs("\\input{l0}", "", files.get)
    assert caught.value.reason == "input_expansion_limit"
    assert latex.inline_inputs("\\input{l5}", "", files.get) == "leaf text " * 100


# --- verbatim: TeX reads a listing as text ---------------------------------------------------


def test_percent_inside_verbatim_is_not_a_comment() -> None:
    text = "50\\% % gone\nkept \\begin{verbatim}\n% shown\n\\end{verbatim} \\verb|%x| after % gone too\n"
    # The last comment keeps its line break: no text follows for TeX to join.
    assert latex.strip_comments(text) == "50\\% kept \\begin{verbatim}\n% shown\n\\end{verbatim} \\verb|%x| after \n"
    # A verbatim environment another file defines is given by name.
    code = Environments(frozenset({"code"}))
    assert latex.strip_comments("\\begin{code}%x\\end{code}%y", code) == "\\begin{code}%x\\end{code}"


def test_end_document_in_a_listing_does_not_end_the_paper() -> None:
    text = ("\\section{A} a\n\\begin{lstlisting}\n\\begin{document}\n\\end{document}\n\\end{lstlisting}\n"
            "\\section{B} b\n\\end{document}\ntrailer")
    assert latex.remove_bibliography(text) == (
        "\\section{A} a\n\\begin{lstlisting}\n\\begin{document}\n\\end{document}\n\\end{lstlisting}\n\\section{B} b")


def test_bibliography_in_a_listing_cuts_nothing() -> None:
    text = ("\\section{A} Use:\n\\begin{lstlisting}\n\\bibliographystyle{plain}\n\\bibliography{refs}\n"
            "\\begin{thebibliography}{9}\n\\end{lstlisting}\n\\section*{Notes} n\n"
            "\\begin{thebibliography}{1}\\bibitem{k} K\\end{thebibliography}\n\\section*{Checklist} c")
    assert latex.remove_bibliography(text) == (
        "\\section{A} Use:\n\\begin{lstlisting}\n\\bibliographystyle{plain}\n\\bibliography{refs}\n"
        "\\begin{thebibliography}{9}\n\\end{lstlisting}\n\\section*{Notes} n")


def test_a_listing_of_an_environment_defined_elsewhere_is_text_to_the_bibliography_cut() -> None:
    # After the cut before the first section, nothing in the text says `code` is verbatim.
    text = ("\\section{A} Use:\n\\begin{code}\n\\bibliographystyle{plain}\n\\end{document}\n\\bibliography{x}\n"
            "\\end{code}\nMore text.\n\\bibliography{refs}\n\\section*{Checklist} c\n\\end{document}\ntrailer")
    listing = ("\\section{A} Use:\n\\begin{code}\n\\bibliographystyle{plain}\n\\end{document}\n"
               "\\bibliography{x}\n\\end{code}")
    assert latex.remove_bibliography(text, Environments(frozenset({"code"}))) == listing + "\nMore text."
    assert latex.remove_bibliography(text) == "\\section{A} Use:\n\\begin{code}"  # what the name is needed for


def test_appendix_in_verb_after_the_bibliography_keeps_nothing() -> None:
    # Back matter after the references mentions \appendix in \verb: no appendix starts there.
    text = ("\\section{A} a\n\\bibliography{refs}\n\\section*{Checklist} Put \\verb|\\appendix| last.\n"
            "\\appendix\n\\section{Proof} p")
    assert latex.remove_bibliography(text) == "\\section{A} a\n\n\\appendix\n\\section{Proof} p"


def test_first_section_and_inputs_in_verbatim_are_text() -> None:
    text = "Preamble \\verb|\\section{X}| and \\begin{verbatim}\\section{Y}\\end{verbatim}\n\\section{Real} r"
    assert latex.cut_before_first_section(text) == "\\section{Real} r"
    assert latex.cut_before_first_section("\\begin{verbatim}\\section{Y}") is None
    files = {"a.tex": "A"}
    assert latex.inline_inputs("\\input{a} \\verb|\\input{a}| \\begin{verbatim}\\input{a}\\end{verbatim}", "",
                               files.get) == "A \\verb|\\input{a}| \\begin{verbatim}\\input{a}\\end{verbatim}"


def test_macros_are_neither_defined_nor_expanded_in_verbatim() -> None:
    source = ("\\begin{verbatim}\\newcommand{\\R}{X}\\end{verbatim}\\newcommand{\\N}{\\mathbb{N}}"
              "$\\N$ \\verb|\\N| \\begin{lstlisting}\\N \\R\\end{lstlisting} \\R")
    assert expand(source) == ("\\begin{verbatim}\\newcommand{\\R}{X}\\end{verbatim}$\\mathbb{N}$ \\verb|\\N| "
                              "\\begin{lstlisting}\\N \\R\\end{lstlisting} \\R")
    # Braces in verbatim are not counted: an unbalanced brace in a listing is text.
    latex.check_braces("{a} \\verb|{| \\begin{minted}{c}int f() {\\end{minted}")


def test_delimited_def_is_counted_too() -> None:
    counted: Counter[str] = Counter()
    macros, text = collect_macros("\\def\\x#1.{[#1]}\\x a.", unsupported=counted)
    assert (expand_macros(text, macros), dict(counted)) == ("\\x a.", {"delimited_def": 1})
