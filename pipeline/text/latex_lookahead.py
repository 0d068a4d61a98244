"""Look-ahead macros: the `\\onedot` of the CVPR/ICCV/ECCV templates, whose text depends on the
character that follows it in the paper. The templates write

    \\DeclareRobustCommand\\onedot{\\futurelet\\@let@token\\@onedot}
    \\def\\@onedot{\\ifx\\@let@token.\\else.\\null\\fi\\xspace}
    \\def\\eg{\\emph{e.g}\\onedot}

or `\\def\\onedot{\\@ifnextchar.{}{.\\@\\xspace}}`, and LaTeX prints "e.g." then a space before a
word, "e.g." before "." (no double dot) and "e.g.," before ",". Expanded as text, the look-ahead
would leak TeX internals, and dropped it loses the final dot ("e.g"): `look_ahead` reads these
two forms when every branch is plain text (anything else stays TeX programming, opaque to
`latex_macros`), and `choose` picks the branch from the characters after a use.

No general TeX: one test of one character, two plain-text branches, xspace's rule for the space.
`choose` reads at most REACH characters past a use and a helper is read only when short
(MAX_HELPER), so each use and each definition costs bounded time whatever the input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.text.latex import LatexError, read_argument, skip_spaces

REACH = 64  # characters (and frames) `choose` may see past a use
MAX_HELPER = 256  # characters of a \futurelet helper's body: the idiom is one short line
XSPACE = "\\xspace"


@dataclass(frozen=True, slots=True)
class LookAhead:
    """`\\@ifnextchar<char>{<if_next>}{<otherwise>}`: branches are plain text, either may end in
    `\\xspace` (a space then goes in before a word that follows with none between)."""

    char: str
    if_next: str
    otherwise: str

    def definition(self) -> str:
        """The test as LaTeX that `look_ahead` reads back."""
        return f"\\@ifnextchar{{{self.char}}}{{{self.if_next}}}{{{self.otherwise}}}"


# Control words that print nothing: the empty box, the space factor (`\@` alone), \relax, the
# italic correction. They go from a branch with the spaces TeX skips after them.
SILENT = re.compile(r"\\(?:(?:null|relax)(?![A-Za-z@])|@(?![A-Za-z@])|/)[ \t\n]*")
TESTED_CHAR = re.compile(r"[^\\{}%#\s]")
IFNEXTCHAR = re.compile(r"\\@ifnextchar(?![A-Za-z@])")
FUTURELET = re.compile(r"\\futurelet\s*\\([A-Za-z@]+)\s*\\([A-Za-z@]+)\s*\Z")
CONDITIONAL_WORD = re.compile(r"\\(if[a-z]*|else|fi)(?![A-Za-z@])")
# `\ifx\@let@token.` or `\ifx.\@let@token`: the token \futurelet set against one character.
IFX_TEST = re.compile(r"\\ifx\s*(?:\\([A-Za-z@]+)\s*([^\\{}%#\s])|([^\\{}%#\s])\s*\\([A-Za-z@]+))")


def plain_branch(text: str) -> str | None:
    """`text` as a plain-text branch (silent control words gone, a final \\xspace kept), or None
    when it holds anything else: a control word, a group, a parameter."""
    text = SILENT.sub("", text).strip()
    xspace = text.endswith(XSPACE)
    if xspace:
        text = text[: -len(XSPACE)].rstrip()
    if re.search(r"[\\{}#%]", text):
        return None
    return text + (XSPACE if xspace else "")


def look_ahead(body: str, definitions: dict[str, str]) -> tuple[str, LookAhead] | None:
    """The text before the test and the test, when `body` ends in a look-ahead of the two
    template forms; None otherwise. `definitions` maps names to bodies (LaTeX internals
    included): a \\futurelet's helper is read from it, as TeX reads it at the use."""
    found = IFNEXTCHAR.search(body)
    if found is not None:
        test = _ifnextchar(body, found.end())
        return None if test is None else (body[: found.start()], test)
    found = FUTURELET.search(body)
    if found is not None:
        helper = definitions.get(found.group(2))
        test = None if helper is None or len(helper) > MAX_HELPER else _ifx(helper, found.group(1))
        return None if test is None else (body[: found.start()], test)
    return None


def _ifnextchar(body: str, i: int) -> LookAhead | None:
    """`\\@ifnextchar` read from `body[i]` on: a character, two branches, then nothing."""
    args = []
    try:
        for _ in range(3):
            value, i = read_argument(body, skip_spaces(body, i))
            args.append(value)
    except LatexError:
        return None
    char, if_next, otherwise = args[0], plain_branch(args[1]), plain_branch(args[2])
    if not TESTED_CHAR.fullmatch(char) or if_next is None or otherwise is None or body[i:].strip():
        return None
    return LookAhead(char, if_next, otherwise)


def _ifx(helper: str, token: str) -> LookAhead | None:
    """A helper body `\\ifx<token><c> yes \\else no \\fi tail` (the \\else part optional): one
    conditional, no nesting; what follows \\fi goes after either branch."""
    words = list(CONDITIONAL_WORD.finditer(helper))
    if [w.group(1) for w in words] not in (["ifx", "else", "fi"], ["ifx", "fi"]) or helper[: words[0].start()].strip():
        return None
    test = IFX_TEST.match(helper, words[0].start())
    if test is None or (test.group(1) or test.group(4)) != token:
        return None
    char = test.group(2) or test.group(3)
    fi = words[-1]
    tail = helper[fi.end() :]
    if len(words) == 3:
        yes, no = helper[test.end() : words[1].start()], helper[words[1].end() : fi.start()]
    else:
        yes, no = helper[test.end() : fi.start()], ""
    if_next, otherwise = plain_branch(yes + tail), plain_branch(no + tail)
    if if_next is None or otherwise is None:
        return None
    return LookAhead(char, if_next, otherwise)


# The spaces TeX skips after a control word: to the end of the line and the next line's
# indentation. A blank line after them is a paragraph end (\par), not a character.
SKIPPED_SPACES = re.compile(r"[ \t]*(?:\n[ \t]*)?")
# What xspace puts no space before (xspace.sty's exceptions, a group, a line break). Before these
# the spaces TeX skipped stay out too: "e.g.," for `\eg ,`.
NO_SPACE_BEFORE = re.compile(r"[,.'/?;:!~)\-{}]|\\(?:[ /\\]|(?:footnote|footnotemark|space)(?![A-Za-z@]))")


def choose(test: LookAhead, upcoming: str) -> tuple[str, int]:
    """The text a use of `test` prints before `upcoming` (what follows it, REACH characters at
    most), and how many leading characters of `upcoming` TeX skipped.

    TeX skips the spaces after a control word (and `\\@ifnextchar` skips them): before the tested
    character or a punctuation mark they stay skipped. Before a word the paper's own space
    stays, as it does after every expanded macro; with none, xspace's space goes in."""
    skipped = SKIPPED_SPACES.match(upcoming)
    assert skipped is not None
    spaces = skipped.end()
    following = upcoming[spaces:]
    paragraph_end = following == "" or following[0].isspace()
    matched = not paragraph_end and following.startswith(test.char)
    text = test.if_next if matched else test.otherwise
    xspace = text.endswith(XSPACE)
    if xspace:
        text = text[: -len(XSPACE)]
    if paragraph_end:
        return text, 0
    if matched or NO_SPACE_BEFORE.match(following):
        return text, spaces
    return (text + " " if xspace and spaces == 0 else text), 0
