"""Project Gutenberg boilerplate: the header before the "*** START OF ... ***" line, the
footer and licence from the "*** END OF ... ***" line on, and the producer credits that open
the body. Older files use "*END*THE SMALL PRINT!" to close the header and "End of (the)
Project Gutenberg('s) ..." to open the footer; both forms are recognised. A text with no
marker (Books3) is returned unchanged.
"""

from __future__ import annotations

import re

START = re.compile(
    r"^\s*\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG.*$"
    r"|^\s*\*END\*\s*THE SMALL PRINT!.*$"
    r"|^\s*\*{3}\s*START OF THE PROJECT GUTENBERG.*$",
    re.IGNORECASE | re.MULTILINE,
)
END = re.compile(
    r"^\s*\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG.*$"
    r"|^\s*End of (?:the )?Project Gutenberg(?:'s)?\b.*$"
    r"|^\s*END OF (?:THE|THIS) PROJECT GUTENBERG.*$",
    re.IGNORECASE | re.MULTILINE,
)
CREDITS = re.compile(
    r"\A\s*(?:Produced by|E-text prepared by|This e-?text was produced by|Transcribed from)[^\n]*(?:\n[^\n]+)*\n*",
    re.IGNORECASE,
)
TITLE = re.compile(r"^Title:\s*(.+)$", re.MULTILINE)


def strip_boilerplate(text: str) -> str:
    """The book's body without the Gutenberg header, footer, licence and producer credits."""
    start = START.search(text)
    body_start = start.end() if start else 0
    end = END.search(text, body_start)
    body = text[body_start : end.start() if end else len(text)]
    if start:
        body = CREDITS.sub("", body, count=1)
    return body.strip()


def header_title(text: str) -> str:
    """The "Title:" line of the header, or ""; only looked for before the start marker."""
    start = START.search(text)
    match = TITLE.search(text, 0, start.start() if start else min(len(text), 5000))
    return match.group(1).strip() if match else ""
