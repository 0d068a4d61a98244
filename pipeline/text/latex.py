"""LaTeX source cleaning for the arXiv source (Lewkowycz et al. 2022, as the LLaMA paper does).

Pure functions on strings, each one concern:
- `strip_comments`: `%` to end of line (and the line break it eats, as TeX does), never `\\%`;
  `comment` environments too.
- `inline_inputs`: `\\input`/`\\include`/`\\subfile` replaced by the file's (comment-free) text,
  bounded in depth, cycles cut.
- `collect_macros` + `expand_macros`: user macros from `\\newcommand`, `\\renewcommand`,
  `\\providecommand` (starred too), `\\def`/`\\gdef`/`\\edef`/`\\xdef` with undelimited
  parameters, and `\\DeclareMathOperator`, expanded inline with arguments #1..#9 and an optional
  first argument with a default. Expansion is bounded: a recursive macro raises instead of
  looping. A name is matched whole (`\\R` never matches inside `\\Real`).
- `cut_before_first_section`, `remove_bibliography`: the paper's structural cuts; appendices stay.

Problems raise `LatexError(reason)` with a short reason the stages count.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Callable

MAX_EXPANSIONS = 20_000  # macro uses expanded per document
MAX_GROWTH = 8  # expanded text may be at most this many times the input (plus 1 MB)
MAX_INPUT_DEPTH = 8


class LatexError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- comments -----------------------------------------------------------------------------

# An unescaped % (preceded by an even number of backslashes) to the end of the line, with the
# line break and the next line's indentation when that line has text (TeX joins them).
COMMENT = re.compile(r"(?<!\\)((?:\\\\)*)%[^\n]*(?:\n[ \t]*(?=\S))?")
COMMENT_ENV = re.compile(r"\\begin\{comment\}.*?\\end\{comment\}", re.DOTALL)


def strip_comments(text: str) -> str:
    text = COMMENT.sub(r"\1", text)
    return COMMENT_ENV.sub("", text)


# --- \input and \include --------------------------------------------------------------------

INPUT = re.compile(r"\\(?:input|include|subfile)\s*\{([^{}]*)\}|\\input\s+([^\s{}\\%]+)")


def inline_inputs(text: str, base: str, load: Callable[[str], str | None], depth: int = 0,
                  stack: tuple[str, ...] = ()) -> str:
    """Replace input commands in `text` (a file in folder `base`) with the files `load` returns.

    `load(path)` gets a normalised path relative to the paper's root and returns the file's
    text or None. Only .tex files are inlined (a \\input of a .bbl or .pgf is dropped), a file
    already being inlined is not inlined again, and nesting stops at MAX_INPUT_DEPTH.
    """

    def replace(match: re.Match[str]) -> str:
        name = (match.group(1) or match.group(2) or "").strip()
        if not name or depth >= MAX_INPUT_DEPTH:
            return ""
        path = resolve_input(base, name)
        if path is None or path in stack:
            return ""
        content = load(path)
        if content is None:
            return ""
        content = strip_comments(content)
        return inline_inputs(content, base, load, depth + 1, stack + (path,))

    return INPUT.sub(replace, text)


def resolve_input(base: str, name: str) -> str | None:
    """`name` as TeX finds it (relative to the main file's folder), .tex added; None if it is not
    a .tex file or it points outside the paper."""
    if not name.endswith(".tex"):
        if "." in posixpath.basename(name) and not name.endswith(".tex"):
            return None
        name += ".tex"
    path = posixpath.normpath(posixpath.join(base, name))
    if path.startswith("../") or path == ".." or path.startswith("/"):
        return None
    return path


# --- braces and arguments -------------------------------------------------------------------

VERBATIM = re.compile(
    r"\\begin\{(verbatim|lstlisting|minted|Verbatim)\*?\}.*?\\end\{\1\*?\}|\\verb\*?([^a-zA-Z\s]).*?\2",
    re.DOTALL,
)
BRACE_TOKEN = re.compile(r"\\.|[{}]", re.DOTALL)


def check_braces(text: str) -> None:
    """Raise `LatexError("unbalanced_braces")` unless every unescaped { has its }."""
    depth = 0
    for token in BRACE_TOKEN.finditer(VERBATIM.sub("", text)):
        t = token.group()
        if t == "{":
            depth += 1
        elif t == "}":
            depth -= 1
            if depth < 0:
                raise LatexError("unbalanced_braces")
    if depth:
        raise LatexError("unbalanced_braces")


def skip_spaces(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n":
        i += 1
    return i


def read_group(text: str, i: int) -> tuple[str, int]:
    """The content of the brace group opening at `text[i]`, and the index after it."""
    assert text[i] == "{"
    depth, j = 0, i
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j], j + 1
        j += 1
    raise LatexError("unbalanced_braces")


def read_optional(text: str, i: int) -> tuple[str, int]:
    """The content of `[...]` opening at `text[i]` (brackets inside braces do not close it)."""
    assert text[i] == "["
    depth, j = 0, i + 1
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "]" and depth == 0:
            return text[i + 1 : j], j + 1
        j += 1
    raise LatexError("unbalanced_brackets")


CONTROL_WORD = re.compile(r"\\(?:[A-Za-z]+|.)", re.DOTALL)


def read_argument(text: str, i: int) -> tuple[str, int]:
    """One undelimited TeX argument at `text[i]`: a brace group's content or a single token."""
    if i >= len(text) or text[i] == "}":
        raise LatexError("missing_macro_argument")
    if text[i] == "{":
        return read_group(text, i)
    if text[i] == "\\":
        token = CONTROL_WORD.match(text, i)
        assert token is not None
        return token.group(), token.end()
    return text[i], i + 1


# --- macro definitions ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Macro:
    name: str  # without the backslash
    body: str
    nargs: int = 0
    default: str | None = None  # the optional first argument's default, when it has one


NEWCOMMAND = re.compile(r"\\(newcommand|renewcommand|providecommand)\*?\s*")
DEF = re.compile(r"\\(?:def|gdef|edef|xdef)\s*\\([A-Za-z]+|[^A-Za-z\s])")
MATHOP = re.compile(r"\\DeclareMathOperator(\*?)\s*")
DEFINITION_START = re.compile(r"\\(?:newcommand|renewcommand|providecommand|def|gdef|edef|xdef|DeclareMathOperator)(?![A-Za-z])")


def collect_macros(text: str) -> tuple[dict[str, Macro], str]:
    """User macros defined anywhere in `text`, and `text` with the definitions removed.

    Definitions take effect in document order: \\newcommand and \\renewcommand (re)define,
    \\providecommand only defines a name not yet defined. A \\def with delimited parameters
    (`\\def\\x#1.{...}`) is removed and not expanded: its uses stay as they are.
    """
    macros: dict[str, Macro] = {}
    pieces: list[str] = []
    pos = 0
    for start in [m.start() for m in DEFINITION_START.finditer(text)]:
        if start < pos or _escaped(text, start):
            continue
        parsed = _parse_definition(text, start)
        if parsed is None:
            continue
        macro, end, kind = parsed
        pieces.append(text[pos:start])
        pos = end
        if macro is None:
            continue
        if kind == "providecommand" and macro.name in macros:
            continue
        macros[macro.name] = macro
    pieces.append(text[pos:])
    return macros, "".join(pieces)


def _escaped(text: str, i: int) -> bool:
    """True when the backslash at `i` is itself escaped (preceded by an odd run of backslashes)."""
    n = 0
    while i - n - 1 >= 0 and text[i - n - 1] == "\\":
        n += 1
    return n % 2 == 1


def _defined_name(text: str, i: int) -> tuple[str, int] | None:
    """The macro name a definition gives at `i`, braced (`{\\R}`) or bare (`\\R`), and where it ends."""
    if i < len(text) and text[i] == "{":
        name_group, i = read_group(text, i)
        return name_group.strip(), i
    token = CONTROL_WORD.match(text, i)
    return None if token is None else (token.group(), token.end())


def _parse_definition(text: str, start: int) -> tuple[Macro | None, int, str] | None:
    m = NEWCOMMAND.match(text, start)
    if m:
        named = _defined_name(text, m.end())
        if named is None:
            return None
        name, i = named
        if not name.startswith("\\") or not CONTROL_WORD.fullmatch(name):
            return None
        nargs, default = 0, None
        i = skip_spaces(text, i)
        if i < len(text) and text[i] == "[":
            count, i = read_optional(text, i)
            if not count.strip().isdigit() or not 0 <= int(count) <= 9:
                return None
            nargs = int(count)
            i = skip_spaces(text, i)
            if i < len(text) and text[i] == "[":
                default, i = read_optional(text, i)
        i = skip_spaces(text, i)
        if i >= len(text) or text[i] != "{":
            return None
        body, i = read_group(text, i)
        return Macro(name[1:], body, nargs, default), i, m.group(1)
    m = MATHOP.match(text, start)
    if m:
        named = _defined_name(text, m.end())
        if named is None:
            return None
        name, i = named
        i = skip_spaces(text, i)
        if not name.startswith("\\") or i >= len(text) or text[i] != "{":
            return None
        operator, i = read_group(text, i)
        return Macro(name[1:], f"\\operatorname{m.group(1)}{{{operator}}}"), i, "newcommand"
    m = DEF.match(text, start)
    if m:
        name, i = m.group(1), m.end()
        brace = text.find("{", i)
        if brace < 0:
            raise LatexError("unbalanced_braces")
        params = text[i:brace].replace(" ", "")
        body, end = read_group(text, brace)
        if not re.fullmatch(r"(?:#[1-9])*", params):
            return None, end, "def"  # delimited parameters: the definition goes, its uses stay
        return Macro(name, body, len(params) // 2), end, "def"
    return None


# --- expansion ------------------------------------------------------------------------------

PARAMETER = re.compile(r"#(#|[1-9])")


def macro_pattern(macros: dict[str, Macro]) -> re.Pattern[str] | None:
    """A regex finding uses of the macros; a letter name must not be followed by a letter."""
    if not macros:
        return None
    words = sorted((n for n in macros if n.isalpha()), key=len, reverse=True)
    symbols = [n for n in macros if not n.isalpha()]
    parts = []
    if words:
        parts.append("(?:" + "|".join(map(re.escape, words)) + ")(?![A-Za-z])")
    if symbols:
        parts.append("[" + "".join(map(re.escape, symbols)) + "]")
    return re.compile(r"\\(" + "|".join(parts) + ")")


def expand_macros(text: str, macros: dict[str, Macro], max_expansions: int = MAX_EXPANSIONS) -> str:
    """`text` with every use of `macros` replaced by its body, arguments substituted, until
    none is left. Raises LatexError("macro_expansion_limit") past `max_expansions` uses or
    when the text grows past MAX_GROWTH times its size (a macro that expands to itself)."""
    pattern = macro_pattern(macros)
    if pattern is None:
        return text
    limit = len(text) * MAX_GROWTH + (1 << 20)
    expansions = 0
    done: list[str] = []  # finished text before `text`; `text` is what is left to scan
    while True:
        match = pattern.search(text)
        if match is None:
            break
        start = match.start()
        if _escaped(text, start):
            done.append(text[: start + 1])
            text = text[start + 1 :]
            continue
        macro = macros[match.group(1)]
        i = match.end()
        args: list[str] = []
        if macro.default is not None:
            j = skip_spaces(text, i)
            if j < len(text) and text[j] == "[":
                optional, i = read_optional(text, j)
                args.append(optional)
            else:
                args.append(macro.default)
        while len(args) < macro.nargs:
            arg, i = read_argument(text, skip_spaces(text, i))
            args.append(arg)
        body = PARAMETER.sub(lambda p: "#" if p.group(1) == "#" else _arg(args, int(p.group(1))), macro.body)
        if macro.nargs == 0 and text.startswith("{}", i) and not re.search(r"\\[A-Za-z]+$", body):
            i += 2  # `\ours{}` is how authors write a space-safe use of an argument-free macro
        expansions += 1
        if expansions > max_expansions:
            raise LatexError("macro_expansion_limit")
        done.append(text[:start])
        text = body + text[i:]
        if len(text) > limit:
            raise LatexError("macro_expansion_limit")
    done.append(text)
    return "".join(done)


def _arg(args: list[str], n: int) -> str:
    return args[n - 1] if n <= len(args) else ""


# --- structure ------------------------------------------------------------------------------

SECTION = re.compile(r"\\(?:part|chapter|section|subsection|subsubsection|paragraph|subparagraph)(?![A-Za-z])\*?\s*[\[{]")
BIBLIOGRAPHY = re.compile(
    r"\\begin\{thebibliography\}.*?(?:\\end\{thebibliography\}|\Z)"
    r"|\\(?:bibliography|bibliographystyle|addbibresource)\s*\{[^{}]*\}"
    r"|\\printbibliography(?:\s*\[[^\]]*\])?",
    re.DOTALL,
)
END_DOCUMENT = re.compile(r"\\end\{document\}")
BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")


def cut_before_first_section(text: str) -> str | None:
    """Text from the first sectioning command on (\\part ... \\subparagraph); None if there is none."""
    for match in SECTION.finditer(text):
        if not _escaped(text, match.start()):
            return text[match.start() :]
    return None


def remove_bibliography(text: str) -> str:
    """Drop the bibliography and everything after \\end{document}; appendices stay."""
    end = END_DOCUMENT.search(text)
    if end:
        text = text[: end.start()]
    text = BIBLIOGRAPHY.sub("", text)
    return BLANK_LINES.sub("\n\n", text).strip()
