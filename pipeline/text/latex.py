"""LaTeX source cleaning for the arXiv source (Lewkowycz et al. 2022, as the LLaMA paper does).

Pure functions on strings, each one concern:
- `strip_comments`: `%` to end of line (and the line break it eats, as TeX does), never `\\%`;
  `comment` environments too (an unclosed one runs to the end of the file, as in LaTeX).
- `inline_inputs`: `\\input`/`\\include`/`\\include*`/`\\subfile` and the import package's
  `\\import{dir}{file}`/`\\subimport{dir}{file}` replaced by the file's (comment-free) text,
  bounded in depth and in total size, cycles cut.
- `inline_packages`: the notation macros of the paper's own `.sty` files loaded with
  `\\usepackage`, written into the preamble as plain definitions (see `package_definitions`).
- `collect_macros` + `expand_macros`: user macros from `\\newcommand`, `\\renewcommand`,
  `\\providecommand`, `\\DeclareRobustCommand` (starred too), `\\def`/`\\gdef`/`\\edef`/`\\xdef`
  with undelimited parameters, `\\let`, `\\DeclareMathOperator` and mathtools'
  `\\DeclarePairedDelimiter(X)`, expanded inline with arguments #1..#9 and an optional first
  argument with a default. A name is matched whole (`\\R` never matches inside `\\Real`).
- `cut_before_first_section`, `remove_bibliography`: the paper's structural cuts; appendices stay.

Everything is linear in its input: no regex here can restart over a run it already read, and
expansion is bounded in output (MAX_GROWTH times the input plus 1 MB) and in work (the text it
may push back for rescanning has the same bound), so a hostile paper is dropped with a reason
in bounded time. Problems raise `LatexError(reason)` with a short reason the stages count.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MAX_EXPANSIONS = 20_000  # macro uses expanded per document
MAX_GROWTH = 8  # expanded text may be at most this many times the input (plus 1 MB)
MAX_INPUT_DEPTH = 8
MiB = 1 << 20


class LatexError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def output_limit(input_chars: int) -> int:
    """The most characters cleaning may make of `input_chars`: 8x plus 1 MB."""
    return MAX_GROWTH * input_chars + MiB


# --- comments -----------------------------------------------------------------------------

# A control symbol (`\%`, `\\`) is consumed whole, so a `%` after an even run of backslashes
# starts a comment and one after an odd run does not, without any look-behind. A comment runs
# to the end of the line and eats the line break and the next line's indentation when that
# line has text (TeX joins them).
COMMENT = re.compile(r"(\\.)|%[^\n]*(?:\n[ \t]*(?=\S))?", re.DOTALL)
BEGIN_COMMENT = "\\begin{comment}"
END_COMMENT = "\\end{comment}"


def strip_comments(text: str) -> str:
    text = COMMENT.sub(r"\1", text)
    if BEGIN_COMMENT not in text:
        return text
    pieces, pos = [], 0
    while (start := text.find(BEGIN_COMMENT, pos)) >= 0:
        pieces.append(text[pos:start])
        end = text.find(END_COMMENT, start + len(BEGIN_COMMENT))
        pos = len(text) if end < 0 else end + len(END_COMMENT)
    pieces.append(text[pos:])
    return "".join(pieces)


# --- \input, \include, \import ------------------------------------------------------------

INPUT = re.compile(
    r"\\(?:input|include|subfile)\*?\s*\{(?P<name>[^{}]*)\}"
    r"|\\input\s+(?P<bare>[^\s{}\\%]+)"
    r"|\\(?P<sub>sub)?(?:import|inputfrom|includefrom)\*?\s*\{(?P<dir>[^{}]*)\}\s*\{(?P<file>[^{}]*)\}"
)


class InputBudget:
    """Characters inlining may still add: nested inputs of a large file must not multiply it."""

    def __init__(self, chars: int) -> None:
        self.left = chars

    def spend(self, chars: int) -> None:
        self.left -= chars
        if self.left < 0:
            raise LatexError("input_expansion_limit")


def inline_inputs(text: str, base: str, load: Callable[[str], str | None], depth: int = 0,
                  stack: tuple[str, ...] = (), budget: InputBudget | None = None) -> str:
    """Replace input commands in `text` (a file in folder `base`) with the files `load` returns.

    `load(path)` gets a normalised path relative to the paper's root and returns the file's
    text or None. Only .tex files are inlined (a \\input of a .bbl or .pgf is dropped), a file
    already being inlined is not inlined again, and nesting stops at MAX_INPUT_DEPTH. `\\input`
    names resolve against `base` (TeX resolves them against the main file's folder, whichever
    file holds them); `\\import{dir}{file}` reads dir/file and resolves the inputs inside it
    against dir, `\\subimport` the same with dir relative to the current `base`. Raises
    LatexError("input_expansion_limit") past `budget` (default: 8x the text plus 1 MB).
    """
    budget = budget or InputBudget(output_limit(len(text)))

    def replace(match: re.Match[str]) -> str:
        if depth >= MAX_INPUT_DEPTH:
            return ""
        if match.group("file") is not None:
            folder = posixpath.join(base, match.group("dir").strip()) if match.group("sub") else match.group("dir").strip()
            folder = posixpath.normpath(folder) if folder else ""
            name, inner_base = match.group("file").strip(), "" if folder == "." else folder
            path = resolve_input(inner_base, name) if name else None
        else:
            name = (match.group("name") or match.group("bare") or "").strip()
            inner_base = base
            path = resolve_input(base, name) if name else None
        if path is None or path in stack:
            return ""
        content = load(path)
        if content is None:
            return ""
        content = strip_comments(content)
        budget.spend(len(content))
        return inline_inputs(content, inner_base, load, depth + 1, stack + (path,), budget)

    return INPUT.sub(replace, text)


def resolve_input(base: str, name: str, extension: str = ".tex") -> str | None:
    """`name` as TeX finds it (relative to `base`), `extension` added; None if it names another
    kind of file or points outside the paper."""
    if not name.endswith(extension):
        if "." in posixpath.basename(name):
            return None
        name += extension
    path = posixpath.normpath(posixpath.join(base, name))
    if path.startswith(("../", "/")) or path == "..":
        return None
    return path


# --- braces and arguments -------------------------------------------------------------------

VERBATIM_BEGIN = re.compile(r"\\begin\{(verbatim|lstlisting|minted|Verbatim)(\*?)\}|\\verb\*?([^a-zA-Z\s*])")
GROUP_TOKEN = re.compile(r"[\\{}]")


def without_verbatim(text: str) -> str:
    """`text` without verbatim environments and `\\verb` spans, in one pass: an unclosed
    environment runs to the end, an unclosed `\\verb` (which cannot cross a line) is left."""
    pieces, pos, search_from = [], 0, 0
    while (match := VERBATIM_BEGIN.search(text, search_from)) is not None:
        if match.group(1):
            closing = f"\\end{{{match.group(1)}{match.group(2)}}}"
            end = text.find(closing, match.end())
            end = len(text) if end < 0 else end + len(closing)
        else:
            line_end = text.find("\n", match.end())
            line_end = len(text) if line_end < 0 else line_end
            end = text.find(match.group(3), match.end(), line_end)
            if end < 0:
                search_from = match.end()
                continue
            end += 1
        pieces.append(text[pos : match.start()])
        pos = search_from = end
    pieces.append(text[pos:])
    return "".join(pieces)


def check_braces(text: str) -> None:
    """Raise `LatexError("unbalanced_braces")` unless every unescaped { has its }."""
    depth = _brace_depths(without_verbatim(text))
    if len(depth) and (depth.min() < 0 or depth[-1] != 0):
        raise LatexError("unbalanced_braces")


def _brace_depths(text: str) -> np.ndarray:
    """The brace depth after each character of `text` (escaped braces not counted), in C: a
    character is escaped when an odd run of backslashes comes right before it."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    index = np.arange(len(codes))
    backslash = codes == 92
    last_other = np.maximum.accumulate(np.where(backslash, -1, index))  # last non-backslash at or before i
    run_before = np.zeros(len(codes), dtype=np.int64)
    run_before[1:] = index[:-1] - last_other[:-1]  # backslashes right before i
    counted = run_before % 2 == 0
    return np.cumsum(((codes == 123) & counted).astype(np.int64) - ((codes == 125) & counted))


