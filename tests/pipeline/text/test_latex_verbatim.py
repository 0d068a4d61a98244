"""Verbatim and comment regions of LaTeX source: the spans TeX reads as characters, found by
hand for each text below (the expected substrings are written out, not computed)."""

from __future__ import annotations

import re

from pipeline.text.latex_verbatim import Environments, paper_environments, regions


def verbatim_texts(text: str, environments: Environments = Environments()) -> list[str]:
    return [text[start:end] for start, end in regions(text, environments).verbatim]


def comment_texts(text: str) -> list[str]:
    return [text[start:end] for start, end in regions(text).comments]


def test_environments_and_inline_forms_are_verbatim() -> None:
    text = ("a \\begin{verbatim}\\end{document} 50%\\end{verbatim} b \\verb|\\appendix| c \\verb*+x+ "
            "\\Verb!y! \\begin{lstlisting}[language=TeX]\\bibliography{x}\\end{lstlisting} "
            "\\begin{minted}{latex}\\section{S}\\end{minted} \\lstinline[language=C]|p%q| \\lstinline{r} "
            "\\mintinline{tex}|\\input{z}| \\begin{Verbatim*}v\\end{Verbatim*} \\begin{BVerbatim}w\\end{BVerbatim}")
    assert verbatim_texts(text) == [
        "\\begin{verbatim}\\end{document} 50%\\end{verbatim}", "\\verb|\\appendix|", "\\verb*+x+", "\\Verb!y!",
        "\\begin{lstlisting}[language=TeX]\\bibliography{x}\\end{lstlisting}",
        "\\begin{minted}{latex}\\section{S}\\end{minted}", "\\lstinline[language=C]|p%q|", "\\lstinline{r}",
        "\\mintinline{tex}|\\input{z}|", "\\begin{Verbatim*}v\\end{Verbatim*}", "\\begin{BVerbatim}w\\end{BVerbatim}",
    ]
    assert comment_texts(text) == []


def test_an_unclosed_environment_runs_to_the_end_and_an_unclosed_verb_is_not_verbatim() -> None:
    text = "x \\verb|open\n\\begin{verbatim} y \\end{verbatim*} z"
    assert verbatim_texts(text) == ["\\begin{verbatim} y \\end{verbatim*} z"]
    # \verb{ closes at the next `{` (TeX's rule); a letter, `*`-only or a line end opens nothing.
    assert verbatim_texts("\\verb{a{ \\verbatim \\verb*\n| \\verb") == ["\\verb{a{"]


def test_comments_hide_verbatim_and_verbatim_hides_comments() -> None:
    text = "a % \\begin{verbatim}\nb \\begin{verbatim}%c\\end{verbatim} d \\% e \\\\% f\n  g"
    assert verbatim_texts(text) == ["\\begin{verbatim}%c\\end{verbatim}"]
    # The comment eats its line break and the next line's indentation (TeX joins the lines).
    assert comment_texts(text) == ["% \\begin{verbatim}\n", "% f\n  "]
    assert regions(text).without_comments(text) == "a b \\begin{verbatim}%c\\end{verbatim} d \\% e \\\\g"


def test_comment_environments_are_comments() -> None:
    text = "a \\begin{comment}\\begin{verbatim}\\end{comment} b \\excludecomment{hide}\\begin{hide}%\\end{hide}c"
    assert comment_texts(text) == ["\\begin{comment}\\begin{verbatim}\\end{comment}", "\\begin{hide}%\\end{hide}"]
    assert verbatim_texts(text) == []
    # Inside verbatim a comment environment is text.
    assert comment_texts("\\verb|\\begin{comment}| x") == []
    # Defined in another file of the paper (the preamble's \\excludecomment): given, as verbatim names are.
    assert regions(text).environments == Environments(comment=frozenset({"hide"}))
    assert paper_environments(["\\excludecomment{hide}", "x"]) == Environments(comment=frozenset({"hide"}))
    given = regions("a \\begin{hide}b\\end{hide} c", Environments(comment=frozenset({"hide"})))
    assert given.without_comments("a \\begin{hide}b\\end{hide} c") == "a  c"


def test_environments_the_paper_defines_are_verbatim_from_their_definition_on() -> None:
    text = ("\\begin{code}a\\end{code}\\lstnewenvironment{code}[1][]{}{}\\begin{code}b\\end{code}"
            "\\DefineVerbatimEnvironment{out}{Verbatim}{}\\begin{out}c\\end{out}"
            "\\RecustomVerbatimEnvironment{Verbatim}{Verbatim}{}"
            "\\newminted{python}{}\\begin{pythoncode}d\\end{pythoncode}\\begin{pythoncode*}{}e\\end{pythoncode*}"
            "\\newminted[shell]{bash}{}\\begin{shell}f\\end{shell}\\newtcblisting{box}{}\\begin{box}g\\end{box}")
    assert verbatim_texts(text) == ["\\begin{code}b\\end{code}", "\\begin{out}c\\end{out}",
                                    "\\begin{pythoncode}d\\end{pythoncode}",
                                    "\\begin{pythoncode*}{}e\\end{pythoncode*}",
                                    "\\begin{shell}f\\end{shell}", "\\begin{box}g\\end{box}"]
    # The standard names (Verbatim) are not repeated.
    assert regions(text).environments == Environments(
        frozenset({"code", "out", "pythoncode", "pythoncode*", "shell", "shell*", "box"}))
    # Defined in another file of the paper: given by name.
    code = Environments(verbatim=frozenset({"code"}))
    assert verbatim_texts("\\begin{code}%x\\end{code}", code) == ["\\begin{code}%x\\end{code}"]
    assert paper_environments(["\\lstnewenvironment{a}{}{}", "% \\lstnewenvironment{b}{}{}", "x"]) == Environments(
        frozenset({"a"}))


