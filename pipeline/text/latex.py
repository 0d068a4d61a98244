"""LaTeX source cleaning for the arXiv source (Lewkowycz et al. 2022, as the LLaMA paper does):
reading TeX and the paper's structural cuts. User macros are in `latex_macros`.

Pure functions on strings, each one concern:
- `strip_comments`: `%` to end of line (and the line break it eats, as TeX does), never `\\%`;
  `comment` environments too (an unclosed one runs to the end of the file, as in LaTeX).
- Verbatim (listings, `\\verb`) is found by `latex_verbatim.regions`, one scan every function
  here consults: comments, inputs, braces, sections, the bibliography and \\end{document}
  inside verbatim are text, as TeX reads them.
- `inline_inputs`: `\\input`/`\\include`/`\\include*`/`\\subfile` and the import package's
  `\\import{dir}{file}`/`\\subimport{dir}{file}` replaced by the file's (comment-free) text,
  bounded in depth and in total size, cycles cut.
- `check_braces`, `read_group`, `read_optional`, `read_argument`: braces and TeX arguments,
  read in time linear in their length (verbatim text does not count).
- `cut_before_first_section`, `remove_bibliography`: the paper's structural cuts; appendices stay.

Everything is linear in its input: no regex here can restart over a run it already read, and
inlining is bounded in output (MAX_GROWTH times the input plus 1 MB, `output_limit`), so a
hostile paper is dropped with a reason in bounded time. Problems raise `LatexError(reason)`
with a short reason the stages count.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator
from itertools import islice

import numpy as np

from pipeline.text.latex_verbatim import Environments, regions

MAX_GROWTH = 8  # cleaned text may be at most this many times the input (plus 1 MB)
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


def strip_comments(text: str, environments: Environments = Environments()) -> str:
    """`text` without its comments (`latex_verbatim.regions`: `%` to the end of the line and the
    line break it eats, comment environments), verbatim left whole: `%` in a listing is text.
    `environments` are the verbatim and comment environments another file of the paper defines."""
    if "%" not in text and "\\begin" not in text:
        return text
    return regions(text, environments).without_comments(text)


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
                  stack: tuple[str, ...] = (), budget: InputBudget | None = None,
                  environments: Environments = Environments()) -> str:
    """Replace input commands in `text` (a file in folder `base`) with the files `load` returns.

    `load(path)` gets a normalised path relative to the paper's root and returns the file's
    text or None. Only .tex files are inlined (a \\input of a .bbl or .pgf is dropped), a file
    already being inlined is not inlined again, and nesting stops at MAX_INPUT_DEPTH. `\\input`
    names resolve against `base` (TeX resolves them against the main file's folder, whichever
    file holds them); `\\import{dir}{file}` reads dir/file and resolves the inputs inside it
    against dir, `\\subimport` the same with dir relative to the current `base`. Raises
    LatexError("input_expansion_limit") past `budget` (default: 8x the text plus 1 MB). An input
    command in verbatim (a listing of LaTeX) is text, left as it is; `environments` are the
    verbatim and comment environments the paper defines (`latex_verbatim.paper_environments`):
    each inlined file is read with them, wherever they are defined.
    """
    budget = budget or InputBudget(output_limit(len(text)))
    spans = regions(text, environments)

    def replace(match: re.Match[str]) -> str:
        if spans.verbatim_at(match.start()) is not None:
            return match.group()
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
        content = strip_comments(content, environments)
        budget.spend(len(content))
        return inline_inputs(content, inner_base, load, depth + 1, stack + (path,), budget, environments)

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

GROUP_TOKEN = re.compile(r"[\\{}]")
OPTIONAL_TOKEN = re.compile(r"[\\{}\]]")


def check_braces(text: str) -> None:
    """Raise `LatexError("unbalanced_braces")` unless every unescaped { has its }."""
    depth = _brace_depths(regions(text).without_verbatim(text))
    if len(depth) and (depth.min() < 0 or depth[-1] != 0):
        raise LatexError("unbalanced_braces")


def _brace_depths(text: str) -> np.ndarray:
    """The brace depth after each character of `text` (escaped braces not counted), in C: a
    character is escaped when an odd run of backslashes comes right before it."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
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