def skip_spaces(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n":
        i += 1
    return i


def read_group(text: str, i: int) -> tuple[str, int]:
    """The content of the brace group opening at `text[i]`, and the index after it.

    Short groups are read token by token; a long one (a section wrapped in a macro, or the
    19,500-deep nesting of a hostile paper) by brace depths computed in C over windows that
    grow fourfold, so reading a group costs time linear in its length either way."""
    assert text[i] == "{"
    depth, j = 0, i
    for _ in range(64):
        token = GROUP_TOKEN.search(text, j)
        if token is None:
            raise LatexError("unbalanced_braces")
        j = token.start()
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return text[i + 1 : j], j + 1
        j += 1
    size = 4096
    while True:
        end = min(len(text), i + size)
        closes = np.flatnonzero(_brace_depths(text[i:end]) == 0)
        if len(closes):
            j = i + int(closes[0])
            return text[i + 1 : j], j + 1
        if end == len(text):
            raise LatexError("unbalanced_braces")
        size *= 4


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


CONTROL_WORD = re.compile(r"\\(?:[A-Za-z@]+|.)", re.DOTALL)


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


# --- joining without creating control words --------------------------------------------------

TRAILING_CONTROL_WORD = re.compile(r"(\\+)[A-Za-z]+\Z")


def ends_with_control_word(text: str) -> bool:
    """True when `text` ends in a control word (`\\gamma`, not `\\\\gamma`, a line break then text)."""
    match = TRAILING_CONTROL_WORD.search(text[-64:])
    return match is not None and len(match.group(1)) % 2 == 1


def needs_space(before: str, after: str) -> bool:
    """TeX reads `\\gamma` then `q` as one control word `\\gammaq`: a space must part them."""
    return bool(after) and after[0].isascii() and after[0].isalpha() and ends_with_control_word(before)


def join(parts: list[str]) -> str:
    """`parts` joined, with a space where a control word would otherwise run into a letter."""
    out: list[str] = []
    for part in parts:
        if out and needs_space(out[-1], part):
            out.append(" ")
        if part:
            out.append(part)
    return "".join(out)


# --- macro definitions ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Macro:
    name: str  # without the backslash
    body: str
    nargs: int = 0
    default: str | None = None  # the optional first argument's default, when it has one
    # Layout, not text: the body works on LaTeX internals or is TeX programming (see
    # `is_machinery`). Its uses are removed with their arguments instead of expanded.
    opaque: bool = False
    delimiters: tuple[str, str] | None = None  # \DeclarePairedDelimiter: opening and closing

    def definition(self) -> str:
        """The macro as a LaTeX definition this module reads back (for package macros)."""
        if self.delimiters is not None:
            opening, closing = self.delimiters
            return f"\\DeclarePairedDelimiterX{{\\{self.name}}}[{self.nargs}]{{{opening}}}{{{closing}}}{{{self.body}}}"
        default = "" if self.default is None else f"[{self.default}]"
        return f"\\newcommand{{\\{self.name}}}[{self.nargs}]{default}{{{self.body}}}"


NEWCOMMAND = re.compile(r"\\(newcommand|renewcommand|providecommand|DeclareRobustCommand)\*?\s*")
DEF = re.compile(r"\\(?:def|gdef|edef|xdef)\s*\\([A-Za-z@]+|[^A-Za-z@\s])")
LET = re.compile(r"\\let\s*\\([A-Za-z@]+|[^A-Za-z@\s])\s*=?\s*(\\(?:[A-Za-z@]+|.)|[^\\\s])", re.DOTALL)
MATHOP = re.compile(r"\\DeclareMathOperator(\*?)\s*")
PAIRED = re.compile(r"\\DeclarePairedDelimiter(X?)\s*")
DEFINITION_START = re.compile(
    r"\\(?:newcommand|renewcommand|providecommand|DeclareRobustCommand|def|gdef|edef|xdef|let"
    r"|DeclareMathOperator|DeclarePairedDelimiterX?)(?![A-Za-z@])"
)
# LaTeX internals (`\Hy@raisedlink`) and look-ahead (`\futurelet`, `\@ifnextchar`): a macro
# built of them typesets; expanded as text it would leak internals and hold no text of the paper.
MACHINERY = re.compile(
    r"\\[A-Za-z]+@[A-Za-z@]*|\\@[A-Za-z]+"  # `\@` alone is the space factor, text
    r"|\\(?:futurelet|aftergroup|afterassignment|csname|patchcmd)(?![A-Za-z@])"
)
# A conditional: a macro that calls itself under one is a TeX loop that ends in TeX (MarkMathCmds'
# \colvecnext); expanded as text it would run until the expansion limit dropped the paper.
CONDITIONAL = re.compile(r"\\if[a-z]*(?![A-Za-z@])")


def is_machinery(body: str, name: str = "") -> bool:
    """True for a body of LaTeX internals or look-ahead, or a loop (a macro `name` calling
    itself under a conditional). Other TeX primitives stay: `\\RNum{1}` ->
    `\\uppercase\\expandafter{\\romannumeral 1\\relax}` keeps the number the text needs."""
    if MACHINERY.search(body):
        return True
    return bool(name) and CONDITIONAL.search(body) is not None and re.search(
        "\\\\" + re.escape(name) + "(?![A-Za-z@])", body) is not None


def collect_macros(text: str, package: bool = False) -> tuple[dict[str, Macro], str]:
    """User macros defined anywhere in `text`, and `text` with the definitions removed.

    Definitions take effect in document order: \\newcommand and \\renewcommand (re)define,
    \\providecommand only defines a name not yet defined. A \\def with delimited parameters
    (`\\def\\x#1.{...}`) is removed and not expanded: its uses stay as they are. A name with
    `@` is a LaTeX internal, never a user macro: its definition goes, nothing is expanded.

    A macro whose body is machinery (LaTeX internals, TeX programming: `\\linkdest` ->
    `\\Hy@raisedlink`, `\\onedot` -> `\\futurelet...`) is layout: expanding it would leak
    internals into the text, so its uses are removed (it is `opaque`). With `package` (the text
    of a `.sty`), package rules apply instead: \\renewcommand, \\providecommand and \\let there
    patch LaTeX's own commands (neurips_2020.sty provides and renews \\section), and machinery
    macros are the package's implementation (a shipped natbib.sty's \\citet); neither is
    collected, and only the package's notation macros are.
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
        if macro is None or "@" in macro.name:
            continue
        machinery = is_machinery(macro.body, macro.name) or (macro.delimiters is not None and is_machinery("".join(macro.delimiters)))
        if package and (kind in ("renewcommand", "providecommand", "let") or machinery):
            continue
        if kind == "providecommand" and macro.name in macros:
            continue
        if machinery:
            macro = Macro(macro.name, "", macro.nargs, macro.default, opaque=True)
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
    i = skip_spaces(text, i)
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
        kind = "newcommand" if m.group(1) == "DeclareRobustCommand" else m.group(1)
        return Macro(name[1:], body, nargs, default), i, kind
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
    m = PAIRED.match(text, start)
    if m:
        return _parse_paired(text, m.end(), extended=bool(m.group(1)))
    m = LET.match(text, start)
    if m:
        target = m.group(2)
        return Macro(m.group(1), target), m.end(), "let"
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


def _parse_paired(text: str, i: int, extended: bool) -> tuple[Macro | None, int, str] | None:
    """mathtools: `\\DeclarePairedDelimiter{\\ceil}{\\lceil}{\\rceil}` and the X form
    `\\DeclarePairedDelimiterX{\\infdivx}[2]{(}{)}{#1\\;\\delimsize\\|\\;#2}`."""
    named = _defined_name(text, i)
    if named is None:
        return None
    name, i = named
    if not name.startswith("\\") or not CONTROL_WORD.fullmatch(name):
        return None
    nargs = 1
    i = skip_spaces(text, i)
    if extended and i < len(text) and text[i] == "[":
        count, i = read_optional(text, i)
        if not count.strip().isdigit():
            return None
        nargs = int(count)
    groups = []
    for _ in range(3 if extended else 2):
        i = skip_spaces(text, i)
        if i >= len(text) or text[i] != "{":
            return None
        group, i = read_group(text, i)
        groups.append(group)
    body = groups[2] if extended else "#1"
    return Macro(name[1:], body, nargs, delimiters=(groups[0], groups[1])), i, "newcommand"


# --- the paper's own packages ---------------------------------------------------------------

USEPACKAGE = re.compile(r"\\(?:usepackage|RequirePackage)\s*(?:\[[^\]]*\])?\s*\{([^{}]*)\}")


def package_definitions(sty: str) -> str:
    """The notation macros of a package's text, as plain definitions (package rules of
    `collect_macros`): what a paper's `\\usepackage{own}` makes available to its text."""
    macros, _ = collect_macros(strip_comments(sty), package=True)
    return "".join(m.definition() for m in macros.values())