def test_search_skips_matches_in_verbatim() -> None:
    text = "\\begin{verbatim}\\end{document}\\end{verbatim} \\verb|\\end{document}| \\end{document}"
    found = regions(text).search(re.compile(r"\\end\{document\}"), text)
    assert found is not None and found.start() == text.rindex("\\end{document}")
    assert regions(text).without_verbatim(text) == "  \\end{document}"


def test_escapes_before_a_command_are_counted() -> None:
    # `\\` is a line break, so `\\\verb|x|` is a break then \verb; `\\verb|x|` is a break then "verb|x|".
    assert verbatim_texts("\\\\\\verb|x| \\\\verb|y|") == ["\\verb|x|"]
    assert verbatim_texts("\\\\\\begin{verbatim}a\\end{verbatim}") == ["\\begin{verbatim}a\\end{verbatim}"]


def test_a_url_is_read_as_characters() -> None:
    # url.sty reads \url's argument verbatim: `%` there is part of the URL, not a comment.
    text = ("see \\url{https://a.org/x%20y} and \\url|b%c| \\nolinkurl{d%e} \\url {f{g}%h} % note\n"
            "then \\href{https://i.org/%7Ej}{home % cut\n page} \\href[page=2]{k%l}{m}")
    assert verbatim_texts(text) == ["\\url{https://a.org/x%20y}", "\\url|b%c|", "\\nolinkurl{d%e}", "\\url {f{g}%h}"]
    # \href's URL is no comment either, but not verbatim (hyperref expands its macros); its text is TeX.
    assert comment_texts(text) == ["% note\n", "% cut\n "]


def test_a_url_closed_on_a_later_line_is_read_as_characters() -> None:
    # url.sty reads the braced argument whole, line breaks included: the `%` before a break is a
    # character of the URL (`%20`), not a comment that would cut the URL's end away.
    text = ("see \\url{https://a.org/x%20y\n  /z} and \\url{b%\nc}. % note\n"
            "then \\href{https://i.org/%7Ej\n}{home % cut\n page} d")
    assert verbatim_texts(text) == ["\\url{https://a.org/x%20y\n  /z}", "\\url{b%\nc}"]
    assert comment_texts(text) == ["% note\n", "% cut\n "]
    assert regions(text).without_comments(text) == (
        "see \\url{https://a.org/x%20y\n  /z} and \\url{b%\nc}. then \\href{https://i.org/%7Ej\n}{home page} d")


def test_a_url_left_open_is_no_verbatim() -> None:
    # A brace closed only after a blank line, or more than 500 characters on: no URL (LaTeX
    # stops there); the `%` is a comment and the scan goes on, so an unclosed brace cannot
    # make the rest of the paper verbatim.
    text = "\\url{a%b\n\n}c \\href{d%e\n\n}{f} \\url"
    assert verbatim_texts(text) == []
    assert comment_texts(text) == ["%b", "%e"]
    long = "\\url{" + "a" * 600 + "%b\n}c \\url{" + "a" * 400 + "%b\n}d"
    assert verbatim_texts(long) == ["\\url{" + "a" * 400 + "%b\n}"]
    assert comment_texts(long) == ["%b\n"]


def test_url_sty_path_is_read_as_characters_and_tikz_path_is_tex() -> None:
    # url.sty's \path (file names) reads its argument as \url does: `%` and `_` are characters.
    # In a tikzpicture \path is TikZ's, whatever follows it; outside one, a \path that starts as a
    # TikZ path (options, a coordinate, `;`, a `{[options] ...}` scope, a comment) is TikZ's too.
    text = ("in \\path{code/a_b%c.py} and \\path|d%e| and \\path {f%g} % note\n"
            "\\begin{tikzpicture}\\path{x} \\path[draw] (0,0) -- (1,1); % c1\n"
            "\\path (a) edge (b); \\path|y| % c2\n\\end{tikzpicture}\n"
            "\\tikz \\path[fill] (0,0) circle (1pt); \\path +(1,0) -- +(2,0)+; % c3\n"
            "\\path {[red] (0,0) -- (1,0)}; \\path% c4\n(0,0); \\path; \\pathname{h} % c5\n")
    assert verbatim_texts(text) == ["\\path{code/a_b%c.py}", "\\path|d%e|", "\\path {f%g}"]
    # The last comment eats no line break: no line with text follows it.
    assert comment_texts(text) == ["% note\n", "% c1\n", "% c2\n", "% c3\n", "% c4\n", "% c5"]
