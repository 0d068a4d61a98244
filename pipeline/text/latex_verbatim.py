"""Where TeX reads characters instead of commands: the verbatim regions of LaTeX source, and
its comments, found by one left-to-right scan as TeX reads the file.

Verbatim: the environments `verbatim(*)`, fancyvrb's `Verbatim(*)`, `BVerbatim`, `LVerbatim`,
`lstlisting`, `minted`, tcolorbox's `tcblisting`, and any environment the text defines as
verbatim (`\\lstnewenvironment`, `\\newminted`, `\\DefineVerbatimEnvironment`,
`\\RecustomVerbatimEnvironment`, `\\newtcblisting`, `\\DeclareTCBListing`); the inline forms
`\\verb|...|` (`\\verb*`, fancyvrb's `\\Verb`), `\\lstinline|...|` / `\\lstinline{...}` and
`\\mintinline{lang}|...|`; url.sty's `\\url{...}` / `\\url|...|`, its `\\path{...}` / `\\path|...|`
(TikZ's `\\path[draw] (0,0) -- (1,1);` is TeX: see `_path_is_url`) and hyperref's `\\nolinkurl{...}`
(a URL is read as characters: its `%` is no comment). Hyperref's `\\href{URL}{text}` reads `%` in
the URL as a character too, but expands macros there (`\\href{\\repo}`): the URL is passed over by
the comment scan without being verbatim. A braced URL may run over line breaks (`\\url{a.org/x%20y`
then `/z}` on the next line: url.sty reads that `%` as a character too), within MAX_URL_CHARS and
no blank line. Comments: `%` to the end of the line (with the line break it eats), `comment`
environments and those `\\excludecomment` defines.

A listing of LaTeX code (class documentation, templates, tutorials) holds `\\documentclass`,
`\\end{document}`, `\\bibliography`, `%` and `\\newcommand` that TeX never acts on: every reader
of the paper's structure asks `Regions` whether a match lies in verbatim, so all of them agree
with TeX and with each other. Rules as TeX has them: an environment ends at the exact
`\\end{name}`, an unclosed one runs to the end of the file; an inline form cannot cross a line
(a braced URL can, within its bound), and one left unclosed is no verbatim (LaTeX stops with an
error there), so the scan goes on after it. A `%` comment hides a `\\begin{verbatim}` after it,
and a verbatim region hides a `%`. The scan is linear: each token is read once, and a delimiter
is looked for only to the end of its line (delimiters are printable ASCII, so a line is searched
at most once per kind), a braced URL's closing brace MAX_URL_CHARS ahead at most.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

VERBATIM_ENVIRONMENTS = frozenset({
    "verbatim", "verbatim*", "Verbatim", "Verbatim*", "BVerbatim", "BVerbatim*", "LVerbatim", "LVerbatim*",
    "lstlisting", "minted", "tcblisting",
})
COMMENT_ENVIRONMENTS = frozenset({"comment"})

# `\\` (a line break) and `\%` are read whole, so the `%` or command after them is read as TeX
# reads it: `\%` is no comment, `\\%` is one, `\\verb|x|` is a break then text. Every branch
# starts with `\` or `%`, so the regex engine skips the text between tokens in C.
TOKEN = re.compile(
    r"(?:\\\\)+|\\%"  # a run of line breaks is one token
    r"|(?P<comment>%[^\n]*(?:\n[ \t]*(?=\S))?)"  # TeX joins the next line when it holds text
    r"|\\begin\s*\{(?P<begin>[^{}\\\s]+)\}|\\end\s*\{(?P<end_picture>tikzpicture)\}"
    r"|\\(?:verb|Verb)\*?(?P<delimiter>[!-)+-?\[\]^_`{-~])"  # printable ASCII; not a letter, `*`, `@` or `\`
    r"|\\(?P<inline>lstinline|mintinline)(?![A-Za-z@])"
    r"|\\(?P<url>url|nolinkurl|href|path)(?![A-Za-z@])"
    r"|\\(?P<define>lstnewenvironment|newminted|DefineVerbatimEnvironment|RecustomVerbatimEnvironment"
    r"|newtcblisting|DeclareTCBListing|excludecomment)(?![A-Za-z@])\s*(?:\[(?P<option>[^\]\n]*)\])?"
    r"\s*\{(?P<name>[^{}\\\s]+)\}"
)
OPTION = re.compile(r"\s*\[[^\]\n]*\]")
LANGUAGE = re.compile(r"\s*\{[^{}\n]*\}")
DELIMITER = re.compile(r"[!-)+-?\[\]^_`{-~]")
# url.sty reads a braced URL as a TeX argument: braces in it nest (one level is what URLs use).
BRACED_URL = re.compile(r"[ \t]*\{(?:[^{}\n]|\{[^{}\n]*\})*\}")
# One closed on a later line. A brace that never closes must not turn the rest of the paper into
# a URL (its `%` into text): the argument is looked for in MAX_URL_CHARS characters (a URL is
# seldom past 200) and holds no blank line (a paragraph end is no URL).
MAX_URL_CHARS = 500
URL_CHAR = r"(?:[^{}\n]|\n(?![ \t]*\n))"
BRACED_URL_LINES = re.compile(rf"[ \t]*\{{(?:{URL_CHAR}|\{{{URL_CHAR}*\}})*\}}")
# What TikZ's \path can start with: options, a coordinate (`(a)`, `+(1,0)`), `;` (an empty path),
# `%` (a comment before the next line's path), and a scope `{[red] (0,0) ...}`. url.sty's \path
# takes any other delimiter or braced argument.
TIKZ_PATH_START = re.compile(r"[ \t]*(?:[\[(+;%]|\{[ \t\n]*[\[(])")


@lru_cache(maxsize=64)
def _rest_of_inline(closing: str) -> re.Pattern[str]:
    """The content of an inline form up to and with its `closing` character, on one line."""
    return re.compile(f"[^\n{re.escape(closing)}]*{re.escape(closing)}")


@dataclass(frozen=True, slots=True)
class Environments:
    """Environments beyond the standard ones that a paper defines: `verbatim` (read as characters)
    and `comment` (comment.sty's `\\excludecomment`: dropped). Both kinds travel together, as one
    value, from the file that defines them to the reading of every other file of the paper."""

    verbatim: frozenset[str] = frozenset()
    comment: frozenset[str] = frozenset()

    def __or__(self, other: Environments) -> Environments:
        return Environments(self.verbatim | other.verbatim, self.comment | other.comment)


@dataclass(frozen=True, slots=True)
class Regions:
    """Verbatim spans and comment spans of one text, each list sorted and disjoint
    (`[start, end)`), and the environments beyond the standard ones that the text defines or
    was given."""

    verbatim: list[tuple[int, int]]
    comments: list[tuple[int, int]]
    environments: Environments

    def verbatim_at(self, i: int) -> tuple[int, int] | None:
        """The verbatim span holding position `i`, if any."""
        k = bisect.bisect_right(self.verbatim, (i, float("inf"))) - 1
        if k >= 0 and self.verbatim[k][0] <= i < self.verbatim[k][1]:
            return self.verbatim[k]
        return None

    def search(self, pattern: re.Pattern[str], text: str, pos: int = 0) -> re.Match[str] | None:
        """The first match of `pattern` in `text` from `pos` that starts outside verbatim."""
        while (match := pattern.search(text, pos)) is not None:
            span = self.verbatim_at(match.start())
            if span is None:
                return match
            pos = span[1]
        return None

    def without_verbatim(self, text: str) -> str:
        return _without(text, self.verbatim)

    def without_comments(self, text: str) -> str:
        return _without(text, self.comments)


def _without(text: str, spans: list[tuple[int, int]]) -> str:
    pieces, pos = [], 0
    for start, end in spans:
        pieces.append(text[pos:start])
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def regions(text: str, environments: Environments = Environments()) -> Regions:
    """The verbatim and comment regions of `text`, read left to right as TeX reads it;
    `environments` are those defined elsewhere (another file of the paper)."""
    verbatim_names = set(VERBATIM_ENVIRONMENTS) | environments.verbatim
    comment_names = set(COMMENT_ENVIRONMENTS) | environments.comment
    verbatim: list[tuple[int, int]] = []
    comments: list[tuple[int, int]] = []
    pictures = 0  # tikzpicture environments open here: TikZ's \path is the one defined in them
    pos = 0
    while (token := TOKEN.search(text, pos)) is not None:
        start, pos = token.span()
        if token.lastgroup is None:
            continue  # `\\` (a run of them) or `\%`
        if token.group("comment") is not None:
            comments.append((start, pos))
        elif token.group("end_picture") is not None:
            pictures = max(0, pictures - 1)
        elif (name := token.group("begin")) is not None:
            if name == "tikzpicture":
                pictures += 1
            if name in verbatim_names or name in comment_names:
                closing = f"\\end{{{name}}}"
                end = text.find(closing, pos)
                pos = len(text) if end < 0 else end + len(closing)
                (comments if name in comment_names else verbatim).append((start, pos))
        elif token.group("delimiter") is not None:
            pos = _close_inline(text, start, pos, token.group("delimiter"), verbatim)
        elif token.group("inline") is not None:
            pos = _inline(text, start, pos, token.group("inline") == "mintinline", verbatim)
        elif token.group("url") is not None:
            if token.group("url") != "path" or (not pictures and _path_is_url(text, pos)):
                pos = _url(text, start, pos, token.group("url") == "href", verbatim)
        else:
            _define(token, verbatim_names, comment_names)
    defined = Environments(frozenset(verbatim_names - VERBATIM_ENVIRONMENTS),
                           frozenset(comment_names - COMMENT_ENVIRONMENTS))
    return Regions(verbatim, comments, defined)


def _close_inline(text: str, start: int, pos: int, closing: str, verbatim: list[tuple[int, int]]) -> int:
    """Record the inline form from `start` when `closing` ends it on its line; where scanning goes on."""
    rest = _rest_of_inline(closing).match(text, pos)
    if rest is None:
        return pos
    verbatim.append((start, rest.end()))
    return rest.end()


def _inline(text: str, start: int, pos: int, minted: bool, verbatim: list[tuple[int, int]]) -> int:
    """`\\lstinline[opts]<d>...<d>`, `\\lstinline{...}`, `\\mintinline[opts]{lang}<d>...<d>`."""
    option = OPTION.match(text, pos)
    pos = option.end() if option else pos
    if minted:
        language = LANGUAGE.match(text, pos)
        if language is None:
            return pos
        pos = language.end()
    delimiter = DELIMITER.match(text, pos)
    if delimiter is None:
        return pos
    # listings and minted read `{...}` as a group; `\verb{x{` closes at the second `{`.
    closing = "}" if delimiter.group() == "{" else delimiter.group()
    return _close_inline(text, start, delimiter.end(), closing, verbatim)


def _url(text: str, start: int, pos: int, href: bool, verbatim: list[tuple[int, int]]) -> int:
    """`\\url{...}`, `\\url<d>...<d>`, `\\nolinkurl{...}`: verbatim. `\\href[opts]{URL}`: the URL
    is passed over, not verbatim (its macros expand); the text argument after it is TeX."""
    if href:
        option = OPTION.match(text, pos)
        pos = option.end() if option else pos
    braced = BRACED_URL.match(text, pos) or BRACED_URL_LINES.match(text, pos, pos + MAX_URL_CHARS)
    if braced is not None:
        if not href:
            verbatim.append((start, braced.end()))
        return braced.end()
    delimiter = DELIMITER.match(text, pos)
    if href or delimiter is None or delimiter.group() == "{":
        return pos  # unclosed on its line: LaTeX stops with an error there, the scan goes on
    return _close_inline(text, start, delimiter.end(), delimiter.group(), verbatim)


def _path_is_url(text: str, pos: int) -> bool:
    """Whether the `\\path` before `pos` (outside a tikzpicture, where TikZ defines its own) is
    url.sty's: unless its argument starts as a TikZ path does (`TIKZ_PATH_START`: `\\tikz` and
    a macro's body draw outside a picture too). Read from the text alone, not from whether
    url.sty is loaded: hyperref and classes load it unseen, and a paper's files are cleaned one by
    one; outside a picture a \\path taking a URL is url.sty's or a LaTeX error either way."""
    return TIKZ_PATH_START.match(text, pos) is None


def _define(token: re.Match[str], verbatim_names: set[str], comment_names: set[str]) -> None:
    command, name, option = token.group("define"), token.group("name"), token.group("option")
    if command == "excludecomment":
        comment_names.add(name)
    elif command == "newminted":
        # `\newminted{python}{opts}` defines `pythoncode` (and `pythoncode*`); `\newminted[env]{...}` `env`.
        base = option.strip() if option and option.strip() else f"{name}code"
        verbatim_names.update((base, base + "*"))
    else:
        verbatim_names.add(name)


def environment_definitions(names: Iterable[str]) -> str:
    """Definitions `regions` reads back as these verbatim environments: a package's listing
    environments written into the paper that loads it."""
    return "".join(f"\\DefineVerbatimEnvironment{{{name}}}{{Verbatim}}{{}}" for name in sorted(names))


def paper_environments(texts: Iterable[str]) -> Environments:
    """The verbatim and comment environments any file of a paper defines: the preamble that
    defines them is often in another file than the sections that use them."""
    found = Environments()
    for text in texts:
        found |= regions(text).environments
    return found