def inline_packages(text: str, base: str, load: Callable[[str], str | None]) -> str:
    """`text` with the notation macros of each local package it loads (`\\usepackage{a,b}` with
    a.sty in the paper, found relative to `base`) written after the \\usepackage command.
    A package loading another local package brings that one's macros too; each package once."""
    seen: set[str] = set()

    def definitions(name: str, depth: int) -> str:
        path = resolve_input(base, name.strip(), ".sty")
        if path is None or path in seen or depth > MAX_INPUT_DEPTH:
            return ""
        sty = load(path)
        if sty is None:
            return ""
        seen.add(path)
        sty = strip_comments(sty)
        nested = "".join(definitions(n, depth + 1) for m in USEPACKAGE.finditer(sty) for n in m.group(1).split(","))
        return nested + package_definitions(sty)

    def replace(match: re.Match[str]) -> str:
        return match.group(0) + "".join(definitions(n, 0) for n in match.group(1).split(","))

    return USEPACKAGE.sub(replace, text)


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
        parts.append("(?:" + "|".join(map(re.escape, words)) + ")(?![A-Za-z@])")
    if symbols:
        parts.append("[" + "".join(map(re.escape, symbols)) + "]")
    return re.compile(r"\\(" + "|".join(parts) + ")")


class Output:
    """The expanded text, piece by piece, bounded in size; a space goes in wherever a piece
    would otherwise glue a letter onto a control word (`\\gamma` + `q`)."""

    def __init__(self, limit: int) -> None:
        self.pieces: list[str] = []
        self.size = 0
        self.tail = ""
        self.limit = limit

    def emit(self, piece: str) -> None:
        if not piece:
            return
        if needs_space(self.tail, piece):
            piece = " " + piece
        self.pieces.append(piece)
        self.size += len(piece)
        self.tail = (self.tail + piece)[-64:] if len(piece) < 64 else piece[-64:]
        if self.size > self.limit:
            raise LatexError("macro_expansion_limit")

    def text(self) -> str:
        return "".join(self.pieces)