def _tokens(text: str, j: int, tokens: re.Pattern[str]) -> Iterator[tuple[int, str]]:
    """Index and character of each match of `tokens` (one character, backslash among them) from
    `text[j]` on; the character right after a backslash is escaped, so never yielded."""
    while (token := tokens.search(text, j)) is not None:
        j = token.start()
        yield j, text[j]
        j += 2 if text[j] == "\\" else 1


def read_group(text: str, i: int) -> tuple[str, int]:
    """The content of the brace group opening at `text[i]`, and the index after it.

    Short groups are read token by token; a long one (a section wrapped in a macro, or the
    19,500-deep nesting of a hostile paper) by brace depths computed in C over windows that
    grow fourfold, so reading a group costs time linear in its length either way."""
    assert text[i] == "{"
    depth, seen = 0, 0
    for seen, (j, c) in enumerate(islice(_tokens(text, i, GROUP_TOKEN), 64), 1):
        if c == "\\":
            continue
        depth += 1 if c == "{" else -1
        if depth == 0:
            return text[i + 1 : j], j + 1
    if seen < 64:
        raise LatexError("unbalanced_braces")
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
    depth = 0
    for j, c in _tokens(text, i + 1, OPTIONAL_TOKEN):
        if c == "]" and depth == 0:
            return text[i + 1 : j], j + 1
        depth += {"{": 1, "}": -1}.get(c, 0)
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


def is_escaped(text: str, i: int) -> bool:
    """True when the backslash at `i` is itself escaped (preceded by an odd run of backslashes)."""
    n = 0
    while i - n - 1 >= 0 and text[i - n - 1] == "\\":
        n += 1
    return n % 2 == 1


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
END_BIBLIOGRAPHY = re.compile(r"\\end\{thebibliography\}")
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
    """Text from the first sectioning command on (\\part ... \\subparagraph) outside verbatim; None
    if there is none."""
    spans = regions(text)
    pos = 0
    while (match := spans.search(SECTION, text, pos)) is not None:
        if not is_escaped(text, match.start()):
            return text[match.start() :]
        pos = match.start() + 1
    return None


def remove_bibliography(text: str, environments: Environments = Environments()) -> str:
    """Drop the bibliography, the back matter after it, and everything after \\end{document}.

    What follows the bibliography is kept from an `\\appendix` (or appendix environment) or a
    numbered \\section/\\chapter on: appendices and supplements are the paper's own text. Until
    then it is back matter, dropped: the NeurIPS checklist, acknowledgements, author
    contributions, competing interests and consortium or affiliation lists that journals and
    conferences put after the references are all unnumbered (\\section*) or no section at all,
    and are forms and name lists, not the paper's prose (RedPajama cuts everything after the
    bibliography, appendices too). A second bibliography (an appendix's own) is cut the same way.
    Each of these commands counts only outside verbatim: a listing of LaTeX shows them as text.
    `environments` holds the verbatim environments `text` no longer defines: the cut before the
    first section took the preamble that made them verbatim (`CutBeforeFirstSection`).
    """
    spans = regions(text, environments)
    end = spans.search(END_DOCUMENT, text)
    if end:
        text = text[: end.start()]  # the spans before the cut stay as they were
    text = BIBLIOGRAPHY_SETUP.sub(lambda m: m.group() if spans.verbatim_at(m.start()) else "", text)
    spans = regions(text, environments)
    kept: list[str] = []
    pos = 0
    while (bib := spans.search(BIBLIOGRAPHY, text, pos)) is not None:
        before, after = text[pos : bib.start()], bib.end()
        if bib.group().startswith("\\begin"):
            close = spans.search(END_BIBLIOGRAPHY, text, after)
            after = len(text) if close is None else close.end()
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
        rest = spans.search(AFTER_BIBLIOGRAPHY, text, after)
        pos = rest.start() if rest else len(text)
    kept.append(text[pos:])
    if kept[-1].strip() == "\\appendix":  # an appendix left empty (its content commented out)
        kept.pop()
    return BLANK_LINES.sub("\n\n", "\n\n".join(kept)).strip()
