"""The argument specifications of xparse / LaTeX3 document commands (`\\NewDocumentCommand`,
`\\RenewDocumentCommand`, `\\ProvideDocumentCommand`, `\\DeclareDocumentCommand`, and their
`Expandable` forms), for `latex_macros` to expand their uses as it expands `\\newcommand`'s.

    \\NewDocumentCommand{\\norm}{s O{2} m}{\\IfBooleanTF{#1}{\\left\\|#3\\right\\|_{#2}}{\\|#3\\|_{#2}}}

Read: `m` (mandatory), `o` (optional, no default), `O{default}`, `s` (an optional star), each
with an optional `+` (long: paragraphs allowed, nothing to do as text) and spaces between
them. Any other type (`r()`, `d()`, `v`, `e{}`, `g`, `t`, processors `>{}`, `!`) returns None:
the macro is left unexpanded, and the caller counts it.

A star or an optional argument is a test, not text: its `#n` stands for nothing, and
`\\IfBooleanTF{#n}{yes}{no}` (`T`, `F` forms too) or `\\IfNoValueTF{#n}` / `\\IfValueTF{#n}` in the
body are replaced by the branch the use chooses (`choose_branches`). A body that tests
otherwise (`\\IfBooleanTF` on a value it computes) keeps the test as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from collections.abc import Callable

from pipeline.text.latex import LatexError, read_argument, read_group, read_optional, skip_spaces

MANDATORY, OPTIONAL, OPTIONAL_DEFAULT, STAR = "m", "o", "O", "s"


@dataclass(frozen=True, slots=True)
class Argument:
    kind: str  # MANDATORY, OPTIONAL, OPTIONAL_DEFAULT or STAR
    default: str = ""  # OPTIONAL_DEFAULT's value when the use gives none

    def spec(self) -> str:
        return f"O{{{self.default}}}" if self.kind == OPTIONAL_DEFAULT else self.kind


def parse_spec(spec: str) -> tuple[Argument, ...] | None:
    """The arguments of an argument specification; None when it holds a type not read here."""
    arguments: list[Argument] = []
    i = skip_spaces(spec, 0)
    while i < len(spec):
        if spec[i] == "+":
            i = skip_spaces(spec, i + 1)
            if i >= len(spec):
                return None
        kind = spec[i]
        if kind in (MANDATORY, OPTIONAL, STAR):
            arguments.append(Argument(kind))
            i += 1
        elif kind == OPTIONAL_DEFAULT:
            i = skip_spaces(spec, i + 1)
            if i >= len(spec) or spec[i] != "{":
                return None
            try:
                default, i = read_group(spec, i)
            except LatexError:
                return None
            arguments.append(Argument(kind, default))
        else:
            return None
        i = skip_spaces(spec, i)
    return tuple(arguments) if len(arguments) <= 9 else None


Reader = Callable[[str, int], tuple[str, int]]


def read_arguments(arguments: tuple[Argument, ...], next_is: Callable[[str], bool],
                   read: Callable[[Reader], str]) -> tuple[list[str], tuple[bool, ...]]:
    """The values of one use's arguments in the spec's order, and whether the use gave each.
    `next_is(c)` says whether `c` comes next (spaces skipped) without reading it; `read(reader)`
    reads with a reader of `latex` (`read_argument`, `read_optional`). A star or an absent
    optional argument without default has the value "" (it is a test, see `choose_branches`)."""
    values: list[str] = []
    given: list[bool] = []
    for argument in arguments:
        if argument.kind == STAR:
            present = next_is("*")
            if present:
                read(lambda text, i: ("*", i + 1))
            values.append("")
        elif argument.kind in (OPTIONAL, OPTIONAL_DEFAULT):
            present = next_is("[")
            values.append(read(read_optional) if present else argument.default)
        else:
            present = True
            values.append(read(read_argument))
        given.append(present)
    return values, tuple(given)


# `\IfBooleanTF{#1}`, `\IfNoValueF {#2}`, ...: a test of one argument, then its branches.
CONDITIONAL = re.compile(r"\\If(Boolean|NoValue|Value)(TF|T|F)(?![A-Za-z@])\s*\{\s*#([1-9])\s*\}")


@lru_cache(maxsize=1024)
def choose_branches(body: str, given: tuple[bool, ...]) -> str:
    """`body` with each test of a star or optional argument replaced by the branch it takes;
    `given[n - 1]` is whether the use gave argument n (the star, the optional value). Cached:
    a body has few distinct outcomes, and a use costs a lookup. Tests nested in a taken branch
    are read in turn, from a stack of spans of `body` (never copied, never recursive)."""
    pieces: list[str] = []
    spans = [(0, len(body))]
    while spans:
        pos, stop = spans.pop()
        test = CONDITIONAL.search(body, pos, stop)
        if test is None:
            pieces.append(body[pos:stop])
            continue
        n = int(test.group(3))
        branches, end = _branches(body, test.end(), len(test.group(2)), stop)
        if branches is None or n > len(given):
            pieces.append(body[pos : test.end()])
            spans.append((test.end(), stop))
            continue
        passed = given[n - 1] != (test.group(1) == "NoValue")  # IfNoValue is true when not given
        form = test.group(2)
        if form == "TF":
            taken: tuple[int, int] | None = branches[0] if passed else branches[1]
        else:  # `T` prints its branch when the test passes, `F` when it fails
            taken = branches[0] if passed == (form == "T") else None
        pieces.append(body[pos : test.start()])
        spans.append((end, stop))
        if taken is not None:
            spans.append(taken)
    return "".join(pieces)


def _branches(body: str, i: int, count: int, stop: int) -> tuple[list[tuple[int, int]] | None, int]:
    """The spans of the contents of `count` brace groups from `body[i]` (before `stop`), and the
    index after them; None when they are not there."""
    branches: list[tuple[int, int]] = []
    for _ in range(count):
        i = skip_spaces(body, i)
        if i >= stop or body[i] != "{":
            return None, i
        try:
            _, end = read_group(body, i)
        except LatexError:
            return None, i
        if end > stop:
            return None, i
        branches.append((i + 1, end - 1))
        i = end
    return branches, i