class Frames:
    """What is left to scan: a stack of [text, position], the innermost expansion on top.
    A macro's arguments may come from below its own frame (a body `\\b` whose macro \\b takes
    the argument that follows the use), exactly as TeX reads them."""

    def __init__(self, text: str) -> None:
        self.stack: list[list] = [[text, 0]]

    def top(self) -> list:
        while self.stack and self.stack[-1][1] >= len(self.stack[-1][0]):
            self.stack.pop()
        if not self.stack:
            raise LatexError("missing_macro_argument")
        return self.stack[-1]

    def skip_spaces(self) -> None:
        while self.stack:
            frame = self.top()
            frame[1] = skip_spaces(frame[0], frame[1])
            if frame[1] < len(frame[0]):
                return

    def peek(self) -> str:
        """The next character (spaces skipped), or "" at the end of the text."""
        try:
            self.skip_spaces()
            frame = self.top()
        except LatexError:
            return ""
        return frame[0][frame[1]]

    def read(self, reader: Callable[[str, int], tuple[str, int]]) -> str:
        self.skip_spaces()
        frame = self.top()
        value, frame[1] = reader(frame[0], frame[1])
        return value


def expand_macros(text: str, macros: dict[str, Macro], max_expansions: int = MAX_EXPANSIONS) -> str:
    """`text` with every use of `macros` replaced by its body, arguments substituted, until
    none is left; uses of opaque macros are removed with their arguments. Raises
    LatexError("macro_expansion_limit") past `max_expansions` uses, or when the output, or the
    text pushed back for rescanning, grows past 8x the input plus 1 MB (a recursive macro)."""
    pattern = macro_pattern(macros)
    if pattern is None:
        return text
    limit = output_limit(len(text))
    out = Output(limit)
    frames = Frames(text)
    pushed = expansions = 0
    while frames.stack:
        frame = frames.stack[-1]
        source, pos = frame
        match = pattern.search(source, pos)
        if match is None:
            out.emit(source[pos:])
            frames.stack.pop()
            continue
        start = match.start()
        if _escaped(source, start):
            out.emit(source[pos : start + 1])
            frame[1] = start + 1
            continue
        out.emit(source[pos:start])
        frame[1] = match.end()
        expansions += 1
        if expansions > max_expansions:
            raise LatexError("macro_expansion_limit")
        body = _use(macros[match.group(1)], frames)
        if not body:
            continue
        pushed += len(body)
        if pushed > limit:
            raise LatexError("macro_expansion_limit")
        frames.stack.append([body, 0])
    return out.text()


