"""Project Gutenberg boilerplate: the header before the "*** START OF ... ***" line, the
footer and licence from the "*** END OF ... ***" line on, and the producer credits that open
the body. A text with no marker (Books3) is returned unchanged.

Real files mark the header's end in several ways over the years, all recognised:
- "*** START OF THIS PROJECT GUTENBERG EBOOK ..." and "***START OF THE ..." (no space);
- the 1990s "Small Print" licence, closed by "*END*THE SMALL PRINT! ...*END*" or by
  "*END THE SMALL PRINT! ...*END*" (no asterisk after END, about 2000).
The footer opens with "*** END OF ...", "End of (the) Project Gutenberg('s) ...", or, where the
END line is missing, the licence's own "*** START: FULL LICENSE ***".

Every pattern is anchored at a line start and never crosses a line break, so a search is linear
in the text whatever it holds: a `^\\s*` pattern under re.MULTILINE restarts at every line of a
blank-line run and reads the rest of the run each time (20k blank lines took 7.8 s). Line
breaks are normalised to "\\n" first (`normalize_newlines`, also done when a book is read): a
CRLF "blank" line is "\\r", which is not blank to a line-based rule.
"""

from __future__ import annotations

import re

# Each pattern is anchored at a line start and its leading `[ \t]*` cannot cross a line break,
# so a search over the whole text (in C) tries each line once. No two runs of `[ \t]*` may meet
# (as in `[ \t]*\*{0,3}[ \t]*`): the split between them is tried every way, and a line of 40k
# spaces took 20 s.
START = re.compile(
    r"^[ \t]*(?:\*{3}[ \t]*START OF (?:THE|THIS) PROJECT GUTENBERG"
    r"|\*END\*?[ \t]*THE SMALL PRINT!)[^\n]*\n?",
    re.IGNORECASE | re.MULTILINE,
)
END = re.compile(
    r"^[ \t]*(?:\*{3}[ \t]*END OF (?:THE|THIS) PROJECT GUTENBERG"
    r"|END OF (?:THE |THIS )?PROJECT GUTENBERG"
    r"|(?:\*{1,3}[ \t]*)?START:? FULL LICEN[SC]E)",
    re.IGNORECASE | re.MULTILINE,
)
# The paragraph of producer credits that opens the body ("Produced by ...", "This etext was
# produced from the 1908 edition by ..."): it names transcribers, not the author's text.
CREDITS = re.compile(
    r"[ \t]*(?:Produced by|E-?text prepared by|This e-?(?:text|book) was (?:produced|prepared)\b|Transcribed from)",
    re.IGNORECASE,
)
FIRST_TEXT = re.compile(r"[ \t\n]*")
PARAGRAPH_END = re.compile(r"\n[ \t]*\n")
TITLE = re.compile(r"^Title:[ \t]*([^\n]+)", re.MULTILINE)


def normalize_newlines(text: str) -> str:
    """CRLF and lone CR line breaks as "\\n" (most real Gutenberg files use CRLF)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def strip_boilerplate(text: str) -> str:
    """The book's body without the Gutenberg header, footer, licence and producer credits."""
    text = normalize_newlines(text)
    start = START.search(text)
    body_start = start.end() if start else 0
    end = END.search(text, body_start)
    body = text[body_start : end.start() if end else len(text)]
    if start:
        body = _without_credits(body)
    return body.strip()


def _without_credits(body: str) -> str:
    """`body` without a credits paragraph at its head (blank lines before it skipped)."""
    first = FIRST_TEXT.match(body).end()
    if not CREDITS.match(body, first):
        return body
    after = PARAGRAPH_END.search(body, first)
    return body[after.end() :] if after else ""


def header_title(text: str) -> str:
    """The "Title:" line of the header, or ""; only looked for before the start marker (or in
    the first 5000 characters when there is none)."""
    head = normalize_newlines(text[:200_000])
    start = START.search(head)
    match = TITLE.search(head, 0, start.start() if start else min(len(head), 5000))
    return match.group(1).strip() if match else ""
