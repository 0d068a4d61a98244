"""CCNet's text normalisations, shared by line dedup and the perplexity model.

Two normal forms:
- for dedup (`dedup_lines`): each line stripped, lower-cased, every digit turned into 0,
  unicode punctuation (categories P*) and control characters (Cc) removed, so that
  "Copyright 2019 Example." and "copyright 2020 example" hash alike. CCNet removes only a
  list of non-ASCII punctuation; removing ASCII punctuation too makes lines that differ by a
  trailing period or a "|" separator count as the same line, which is what dedup is for.
- for the language model (`normalize_for_lm`): lower-cased, accents stripped, digits to 0,
  unicode punctuation mapped to its ASCII look-alike, control characters removed (CCNet's
  `normalize(accent=True, case=True, numbers=True, punct=1)`).

Both have an ASCII fast path through `bytes.translate`, which does in one C call what a
per-character table does in Python; most of a CommonCrawl English shard is ASCII.
"""

from __future__ import annotations

import re
import sys
import unicodedata

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

# str.translate table for the non-ASCII path: drop punctuation and control, digits to "0".
_DEDUP_TABLE: dict[int, str | None] = {ord(c): None for c in _PUNCT_OR_CONTROL}
_DEDUP_TABLE.update({ord(d): "0" for d in _DIGITS})

# bytes.translate for the ASCII path: lower-case and digits in the table, the rest deleted.
_ASCII_MAP = bytearray(range(256))
for _b in range(ord("A"), ord("Z") + 1):
    _ASCII_MAP[_b] = _b + 32
for _b in range(ord("0"), ord("9") + 1):
    _ASCII_MAP[_b] = ord("0")
_ASCII_DEDUP_MAP = bytes(_ASCII_MAP)
_ASCII_DEDUP_DELETE = bytes(b for b in range(128) if chr(b) in set(_PUNCT_OR_CONTROL))


def dedup_lines(text: str) -> list[bytes]:
    """The dedup normal form of each line of `text` (split on "\\n" only), UTF-8 encoded.

    The result is aligned with `text.split("\\n")`: element i is the key material of line i;
    an empty result means the line has no content (blank, or only punctuation).
    """
    if text.isascii():
        raw = text.encode("ascii").translate(_ASCII_DEDUP_MAP, _ASCII_DEDUP_DELETE)
        return [line.strip() for line in raw.split(b"\n")]
    folded = text.lower().translate(_DEDUP_TABLE)
    return [line.strip().encode("utf-8", "surrogatepass") for line in folded.split("\n")]


def normalize_for_dedup(line: str) -> str:
    """One line in the dedup normal form (the readable version of `dedup_lines`)."""
    return line.lower().translate(_DEDUP_TABLE).strip()


# --- language model ---------------------------------------------------------------------

# CCNet's map of unicode punctuation to ASCII (text_normalizer.UNICODE_PUNCT).
_UNICODE_PUNCT = {
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"', "１": '"',
    "」": '"', "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":", "？": "?", "！": "!",
    "（": "(", "）": ")", "；": ";", "–": "-", "—": " - ", "．": ". ", "～": "~", "’": "'", "…": "...",
    "━": "-", "〈": "<", "〉": ">", "【": "[", "】": "]", "％": "%", "►": "-",
}
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