def _use(macro: Macro, frames: Frames) -> str:
    """The text one use of `macro` stands for, its arguments read from `frames`."""
    star, size = False, None
    if macro.delimiters is not None:
        if frames.peek() == "*":
            frames.read(lambda t, i: ("*", i + 1))
            star = True
        elif frames.peek() == "[":
            size = frames.read(read_optional).strip()
    args: list[str] = []
    if macro.default is not None:
        args.append(frames.read(read_optional) if frames.peek() == "[" else macro.default)
    while len(args) < macro.nargs:
        args.append(frames.read(read_argument))
    if macro.opaque:
        return ""
    body = _substitute(macro.body, args)
    if macro.delimiters is not None:
        opening, closing = macro.delimiters
        if star:
            body = join(["\\left", opening, body.replace("\\delimsize", "\\middle"), "\\right", closing])
        elif size:
            body = join([size + "l", opening, body.replace("\\delimsize", size), size + "r", closing])
        else:
            body = join([opening, body.replace("\\delimsize", ""), closing])
    frame = frames.stack[-1] if frames.stack else None
    if macro.nargs == 0 and frame is not None and frame[0].startswith("{}", frame[1]) and not ends_with_control_word(body):
        frame[1] += 2  # `\ours{}` is how authors write a space-safe use of an argument-free macro
    return body


