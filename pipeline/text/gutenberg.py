"""Project Gutenberg boilerplate: the header before the "*** START OF ... ***" line, the
footer and licence from the "*** END OF ... ***" line on, and the producer credits that open
the body. A text with no marker (Books3) is returned unchanged.

Real files mark the header's end in several ways over the years, all recognised:
- "*** START OF THIS PROJECT GUTENBERG EBOOK ..." and "***START OF THE ..." (no space);
- the 1990s "Small Print" licence, closed by "*END*THE SMALL PRINT! ...*END*" or by
  "*END THE SMALL PRINT! ...*END*" (no asterisk after END, about 2000).
The footer opens with "*** END OF ...", "End of (the) Project Gutenberg('s) ...", or, where the
END line is missing, the licence's own "*** START: FULL LICENSE ***".

Matching is line by line with anchored patterns that never cross a line break, so the scan is
linear in the text whatever it holds: a `^\\s*` pattern under re.MULTILINE restarts at every
line of a blank-line run and reads the rest of the run each time (20k blank lines took 7.8 s).
Line breaks are expected normalised to "\\n" (`normalize_newlines`, done when a book is read):
a CRLF "blank" line is "\\r", which is not blank to a line-based rule.
"""

from __future__ import annotations

import re

START = re.compile(
    r"[ \t]*(?:\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG"
    r"|\*END\*?\s*THE SMALL PRINT!)",
    re.IGNORECASE,
)
END = re.compile(
    r"[ \t]*(?:\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG"
    r"|END OF (?:THE |THIS )?PROJECT GUTENBERG"
    r"|\*{0,3}\s*START:? FULL LICEN[SC]E)",
    re.IGNORECASE,
)
# The paragraph of producer credits that opens the body ("Produced by ...", "This etext was
# produced from the 1908 edition by ..."): it names transcribers, not the author's text.
CREDITS = re.compile(
    r"[ \t]*(?:Produced by|E-?text prepared by|This e-?(?:text|book) was (?:produced|prepared)\b|Transcribed from)",
    re.IGNORECASE,
)
TITLE = re.compile(r"Title:[ \t]*(.+)")


def normalize_newlines(text: str) -> str:
    """CRLF and lone CR line breaks as "\\n" (most real Gutenberg files use CRLF)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _marker_line(lines: list[str], pattern: re.Pattern[str], start: int = 0) -> int | None:
    for number in range(start, len(lines)):
        if pattern.match(lines[number]):
            return number
    return None


def strip_boilerplate(text: str) -> str:
    """The book's body without the Gutenberg header, footer, licence and producer credits."""
    lines = normalize_newlines(text).split("\n")
    start = _marker_line(lines, START)
    body_start = 0 if start is None else start + 1
    end = _marker_line(lines, END, body_start)
    body = lines[body_start : len(lines) if end is None else end]
    if start is not None:
        body = _without_credits(body)
    return "\n".join(body).strip()


def _without_credits(lines: list[str]) -> list[str]:
    """`lines` without a credits paragraph at its head (blank lines before it skipped)."""
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or not CREDITS.match(lines[first]):
        return lines
    after = next((i for i in range(first, len(lines)) if not lines[i].strip()), len(lines))
    return lines[after:]


def header_title(text: str) -> str:
    """The "Title:" line of the header, or ""; only looked for before the start marker (or in
    the first 5000 characters when there is none)."""
    head = normalize_newlines(text[:200_000])
    lines = head.split("\n")
    start = _marker_line(lines, START)
    if start is None:
        lines = head[:5000].split("\n")
    for line in lines[:start]:
        match = TITLE.match(line)
        if match:
            return match.group(1).strip()
    return ""
