"""The language-model normal form is CCNet's `text_normalizer.normalize(line)` with its defaults
(accent, case, numbers, punct=1). Each expected output below is written by hand from CCNet's
code read as a spec: strip; lower(); NFD and every character of category Mn removed; every \\d
to "0"; its UNICODE_PUNCT map (nothing else: other punctuation stays); then the characters
U+0000-001F and U+007F-009F removed (tab and newline included)."""

from __future__ import annotations

import pytest

from pipeline.filters.perplexity import lm_sentences
from pipeline.text.normalize import dedup_lines, normalize_for_lm

CASES = [
    # Hyphens and dashes: only – and — are in CCNet's map; ‐ (U+2010) and ‑ (U+2011) stay.
    ("well\u2010known", "well\u2010known"),
    ("non\u2011breaking", "non\u2011breaking"),
    ("1990–1995", "0000-0000"),
    ("yes—no", "yes - no"),
    ("—end", " - end"),  # mapped after the strip: the space it brings stays
    # Quotes: ’ and ´ map to ', the curly double quotes and guillemets to "; ‘ and ‚ stay.
    ("‘quoted’", "‘quoted'"),
    ("It’s", "it's"),
    ("„Guten Tag“", '"guten tag"'),
    ("«Bonjour»", '"bonjour"'),
    ("“Hi”", '"hi"'),
    ("l´été", "l'ete"),
    # Inverted marks, bullets and dots are not in the map: kept.
    ("¿Qué?", "¿que?"),
    ("¡Hola!", "¡hola!"),
    ("• item", "• item"),
    ("a · b", "a · b"),
    ("ア・イ", "ア・イ"),
    # CJK punctuation in the map.
    ("你好，世界。", "你好,世界."),
    ("「引用」", '"引用"'),
    ("a、b", "a,b"),
    ("a．b", "a. b"),
    ("等等…", "等等..."),
    ("５０％", "00%"),
    ("（注）", "(注)"),
    ("【注】〈注〉", "[注]<注>"),
    ("►━～", "--~"),
    ("比例∶比例：", "比例:比例:"),
    # Marks of category Mn go after NFD: accents, a virama, vowel signs, dakuten, harakat, niqqud.
    ("Café naïve", "cafe naive"),
    ("Tiếng Việt", "tieng viet"),
    ("İstanbul", "istanbul"),  # lower() gives i + U+0307, a mark
    ("Ærøskøbing", "ærøskøbing"),  # æ and ø do not decompose
    ("हिन्दी", "हिनदी"),  # ् (U+094D, Mn) goes; ि and ी are Mc and stay
    ("नमस्ते", "नमसत"),  # ् and े (U+0947) are Mn
    ("がガぱ", "かカは"),  # precomposed: NFD gives the base and U+3099 / U+309A, both Mn
    ("か\u3099", "か"),  # a combining dakuten alone
    ("か\u309b", "か\u309b"),  # the spacing dakuten (Sk, no canonical decomposition) stays
    ("مَرْحَبًا", "مرحبا"),
    ("שָׁלוֹם", "שלום"),
    ("한국", "\u1112\u1161\u11ab\u1100\u116e\u11a8"),  # CCNet returns the NFD: jamo
    ("ﬁ ＡＢＣ ℃", "ﬁ ａｂｃ ℃"),  # compatibility forms are not NFD's business
    # Digits: every decimal digit (\d), full-width and Arabic-Indic too, "１" before the map.
    ("Hello, World! (2023)", "hello, world! (0000)"),
    ("٣ and １", "0 and 0"),
    ("x² ½ Ⅻ", "x² ½ ⅻ"),  # No and Nl are not \d
    # Control characters go, tab and newline among them; other format characters stay.
    ("col1\tcol2", "col0col0"),
    ("first line.\nsecond line.", "first line.second line."),
    ("a\x85b\x7fc\x01d", "abcd"),
    ("a\u200bb\u00adc\u00a0d", "a\u200bb\u00adc\u00a0d"),
    ("  \u3000Hello\u3000 ", "hello"),
    (" \t\n ", ""),
]


# A long line of plain ASCII: beside it, a case's few characters past ASCII take the path of
# real pages (character by character, `_SparseForm`) instead of the code-point table.
PLAIN = "plain words of a page about the river " * 8


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_ccnet_normalize_cases(text: str, expected: str) -> None:
    assert normalize_for_lm(text) == expected
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) == 1:  # the case as one line of a page, beside a long plain one
        assert lm_sentences(f"{text}\n{PLAIN}") == ([expected] if expected else []) + [PLAIN.strip()]


@pytest.mark.parametrize(("text", "expected"), [
    # A capital sigma is lower-cased by what follows it: final ς at a word's end, σ inside.
    ("ΟΔΟΣ and ΣΟΦΙΑ", "\u03bf\u03b4\u03bf\u03c2 and \u03c3\u03bf\u03c6\u03b9\u03b1"),
    # Two combining marks of category Mc stay, and NFD puts them in canonical order (class 9
    # before 224) whatever order the page has them in.
    ("x\u302e\u1715 y", "x\u1715\u302e y"),
    # Eight characters that change, then nine (past the character-by-character path's bound).
    ("ÀÉÎÕÜÇÑ—", "aeioucn - "),
    ("ÀÉÎÕÜÇÑ—Ý", "aeioucn - y"),
])
def test_characters_whose_form_is_not_their_own_on_a_mostly_ascii_page(text: str, expected: str) -> None:
    assert lm_sentences(f"{PLAIN}{text}") == [PLAIN + expected]


def test_lines_are_normalised_one_by_one_or_glued_as_ccnets_mine_does() -> None:
    page = "Title Line\n\n  The River 12.\n\t\nÉté—fin"
    assert lm_sentences(page) == ["title line", "the river 00.", "ete - fin"]
    assert lm_sentences(page, "document") == ["title line  the river 00.ete - fin"]
    assert lm_sentences(" \n\t", "document") == [] and lm_sentences(" \n\t") == []


@pytest.mark.parametrize("text, expected", [
    # CCNet strips a line before deleting its controls: a control that is no white space at a
    # line's edge shields the spaces inside it, one that is white space (\t, \x1c) does not.
    (" \x01 Hello World 42\n\t\x1c \n  Second\tline.  ", [" hello world 00", "secondline."]),
    ("First line\r\n\x0bSecond line\x0c\n\n", ["first line", "second line"]),
    ("Caf\u00e9 \u201cquoted\u201d\n\x02 edge", ["cafe \"quoted\"", " edge"]),
])
def test_lines_normalised_together_equal_ccnets_line_by_line_rule(text: str, expected: list[str]) -> None:
    """The one-call ASCII path of `lm_sentences`: CCNet's rule read by hand (strip the line, then
    lower-case, digits to 0, delete the C0/C1 controls), blank results left out."""
    assert lm_sentences(text) == expected


def test_a_mostly_ascii_line_with_eight_changing_characters_has_ccnets_dedup_form() -> None:
    """The dedup form (CCNet's normalize_for_dedup, read as a spec: strip, lower(), \\d to 0, its
    unicode punctuation list and the controls removed) of a page's line that is nearly all ASCII:
    eight characters past ASCII change in one pass, two of them (É, Ç) into characters past ASCII
    themselves, and é stays."""
    line = f"{PLAIN}“Été” — «Ça» l’ÉCOLE 12"
    expected = PLAIN.lower() + "été  ça lécole 00"
    assert dedup_lines(f"{line}\n{PLAIN}") == [expected.encode(), PLAIN.strip().encode()]
    assert lm_sentences(line) == [PLAIN + '"ete"  -  "ca" l\'ecole 00']
