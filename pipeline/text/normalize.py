"""CCNet's text normalisations, shared by line dedup and the perplexity model.

Normal forms:
- for dedup, CCNet's own (`normalize_for_dedup`, the default): each line stripped of white
  space, lower-cased, every decimal digit turned into 0, then CCNet's list of non-ASCII
  punctuation (`，` `。` `“` `’` `…` ...) and the control characters U+0000-001F and
  U+007F-009F removed. ASCII punctuation stays, so "example." and "example" are two lines,
  exactly as in CCNet, whose test `test_normalize_for_dedup` pins the cases
  ("０２３´∶：\x10 | ;012 hèllo" -> "000 | ;000 hèllo"). The strip comes first: a control
  character outside a space keeps that space.
- for dedup, a stricter option (`strict=True`): every Unicode punctuation character
  (categories P*), CCNet's list and the control characters removed instead, and the line stripped after, so
  lines that differ only by punctuation ("Home | News" and "Home - News.") hash alike and
  punctuation-only lines ("---") have no content. Not CCNet's; kept for runs that want more
  template lines to go.
- for the language model (`normalize_for_lm`): CCNet's `normalize(line)` with its defaults
  (accent=True, case=True, numbers=True, punct=1), step for step: stripped of white space,
  lower-cased, decomposed (NFD) with every non-spacing mark (category Mn) removed, so accents,
  a virama (्) and a dakuten (゙, and が -> か) go; every decimal digit to 0; CCNet's list of
  unicode punctuation mapped to ASCII (every other punctuation, ‐ ‘ ¿ • ·, stays); then the
  control characters U+0000-001F and U+007F-009F removed, newline and tab among them. The
  text stays decomposed (CCNet returns the NFD form: Hangul syllables come out as jamo). A
  text of several lines comes out as one (CCNet's mine.py scores a page so); herd's perplexity
  filter normalises line by line unless told otherwise (pipeline/filters/perplexity.py).

Speed: ASCII text goes through `bytes.translate`, one C call for what a per-character table
does in Python. Text with a few characters past ASCII (most real pages: a curly quote, a dash,
a no-break space) takes the same call for its ASCII and one regex pass replacing those
characters that change (`_SparseForm`). Other text goes through a table indexed by code point
in numpy (`_CodepointFold`) after lower-casing (and NFD), all lines of a page at once, each
line stripped first as CCNet strips it. On the real CommonCrawl pages of ../shared/realdata
the table took the dedup form from 35 to 15 ns a character and the LM form from 40 to 29.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable

import numpy as np

# CCNet's map of unicode punctuation to ASCII (text_normalizer.UNICODE_PUNCT): the LM form
# maps these, the dedup form removes them.
_UNICODE_PUNCT = {
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"', "１": '"',
    "」": '"', "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":", "？": "?", "！": "!",
    "（": "(", "）": ")", "；": ";", "–": "-", "—": " - ", "．": ". ", "～": "~", "’": "'", "…": "...",
    "━": "-", "〈": "<", "〉": ">", "【": "[", "】": "]", "％": "%", "►": "-",
}

# --- dedup ------------------------------------------------------------------------------

def _characters_by_category() -> tuple[list[str], list[str], list[str]]:
    punct_or_control, digits, non_spacing_marks = [], [], []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        category = unicodedata.category(char)
        if category[0] == "P" or (category == "Cc" and char != "\n"):
            punct_or_control.append(char)
        elif category == "Nd":
            digits.append(char)
        elif category == "Mn":
            non_spacing_marks.append(char)
    return punct_or_control, digits, non_spacing_marks


_PUNCT_OR_CONTROL, _DIGITS, _NON_SPACING_MARKS = _characters_by_category()
# CCNet's NON_PRINTING_CHARS_RE: the C0 and C1 controls and DEL. Dedup keeps the newline
# (it splits on it); the LM form removes it too.
_CCNET_CONTROL = [chr(c) for c in (*range(32), *range(127, 160))]
_CONTROL = [c for c in _CCNET_CONTROL if c != "\n"]

# What each form removes (after lower-casing and digits to "0"), as one regex character class:
# `re.sub` scans in C, several times faster than `str.translate` with a dict table.
_DIGIT = re.compile(r"\d")  # every decimal digit (category Nd), as CCNet's \d
_CCNET_REMOVED = re.compile("[" + "".join(map(re.escape, (*_UNICODE_PUNCT, *_CONTROL))) + "]")
# The strict form: all punctuation, CCNet's list (it has symbols: ´ ∶ ━ ►) and the controls.
_STRICT_REMOVED = re.compile(
    "[" + "".join(map(re.escape, sorted({*_PUNCT_OR_CONTROL, *_UNICODE_PUNCT, *_CONTROL}))) + "]"
)

# bytes.translate for the ASCII path: lower-case and digits in the table, the rest deleted.
_ASCII_MAP = bytearray(range(256))
for _b in range(ord("A"), ord("Z") + 1):
    _ASCII_MAP[_b] = _b + 32
for _b in range(ord("0"), ord("9") + 1):
    _ASCII_MAP[_b] = ord("0")
_ASCII_DEDUP_MAP = bytes(_ASCII_MAP)
_ASCII_CONTROL_DELETE = bytes(b for b in (*range(32), 127) if b != 10)  # the LM form's lines too
_ASCII_STRICT_DELETE = bytes(b for b in range(128) if chr(b) in set(_PUNCT_OR_CONTROL))
# Deleting before stripping equals CCNet's strip-then-delete unless a control character that
# is not white space sits at a line's edge; text holding one takes the exact path.
_ASCII_EDGE_SENSITIVE = bytes((*range(9), *range(14, 28), 127))

# Text that is not all ASCII is still nearly all ASCII on real pages (121 of 130 real
# CommonCrawl pages hold a curly quote, a no-break space or an accent). Its characters are
# mapped through a table indexed by code point, in numpy: 9 ns a character on those pages,
# where a dict `str.translate` looks every character up in a Python dict (about 90 ns) and a
# regex class of the thousands of marks is slower still.
_DELETED = 0xFFFFFFFF  # a table entry: the character is removed


class _CodepointFold:
    """A per-character map over all of Unicode: each character stays, becomes one other
    character, or is removed (`table`); the few that become several are replaced first, by
    `str.replace` (`several`: their replacements are ASCII that the table keeps). The table
    takes 4.4 MB, built on first use."""

    def __init__(self, changes: dict[str, str | None]) -> None:
        self.changes = changes  # character -> replacement, None to remove it
        self._table: np.ndarray | None = None
        self.several = tuple((c, r) for c, r in changes.items() if r is not None and len(r) > 1)

    def table(self) -> np.ndarray:
        if self._table is None:
            table = np.arange(sys.maxunicode + 1, dtype=np.uint32)
            for char, replacement in self.changes.items():
                if replacement is None:
                    table[ord(char)] = _DELETED
                elif len(replacement) == 1:
                    table[ord(char)] = ord(replacement)
            self._table = table
        return self._table

    def __call__(self, text: str) -> str:
        for char, replacement in self.several:
            if char in text:
                text = text.replace(char, replacement)
        # Lone surrogates (a JSON "\ud800") pass through as themselves.
        points = self.table()[np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")]
        return points[points != _DELETED].tobytes().decode("utf-32-le", "surrogatepass")


_ASCII_BYTES = bytes(range(128))
_UNSEEN = object()


class _SparseForm:
    """A whole normal form, lower-casing included, for stripped text that is nearly all ASCII
    (real pages: a curly quote, a dash, a no-break space): its ASCII bytes through one
    `bytes.translate`, then each distinct character past ASCII that changes replaced by its own
    form. Half the time of lower-casing, decomposing and the code-point table on the bench's
    English pages.

    Character by character equals the whole text's form only where each character's form is its
    own: not so for a capital sigma (lower-cased by what follows it), nor, with `reordered`
    (the LM form's NFD), for a character whose decomposition holds a combining mark that stays
    (NFD reorders marks; those it removes may go in any order). Text holding such a character,
    more than one byte past ASCII in `SHARE`, or more than `CHANGES` characters that change, is
    None: the caller takes the exact path.

    The changes are made in one pass, by a regex of the changing characters (each character's
    UTF-8 bytes, which match only where that character is): a `bytes.replace` for each scans the
    whole text twice, and the pass took the dedup form of the bench's batches of non-ASCII pages
    (300 KB, 3 changing characters) from 1.2 to 0.3 ms. Each character is replaced by its form
    once, as the code-point table maps it; the replacements one after another that this pass took
    over gave the same bytes, as every character a form holds past ASCII is its own form (checked
    over all of Unicode for both forms)."""

    SHARE = 8
    CHANGES = 8
    CACHE = 1 << 16  # characters whose forms are kept (cleared when full)
    PATTERNS = 1024  # regexes of sets of changing characters kept (cleared when full)

    def __init__(self, form_of: Callable[[str], str], reordered: bool) -> None:
        self.form_of = form_of  # the form of a text, lower-casing included
        self.reordered = reordered
        self._forms: dict[str, bytes | None] = {}
        self._patterns: dict[tuple[bytes, ...], re.Pattern[bytes]] = {}  # the changing characters' regex

    def _form(self, char: str) -> bytes | None:
        form = self._forms.get(char, _UNSEEN)
        if form is _UNSEEN:
            if len(self._forms) >= self.CACHE:
                self._forms.clear()
            kept_mark = self.reordered and any(
                unicodedata.combining(c) and unicodedata.category(c) != "Mn"
                for c in unicodedata.normalize("NFD", char.lower()))
            form = None if char == "\u03a3" or kept_mark else self.form_of(char).encode("utf-8", "surrogatepass")
            self._forms[char] = form
        return form  # type: ignore[return-value]

    def __call__(self, stripped: str) -> bytes | None:
        data = stripped.encode("utf-8", "surrogatepass")
        if (len(data) - len(stripped)) * self.SHARE > len(stripped):
            return None
        changes: dict[bytes, bytes] = {}  # a changing character's UTF-8 bytes -> its form
        for char in set(data.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")):
            form = self._form(char)
            if form is None:
                return None
            raw = char.encode("utf-8", "surrogatepass")
            if form != raw:
                changes[raw] = form
        if len(changes) > self.CHANGES:
            return None
        # A form is final: ASCII in a replacement is not lower-cased again, so the table goes first.
        data = data.translate(_ASCII_DEDUP_MAP, _ASCII_CONTROL_DELETE)
        if not changes:
            return data
        return self._pattern(tuple(sorted(changes))).sub(lambda found: changes[found.group()], data)

    def _pattern(self, raws: tuple[bytes, ...]) -> re.Pattern[bytes]:
        pattern = self._patterns.get(raws)
        if pattern is None:
            if len(self._patterns) >= self.PATTERNS:
                self._patterns.clear()
            # No character's UTF-8 bytes begin another's: the alternatives' order does not matter.
            pattern = self._patterns[raws] = re.compile(b"|".join(map(re.escape, raws)))
        return pattern


# CCNet's dedup form after lower-casing and stripping: every decimal digit to 0, its punctuation
# list and the controls but the newline removed (digits last: the full-width "１" in the list
# becomes "0", as CCNet's digit step comes first).
_DEDUP_FOLD = _CodepointFold({c: None for c in (*_UNICODE_PUNCT, *_CONTROL)} | {d: "0" for d in _DIGITS})
_DEDUP_SPARSE = _SparseForm(lambda text: _DEDUP_FOLD(text.lower()), reordered=False)


def dedup_lines(text: str, strict: bool = False) -> list[bytes]:
    """The dedup normal form of each line of `text` (split on "\\n" only), UTF-8 encoded.

    The result is aligned with `text.split("\\n")`: element i is the key material of line i;
    an empty result means the line has no content (blank; in the strict form also a line of
    punctuation only).
    """
    if text.isascii():
        raw = text.encode("ascii")
        folded = raw.translate(_ASCII_DEDUP_MAP, _ASCII_STRICT_DELETE if strict else _ASCII_CONTROL_DELETE)
        # Nothing deleted: no control character at all, so none at an edge either.
        if strict or len(folded) == len(raw) or len(raw.translate(None, _ASCII_EDGE_SENSITIVE)) == len(raw):
            return [line.strip() for line in folded.split(b"\n")]
    if strict:
        lowered = _DIGIT.sub("0", text.lower())
        return [line.strip().encode("utf-8", "surrogatepass") for line in _STRICT_REMOVED.sub("", lowered).split("\n")]
    # CCNet strips each line before it removes characters (and after it lower-cases, which
    # makes no white space and unmakes none: stripping first is the same).
    stripped = "\n".join([line.strip() for line in text.split("\n")])
    folded = _DEDUP_SPARSE(stripped)
    if folded is None:
        folded = _DEDUP_FOLD(stripped.lower()).encode("utf-8", "surrogatepass")
    return folded.split(b"\n")


def normalize_for_dedup(line: str, strict: bool = False) -> str:
    """One line in the dedup normal form (the readable version of `dedup_lines`)."""
    if strict:
        return _STRICT_REMOVED.sub("", _DIGIT.sub("0", line.lower())).strip()
    return _CCNET_REMOVED.sub("", _DIGIT.sub("0", line.strip().lower()))


# --- language model ---------------------------------------------------------------------

# CCNet's steps after NFD, as one table: marks removed, digits to 0 (before the punctuation
# map, so the full-width "１" in CCNet's map becomes "0", as there), the map, controls removed.
# No entry's output is another entry's input, so one pass equals CCNet's four.
_LM_TABLE: dict[int, str | None] = {ord(c): None for c in _NON_SPACING_MARKS}
_LM_TABLE.update({ord(k): v for k, v in _UNICODE_PUNCT.items()})
_LM_TABLE.update({ord(d): "0" for d in _DIGITS})
_LM_TABLE.update({ord(c): None for c in _CCNET_CONTROL})

# ASCII needs neither NFD nor the map: lower-case and digits in the table, controls deleted.
_ASCII_LM_DELETE = bytes((*range(32), 127))
# The table with the newline kept, for several lines at once (normalize_lines_for_lm).
_LM_FOLD = _CodepointFold({chr(k): v for k, v in _LM_TABLE.items() if k != ord("\n")})


def _lm_fold(text: str) -> str:
    """The LM form's steps after the strip, on text that is not all ASCII: lower-cased,
    decomposed, then `_LM_TABLE` applied, newlines kept."""
    return _LM_FOLD(unicodedata.normalize("NFD", text.lower()))


_LM_SPARSE = _SparseForm(_lm_fold, reordered=True)


def normalize_for_lm(text: str) -> str:
    """CCNet's `normalize(text)` (punct=1), the form SentencePiece and KenLM see: see the
    module's docstring. Newlines are control characters there, so a text of several lines
    comes out as one; normalise line by line to keep them apart."""
    text = text.strip()
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_DEDUP_MAP, _ASCII_LM_DELETE).decode("ascii")
    return _lm_fold(text).replace("\n", "")


def normalize_lines_for_lm(text: str) -> list[str]:
    """`normalize_for_lm` of each line of `text` (split on "\\n"), blank results left out.

    ASCII text takes one call for all its lines: controls deleted before each line is stripped,
    which equals CCNet's strip-then-delete unless a control that is no white space sits at a
    line's edge (it shields the spaces inside it). Text holding one, and text past ASCII, has
    each line stripped first and then all lines folded at once."""
    if text.isascii():
        raw = text.encode("ascii")
        if len(raw.translate(None, _ASCII_EDGE_SENSITIVE)) == len(raw):
            folded = raw.translate(_ASCII_DEDUP_MAP, _ASCII_CONTROL_DELETE).decode("ascii")
            return [normal for line in folded.split("\n") if (normal := line.strip())]
    # Each line stripped first (CCNet's order), then all lines folded at once: no step of the
    # fold crosses a newline (NFD reorders marks only after a starter, and "\n" is one).
    stripped = "\n".join([line.strip() for line in text.split("\n")])
    folded = _LM_SPARSE(stripped)
    lines = _lm_fold(stripped) if folded is None else folded.decode("utf-8", "surrogatepass")
    return [normal for normal in lines.split("\n") if normal]
