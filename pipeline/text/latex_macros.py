"""User macros of a LaTeX paper, collected and expanded (the arXiv source's cleaning; TeX
reading itself is in `latex`).

- `collect_macros` + `expand_macros`: user macros from `\\newcommand`, `\\renewcommand`,
  `\\providecommand`, `\\DeclareRobustCommand` (starred too), `\\def`/`\\gdef`/`\\edef`/`\\xdef`
  with undelimited parameters, `\\let` (a copy of the meaning its target has then: see
  `let_meaning`, and `_bind_waiting_lets` for a target the paper defines only later),
  `\\DeclareMathOperator` and mathtools'
  `\\DeclarePairedDelimiter(X)`, expanded inline with arguments #1..#9 and an optional first
  argument with a default; xparse's `\\NewDocumentCommand` and its kin with the argument types
  `latex_xparse` reads. A name is matched whole (`\\R` never matches inside `\\Real`). Nothing
  is defined or expanded inside verbatim (`latex_verbatim`): a listing of LaTeX is text.
- Look-ahead macros (`\\onedot` of the CVPR templates: "e.g." before a word, no double dot
  before "."), read and chosen by `latex_lookahead`.
- The paper's own `.sty` files are read with these rules by `latex_packages`.

Expansion is bounded in output (MAX_GROWTH times the input plus 1 MB, `output_limit`) and in
work (the text it may push back for rescanning has the same bound, and at most MAX_EXPANSIONS
uses are expanded), so a recursive or exponential macro drops the paper with a reason
(`LatexError("macro_expansion_limit")`) in bounded time.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from pipeline.text.latex import (
    CONTROL_WORD,
    LatexError,
    is_escaped,
    output_limit,
    read_argument,
    read_group,
    read_optional,
    skip_spaces,
)
from pipeline.text.latex_lookahead import REACH, LookAhead, choose, look_ahead
from pipeline.text.latex_verbatim import regions
from pipeline.text.latex_xparse import Argument, choose_branches, parse_spec, read_arguments

MAX_EXPANSIONS = 20_000  # macro uses expanded per document


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
    look_ahead: LookAhead | None = None  # printed after `body`, chosen by the character that follows
    # xparse's argument specification (`\NewDocumentCommand`), read in its order at a use
    # instead of `nargs` and `default`.
    arguments: tuple[Argument, ...] | None = None
    # `\let` to a command no user macro defined then: `body` is that command as LaTeX has it,
    # printed as it is, never expanded again (a later \renewcommand of it changes nothing here).
    printed: bool = False

    def definition(self) -> str:
        """The macro as a LaTeX definition this module reads back (for package macros)."""
        if self.arguments is not None:
            spec = " ".join(argument.spec() for argument in self.arguments)
            return f"\\NewDocumentCommand{{\\{self.name}}}{{{spec}}}{{{self.body}}}"
        if self.delimiters is not None:
            opening, closing = self.delimiters
            return f"\\DeclarePairedDelimiterX{{\\{self.name}}}[{self.nargs}]{{{opening}}}{{{closing}}}{{{self.body}}}"
        default = "" if self.default is None else f"[{self.default}]"
        body = self.body if self.look_ahead is None else self.body + self.look_ahead.definition()
        return f"\\newcommand{{\\{self.name}}}[{self.nargs}]{default}{{{body}}}"


NEWCOMMAND = re.compile(r"\\(newcommand|renewcommand|providecommand|DeclareRobustCommand)\*?\s*")
DEF = re.compile(r"\\(?:def|gdef|edef|xdef)\s*\\([A-Za-z@]+|[^A-Za-z@\s])")
LET = re.compile(r"\\let\s*\\([A-Za-z@]+|[^A-Za-z@\s])\s*=?\s*(\\(?:[A-Za-z@]+|.)|[^\\\s])", re.DOTALL)
MATHOP = re.compile(r"\\DeclareMathOperator(\*?)\s*")
PAIRED = re.compile(r"\\DeclarePairedDelimiter(X?)\s*")
DOCUMENT_COMMAND = re.compile(r"\\(New|Renew|Provide|Declare)(?:Expandable)?DocumentCommand\s*")
DEFINITION_START = re.compile(
    r"\\(?:newcommand|renewcommand|providecommand|DeclareRobustCommand|def|gdef|edef|xdef|let"
    r"|DeclareMathOperator|DeclarePairedDelimiterX?|(?:New|Renew|Provide|Declare)(?:Expandable)?DocumentCommand)"
    r"(?![A-Za-z@])"
)
# What `\NewDocumentCommand` and the others do, as the \newcommand family names it.
# `declare` (\DeclareRobustCommand, \DeclareDocumentCommand) defines or redefines alike; only a
# `newcommand` kind (\newcommand, \NewDocumentCommand, \DeclareMathOperator and mathtools'
# \DeclarePairedDelimiter, which test \@ifdefinable) is refused by LaTeX for a name already defined.
DOCUMENT_COMMAND_KIND = {"New": "newcommand", "Renew": "renewcommand", "Provide": "providecommand",
                         "Declare": "declare"}
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


def collect_macros(text: str, package: bool = False,
                   unsupported: Counter[str] | None = None) -> tuple[dict[str, Macro], str]:
    """User macros defined anywhere in `text` outside verbatim, and `text` with the definitions
    removed.

    Definitions take effect in document order: \\newcommand and \\renewcommand (re)define,
    \\providecommand only defines a name not yet defined; the xparse commands
    (\\NewDocumentCommand ...) the same. A \\def with delimited parameters (`\\def\\x#1.{...}`) or
    an xparse command with an argument type not read (`r()`, `v`, see `latex_xparse`) is removed
    and not expanded: its uses stay as they are, and it is counted in `unsupported` by that
    reason (`delimited_def`, `unsupported_xparse_spec`). A name with
    `@` is a LaTeX internal, never a user macro: its definition goes, nothing is expanded.

    A macro whose body is machinery (LaTeX internals, TeX programming: `\\linkdest` ->
    `\\Hy@raisedlink`) is layout: expanding it would leak internals into the text, so its uses
    are removed (it is `opaque`). The exception is a look-ahead that prints plain text (`\\onedot`
    -> `\\futurelet\\@let@token\\@onedot`, see `latex_lookahead`): it is read once all
    definitions are collected, since the templates define its helper after it. With `package`
    (the text of a `.sty`), package rules apply instead: \\renewcommand, \\providecommand and
    \\let there patch LaTeX's own commands (neurips_2020.sty provides and renews \\section), and
    machinery macros are the package's implementation (a shipped natbib.sty's \\citet); neither
    is collected, and only the package's notation macros (look-ahead ones too: cvpr.sty's) are.
    """
    macros: dict[str, Macro] = {}
    bodies: dict[str, str] = {}  # every definition's body by name, internals too (look-ahead helpers)
    machinery_macros: dict[str, Macro] = {}  # the latest definition of a name, when it is machinery
    waiting: dict[str, list[Macro]] = {}  # a target's \let copies made while no user macro defined it
    pieces: list[str] = []
    pos = 0
    spans = regions(text)
    for start in [m.start() for m in DEFINITION_START.finditer(text)]:
        if start < pos or is_escaped(text, start) or spans.verbatim_at(start) is not None:
            continue  # a definition in a listing of LaTeX defines nothing
        parsed = _parse_definition(text, start)
        if parsed is None:
            continue
        macro, end, kind = parsed
        pieces.append(text[pos:start])
        pos = end
        if macro is None:
            if unsupported is not None:
                unsupported[kind] += 1
            continue
        if kind == "let":  # the target's latest definition: machinery_macros keeps machinery ones whole
            target = macro.body[1:] if macro.body.startswith("\\") else ""
            current = machinery_macros.get(target) or macros.get(target)
            macro = let_meaning(macro.name, macro.body, current)
            if current is None and target:
                waiting.setdefault(target, []).append(macro)
        copies = waiting.pop(macro.name, [])  # only the target's first definition tells what it was
        bodies[macro.name] = macro.body
        if "@" in macro.name or (package and kind in ("renewcommand", "providecommand", "let")):
            continue
        if kind == "providecommand" and macro.name in macros:
            continue
        delimiters = "".join(macro.delimiters or ())
        if is_machinery(macro.body, macro.name) or is_machinery(delimiters):
            machinery_macros[macro.name] = macro
            if package:
                continue
            macro = Macro(macro.name, "", macro.nargs, macro.default, opaque=True, arguments=macro.arguments)
        else:
            machinery_macros.pop(macro.name, None)
        macros[macro.name] = macro
        if kind == "newcommand":
            _bind_waiting_lets(copies, macro, macros, machinery_macros)
    for name, macro in machinery_macros.items():
        found = None if macro.delimiters is not None else look_ahead(macro.body, bodies)
        if found is not None and not is_machinery(found[0]):
            macros[name] = Macro(name, found[0], macro.nargs, macro.default, look_ahead=found[1],
                                 arguments=macro.arguments)
    pieces.append(text[pos:])
    return macros, "".join(pieces)


def let_meaning(name: str, target: str, current: Macro | None) -> Macro:
    """`\\let\\name` + `target` as TeX does it: `name` gets the meaning `target` has now. A user
    macro (`current`, its definition at this point) is copied, so `\\let\\oldemph\\emph` then
    `\\renewcommand{\\emph}[1]{\\textbf{\\oldemph{#1}}}` is no loop; anything else (a LaTeX
    command, a character) is printed as `target`, whatever a later definition makes of it."""
    return Macro(name, target, printed=True) if current is None else replace(current, name=name)


def _bind_waiting_lets(copies: list[Macro], defined: Macro, macros: dict[str, Macro],
                       machinery_macros: dict[str, Macro]) -> None:
    """`\\let\\foo\\bar` before the paper's `\\newcommand{\\bar}`: LaTeX refuses the `newcommand`
    kinds for a defined name, so \\bar was undefined at the \\let and TeX made \\foo undefined: a
    use is an error that prints nothing. A paper that prints through \\foo and compiles ran the
    \\let after the definition (in \\AtBeginDocument, a command called later), where \\foo printed
    \\bar's text: each copy still as the \\let left it takes `defined`'s meaning. Printing `\\bar`
    would leak a user macro's name, never expanded (a `printed` body is not rescanned). A copy
    `defined` calls (the wrapper idiom over a command that was not there) would loop: it prints
    nothing, as in TeX. After \\def, \\renewcommand or \\providecommand the target may have been
    LaTeX's own (`\\let\\oldcite\\cite\\def\\cite...`): the copies print its name, as written."""
    for copy in copies:
        if macros.get(copy.name) is not copy:
            continue  # redefined since the \\let: that definition holds
        if re.search("\\\\" + re.escape(copy.name) + "(?![A-Za-z@])", defined.body):
            macros[copy.name] = Macro(copy.name, "", printed=True)
            continue
        macros[copy.name] = replace(defined, name=copy.name)
        if defined.name in machinery_macros:
            machinery_macros[copy.name] = replace(machinery_macros[defined.name], name=copy.name)