def _substitute(body: str, args: list[str]) -> str:
    parts: list[str] = []
    pos = 0
    for p in PARAMETER.finditer(body):
        parts.append(body[pos : p.start()])
        parts.append("#" if p.group(1) == "#" else _arg(args, int(p.group(1))))
        pos = p.end()
    parts.append(body[pos:])
    return join(parts)


def _arg(args: list[str], n: int) -> str:
    return args[n - 1] if n <= len(args) else ""


# --- structure ------------------------------------------------------------------------------

SECTION = re.compile(r"\\(?:part|chapter|section|subsection|subsubsection|paragraph|subparagraph)(?![A-Za-z])\*?\s*[\[{]")
# The commands that print the bibliography (where it stands in the paper), and those that only
# configure it (removed wherever they are).
BIBLIOGRAPHY = re.compile(
    r"\\begin\{thebibliography\}"
    r"|\\bibliography\s*\{[^{}]*\}"
    r"|\\printbibliography(?:\s*\[[^\]]*\])?"
)
BIBLIOGRAPHY_SETUP = re.compile(r"\\(?:bibliographystyle|addbibresource)\s*\{[^{}]*\}")
END_BIBLIOGRAPHY = "\\end{thebibliography}"
# What still belongs to the paper after its bibliography: an appendix, or a numbered section.
AFTER_BIBLIOGRAPHY = re.compile(
    r"\\appendix(?![A-Za-z])|\\begin\{appendix|\\(?:part|chapter|section)(?![A-Za-z])\s*[\[{]"
)
# A heading or a group of font switches left holding nothing once the bibliography is cut:
# `\section*{References}` before it, `{\footnotesize` around it.
HEADING_BEFORE = re.compile(r"\\(?:section|chapter)\*?\s*\{\s*(?:References|Bibliography|Literature Cited)\s*\}\s*\Z", re.IGNORECASE)
OPEN_SWITCHES = re.compile(r"\{(?:\s*\\[A-Za-z]+)*\s*\Z")
CLOSE_GROUP = re.compile(r"\s*\}")
END_DOCUMENT = re.compile(r"\\end\{document\}")
BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")


