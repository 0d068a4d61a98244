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
- for the language model (`normalize_for_lm`): lower-cased, accents stripped, digits to 0,
  unicode punctuation mapped to its ASCII look-alike, control characters removed (CCNet's
  `normalize(accent=True, case=True, numbers=True, punct=1)`).

All have an ASCII fast path through `bytes.translate`, which does in one C call what a
per-character table does in Python; most of a CommonCrawl English shard is ASCII.
"""

from __future__ import annotations

import re
import sys
import unicodedata

# CCNet's map of unicode punctuation to ASCII (text_normalizer.UNICODE_PUNCT): the LM form
# maps these, the dedup form removes them.
_UNICODE_PUNCT = {
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"', "１": '"',
    "」": '"', "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":", "？": "?", "！": "!",
    "（": "(", "）": ")", "；": ";", "–": "-", "—": " - ", "．": ". ", "～": "~", "’": "'", "…": "...",
    "━": "-", "〈": "<", "〉": ">", "【": "[", "】": "]", "％": "%", "►": "-",
}

# --- dedup ------------------------------------------------------------------------------

def _characters_by_category() -> tuple[list[str], list[str]]:
    punct_or_control, digits = [], []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        category = unicodedata.category(char)
        if category[0] == "P" or (category == "Cc" and char != "\n"):
            punct_or_control.append(char)
        elif category == "Nd":
            digits.append(char)
    return punct_or_control, digits


_PUNCT_OR_CONTROL, _DIGITS = _characters_by_category()
_CONTROL = [chr(c) for c in (*range(32), *range(127, 160)) if chr(c) != "\n"]

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
_ASCII_CONTROL_DELETE = bytes(b for b in (*range(32), 127) if b != 10)
_ASCII_STRICT_DELETE = bytes(b for b in range(128) if chr(b) in set(_PUNCT_OR_CONTROL))
# Deleting before stripping equals CCNet's strip-then-delete unless a control character that
# is not white space sits at a line's edge; text holding one takes the exact path.
_ASCII_EDGE_SENSITIVE = bytes((*range(9), *range(14, 28), 127))


def dedup_lines(text: str, strict: bool = False) -> list[bytes]:
    """The dedup normal form of each line of `text` (split on "\\n" only), UTF-8 encoded.

    The result is aligned with `text.split("\\n")`: element i is the key material of line i;
    an empty result means the line has no content (blank; in the strict form also a line of
    punctuation only).
    """
    if text.isascii():
        raw = text.encode("ascii")
        if strict or len(raw.translate(None, _ASCII_EDGE_SENSITIVE)) == len(raw):
            folded = raw.translate(_ASCII_DEDUP_MAP, _ASCII_STRICT_DELETE if strict else _ASCII_CONTROL_DELETE)
            return [line.strip() for line in folded.split(b"\n")]
    lowered = _DIGIT.sub("0", text.lower())
    if strict:
        return [line.strip().encode("utf-8", "surrogatepass") for line in _STRICT_REMOVED.sub("", lowered).split("\n")]
    # CCNet strips each line before it removes characters.
    return [_CCNET_REMOVED.sub("", line.strip()).encode("utf-8", "surrogatepass") for line in lowered.split("\n")]


def normalize_for_dedup(line: str, strict: bool = False) -> str:
    """One line in the dedup normal form (the readable version of `dedup_lines`)."""
    if strict:
        return _STRICT_REMOVED.sub("", _DIGIT.sub("0", line.lower())).strip()
    return _CCNET_REMOVED.sub("", _DIGIT.sub("0", line.strip().lower()))


# --- language model ---------------------------------------------------------------------

_LM_TABLE: dict[int, str | None] = {ord(c): None for c in _PUNCT_OR_CONTROL if c not in "\t"}
for _c in _PUNCT_OR_CONTROL:
    if _c.isascii():  # ASCII punctuation stays: only control characters and unicode punct change
        _LM_TABLE.pop(ord(_c), None)
_LM_TABLE.update({ord(k): v for k, v in _UNICODE_PUNCT.items()})
_LM_TABLE.update({ord(d): "0" for d in _DIGITS})
_LM_TABLE.update({c: None for c in range(32) if chr(c) not in "\n\t"})
_LM_TABLE[127] = None

_ASCII_LM_DELETE = bytes(b for b in range(32) if chr(b) not in "\n\t") + b"\x7f"
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def strip_accents(text: str) -> str:
    """"Café" -> "Cafe": decompose and drop combining marks (CCNet's `strip_accents`)."""
    decomposed = unicodedata.normalize("NFD", text)
    return _COMBINING.sub("", decomposed)


def normalize_for_lm(text: str) -> str:
    """CCNet's normalisation before SentencePiece and KenLM; newlines are kept (lines are scored one by one)."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_DEDUP_MAP, _ASCII_LM_DELETE).decode("ascii")
    return strip_accents(text.lower()).translate(_LM_TABLE)