def _defined_name(text: str, i: int) -> tuple[str, int] | None:
    """The macro name a definition gives at `i`, braced (`{\\R}`) or bare (`\\R`), and where it ends."""
    i = skip_spaces(text, i)
    if i < len(text) and text[i] == "{":
        name_group, i = read_group(text, i)
        return name_group.strip(), i
    token = CONTROL_WORD.match(text, i)
    return None if token is None else (token.group(), token.end())


def _defined_control_word(text: str, i: int) -> tuple[str, int] | None:
    """`_defined_name` when it is one control word (`\\R`, not `R` or `\\a b`), without its backslash."""
    named = _defined_name(text, i)
    if named is None or not named[0].startswith("\\") or not CONTROL_WORD.fullmatch(named[0]):
        return None
    return named[0][1:], named[1]


def _groups(text: str, i: int, count: int) -> tuple[list[str], int] | None:
    """The contents of `count` brace groups from `text[i]` (spaces between), and where they end."""
    groups = []
    for _ in range(count):
        i = skip_spaces(text, i)
        if i >= len(text) or text[i] != "{":
            return None
        group, i = read_group(text, i)
        groups.append(group)
    return groups, i


def _parse_definition(text: str, start: int) -> tuple[Macro | None, int, str] | None:
    m = NEWCOMMAND.match(text, start)
    if m:
        named = _defined_control_word(text, m.end())
        if named is None:
            return None
        name, i = named
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
        kind = "declare" if m.group(1) == "DeclareRobustCommand" else m.group(1)
        return Macro(name, body, nargs, default), i, kind
    m = MATHOP.match(text, start)
    if m:
        # One control word, as for \\newcommand: a braced name of several tokens (`{\\a b}`) is
        # no macro name, and would put a name into `macro_pattern` that no use can match.
        named = _defined_control_word(text, m.end())
        if named is None:
            return None
        name, i = named
        i = skip_spaces(text, i)
        if i >= len(text) or text[i] != "{":
            return None
        operator, i = read_group(text, i)
        return Macro(name, f"\\operatorname{m.group(1)}{{{operator}}}"), i, "newcommand"
    m = PAIRED.match(text, start)
    if m:
        return _parse_paired(text, m.end(), extended=bool(m.group(1)))
    m = DOCUMENT_COMMAND.match(text, start)
    if m:
        return _parse_document_command(text, m.end(), DOCUMENT_COMMAND_KIND[m.group(1)])
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
            return None, end, "delimited_def"  # the definition goes, its uses stay (counted)
        return Macro(name, body, len(params) // 2), end, "def"
    return None


def _parse_paired(text: str, i: int, extended: bool) -> tuple[Macro | None, int, str] | None:
    """mathtools: `\\DeclarePairedDelimiter{\\ceil}{\\lceil}{\\rceil}` and the X form
    `\\DeclarePairedDelimiterX{\\infdivx}[2]{(}{)}{#1\\;\\delimsize\\|\\;#2}`."""
    named = _defined_control_word(text, i)
    if named is None:
        return None
    name, i = named
    nargs = 1
    i = skip_spaces(text, i)
    if extended and i < len(text) and text[i] == "[":
        count, i = read_optional(text, i)
        if not count.strip().isdigit():
            return None
        nargs = int(count)
    read = _groups(text, i, 3 if extended else 2)
    if read is None:
        return None
    groups, i = read
    body = groups[2] if extended else "#1"
    return Macro(name, body, nargs, delimiters=(groups[0], groups[1])), i, "newcommand"


def _parse_document_command(text: str, i: int, kind: str) -> tuple[Macro | None, int, str] | None:
    """xparse: `\\NewDocumentCommand{\\name}{spec}{body}` (the name braced or not). A spec with an
    argument type `latex_xparse` does not read gives no macro: the definition goes, its uses stay,
    and it is counted as `unsupported_xparse_spec`."""
    named = _defined_control_word(text, i)
    read = None if named is None else _groups(text, named[1], 2)
    if named is None or read is None:
        return None
    (spec, body), i = read
    arguments = parse_spec(spec)
    if arguments is None:
        return None, i, "unsupported_xparse_spec"
    return Macro(named[0], body, len(arguments), arguments=arguments), i, kind


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
    the argument that follows the use), exactly as TeX reads them. Only the top frame may be
    scanned to its end (`expand_macros` pops a frame a use ends), so REACH characters ahead lie
    in REACH + 1 frames at most."""

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

    def ahead(self) -> str:
        """The next REACH characters, left unread (TeX's \\futurelet), from REACH frames at most."""
        parts: list[str] = []
        size = 0
        for text, pos in reversed(self.stack[-REACH - 1 :]):
            parts.append(text[pos : pos + REACH - size])
            size += len(parts[-1])
            if size >= REACH:
                break
        return "".join(parts)

    def drop(self, count: int) -> None:
        """Pass over the next `count` characters (at most what `ahead` returned)."""
        while count > 0 and self.stack:
            frame = self.stack[-1]
            taken = min(count, len(frame[0]) - frame[1])
            frame[1] += taken
            count -= taken
            if count > 0:
                self.stack.pop()


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
    paper = frames.stack[0]  # the paper's own text, whose verbatim regions are known
    spans = regions(text)
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
        verbatim = spans.verbatim_at(start) if frame is paper else None
        if verbatim is not None:  # TeX prints a listing as it is: no macro expands in it
            out.emit(source[pos : verbatim[1]])
            frame[1] = verbatim[1]
            continue
        if is_escaped(source, start):
            out.emit(source[pos : start + 1])
            frame[1] = start + 1
            continue
        out.emit(source[pos:start])
        frame[1] = match.end()
        expansions += 1
        if expansions > max_expansions:
            raise LatexError("macro_expansion_limit")
        macro = macros[match.group(1)]
        body = _use(macro, frames)
        if macro.printed:
            out.emit(body)  # the meaning a \let copied: rescanned, it would take a later definition's
            continue
        if not body:
            continue
        pushed += len(body)
        if pushed > limit:
            raise LatexError("macro_expansion_limit")
        if frames.stack and frames.stack[-1][1] >= len(frames.stack[-1][0]):
            frames.stack.pop()  # the use ended its frame: no empty frame stays below the body
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
    if macro.arguments is not None:
        return _use_document_command(macro, frames)
    args: list[str] = []
    if macro.default is not None:
        args.append(frames.read(read_optional) if frames.peek() == "[" else macro.default)
    while len(args) < macro.nargs:
        args.append(frames.read(read_argument))
    if macro.opaque:
        return ""
    body = _substitute(macro.body, args)
    if macro.look_ahead is not None:
        text, skipped = choose(macro.look_ahead, frames.ahead())
        frames.drop(skipped)
        return join([body, text])
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


def _use_document_command(macro: Macro, frames: Frames) -> str:
    """A use of an xparse command (`latex_xparse.read_arguments`); a star or an optional
    argument chooses the branches of the body's tests of it."""
    assert macro.arguments is not None
    # Looked at, left unread: the spaces after a use with no star are the paper's (`\\ours and`).
    args, given = read_arguments(macro.arguments, lambda char: frames.ahead().lstrip(" \t\n").startswith(char),
                                 frames.read)
    return "" if macro.opaque else _substitute(choose_branches(macro.body, given), args)


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