def cut_before_first_section(text: str) -> str | None:
    """Text from the first sectioning command on (\\part ... \\subparagraph); None if there is none."""
    for match in SECTION.finditer(text):
        if not _escaped(text, match.start()):
            return text[match.start() :]
    return None


def remove_bibliography(text: str) -> str:
    """Drop the bibliography, the back matter after it, and everything after \\end{document}.

    What follows the bibliography is kept from an `\\appendix` (or appendix environment) or a
    numbered \\section/\\chapter on: appendices and supplements are the paper's own text. Until
    then it is back matter, dropped: the NeurIPS checklist, acknowledgements, author
    contributions, competing interests and consortium or affiliation lists that journals and
    conferences put after the references are all unnumbered (\\section*) or no section at all,
    and are forms and name lists, not the paper's prose (RedPajama cuts everything after the
    bibliography, appendices too). A second bibliography (an appendix's own) is cut the same way.
    """
    end = END_DOCUMENT.search(text)
    if end:
        text = text[: end.start()]
    text = BIBLIOGRAPHY_SETUP.sub("", text)
    kept: list[str] = []
    while (bib := BIBLIOGRAPHY.search(text)) is not None:
        before, after = text[: bib.start()], bib.end()
        if bib.group().startswith("\\begin"):
            close = text.find(END_BIBLIOGRAPHY, after)
            after = len(text) if close < 0 else close + len(END_BIBLIOGRAPHY)
        head = before[-300:]
        switches = OPEN_SWITCHES.search(head)
        closing = CLOSE_GROUP.match(text, after)
        if switches and closing:  # `{\footnotesize\bibliography{x}}`: the group goes with it
            before = before[: len(before) - len(head) + switches.start()]
            after = closing.end()
        head = before[-300:]
        heading = HEADING_BEFORE.search(head)
        if heading:
            before = before[: len(before) - len(head) + heading.start()]
        kept.append(before)
        rest = AFTER_BIBLIOGRAPHY.search(text, after)
        text = text[rest.start() :] if rest else ""
    kept.append(text)
    if kept[-1].strip() == "\\appendix":  # an appendix left empty (its content commented out)
        kept.pop()
    return BLANK_LINES.sub("\n\n", "\n\n".join(kept)).strip()
