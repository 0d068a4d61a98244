"""Removes a leading licence or copyright header written in a file's own comment syntax.

A header is the run of comments at the top of a file (after a shebang, an encoding line, an
XML declaration or a `<?php` tag, which are kept), one comment group at a time: a block
comment (`/* */`, `<!-- -->`, `{- -}`, `--[[ ]]`, `(* *)`) or consecutive line comments
(`//`, `#`, `--`, `;`, `%`). A group is removed only when it mentions a licence or copyright;
the first group that does not ends the header. Everything else (`#include`, imports, code,
documentation comments) is kept: RedPajama's fallback also deleted leading `#include` and
`#!` lines, a bug this avoids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LICENSE_WORDS = re.compile(
    r"copyright|\blicen[cs]e|\(c\)|©|spdx-license-identifier|all rights reserved|"
    r"permission is hereby granted|redistribution and use|without warranty|warranties",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class CommentSyntax:
    line: tuple[str, ...] = ()
    block: tuple[tuple[str, str], ...] = ()


C_LIKE = CommentSyntax(("//",), (("/*", "*/"),))
HASH = CommentSyntax(("#",))
MARKUP = CommentSyntax((), (("<!--", "-->"),))
SYNTAX_BY_EXTENSION: dict[str, CommentSyntax] = {}
for _exts, _syntax in [
    ("c h cpp cc cxx c++ hpp hh hxx h++ cs java js jsx mjs ts tsx go rs swift kt kts scala dart groovy gradle "
     "m mm php", C_LIKE),
    ("css scss less", CommentSyntax(("//",), (("/*", "*/"),))),
    ("py pyi sh bash zsh rb pl pm r yaml yml toml cmake makefile mk dockerfile ex exs jl ps1 psm1", HASH),
    ("sql", CommentSyntax(("--",), (("/*", "*/"),))),
    ("lua", CommentSyntax(("--",), (("--[[", "]]"),))),
    ("hs", CommentSyntax(("--",), (("{-", "-}"),))),
    ("ml mli", CommentSyntax((), (("(*", "*)"),))),
    ("lisp el clj scm asm s", CommentSyntax((";",))),
    ("tex erl", CommentSyntax(("%",))),
    ("html htm xml vue md markdown", MARKUP),
    ("f f77 f90 f95 f03 f08 for", CommentSyntax(("!",))),
    ("bat cmd", CommentSyntax(("rem ", "REM ", "::"))),
    ("vb", CommentSyntax(("'",))),
]:
    for _ext in _exts.split():
        SYNTAX_BY_EXTENSION[_ext] = _syntax

# Lines before the header that belong to the file's machinery and always stay.
PROLOGUE = re.compile(
    r"(?:#![^\n]*\n)?"  # shebang
    r"(?:[ \t]*#[^\n]*coding[:=][^\n]*\n)?"  # Python encoding declaration
    r"(?:<\?xml[^\n]*\?>[ \t]*\n)?"  # XML declaration
    r"(?:<\?php[ \t]*\n)?"
)


def _comment_group_end(text: str, start: int, syntax: CommentSyntax) -> int | None:
    """End offset of the comment group beginning at `start` (after its line break), or None."""
    body = text[start:].lstrip(" \t")
    indent = len(text) - start - len(body)
    # Longer openers first, so Lua's `--[[` is a block and not a `--` line.
    for opener, closer in sorted(syntax.block, key=lambda b: -len(b[0])):
        if body.startswith(opener):
            close = text.find(closer, start + indent + len(opener))
            if close < 0:
                return None  # unterminated: not a header we understand
            end = close + len(closer)
            line_end = text.find("\n", end)
            line_end = len(text) if line_end < 0 else line_end + 1
            # Code after the closer on the same line stays (without the spaces before it).
            rest = text[end:line_end]
            return line_end if not rest.strip() else end + len(rest) - len(rest.lstrip(" \t"))
    if syntax.line and body.startswith(syntax.line):
        pos = start
        while pos < len(text):
            line_end = text.find("\n", pos)
            line_end = len(text) if line_end < 0 else line_end + 1
            if not text[pos:line_end].lstrip(" \t").startswith(syntax.line):
                break
            pos = line_end
        return pos
    return None


def _skip_blank_lines(text: str, pos: int) -> int:
    while pos < len(text):
        line_end = text.find("\n", pos)
        line_end = len(text) if line_end < 0 else line_end + 1
        if text[pos:line_end].strip():
            break
        pos = line_end
    return pos


def strip_license_header(text: str, syntax: CommentSyntax) -> str:
    """`text` without its leading licence/copyright comment groups (unchanged if none)."""
    prologue_end = PROLOGUE.match(text).end()  # type: ignore[union-attr]  # matches empty at worst
    pos = prologue_end
    removed = False
    while True:
        start = _skip_blank_lines(text, pos)
        end = _comment_group_end(text, start, syntax)
        if end is None or not LICENSE_WORDS.search(text, start, end):
            break
        pos, removed = end, True
    if not removed:
        return text
    return text[:prologue_end] + text[_skip_blank_lines(text, pos):]


