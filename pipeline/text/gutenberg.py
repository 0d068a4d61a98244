"""Project Gutenberg boilerplate: the header before the "*** START OF ... ***" line, the
footer and licence from the "*** END OF ... ***" line on, the producer credits that open the
body, and the edition's transcriber's notes. A text with no marker (Books3) is returned unchanged.

Real files mark the header's end in several ways over the years, all recognised:
- "*** START OF THIS PROJECT GUTENBERG EBOOK ..." and "***START OF THE ..." (no space);
- the 1990s "Small Print" licence, closed by "*END*THE SMALL PRINT! ...*END*" or by
  "*END THE SMALL PRINT! ...*END*" (no asterisk after END, about 2000).
The footer opens with "*** END OF ...", "End of (the) Project Gutenberg('s) ...", or, where the
END line is missing, the licence's own "*** START: FULL LICENSE ***".

The edition's own notes go too, where a marker shows the text is a Gutenberg file, but only
where their extent is certain, so that no line of the book goes with them:
- a bracketed note, "[Transcriber's Note: ...]" or "[Note Project Gutenberg: ...]", standing on
  lines of its own anywhere in the body (its brackets bound it; one in running text stays);
- a note headed "Transcriber's Note(s)" that opens or closes the body. Gutenberg texts set
  their divisions apart with two or more blank lines, never inside one: a note at the head runs
  to the first such break, a note at the tail from its heading (opening a paragraph of the last
  division) to the end, and a heading standing alone takes the division that follows it. A
  heading elsewhere stays, and so does a note that is all the body holds.

Every pattern is anchored at a line start (or break) and reads a line a bounded number of times
(a bracketed note, the one match to span text lines, stops at the next line opening with "["),
so a search is linear in the text whatever it holds: a `^\\s*` pattern under re.MULTILINE restarts at every line of a
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
# Three asterisks or more ("**** START OF THIS PROJECT GUTENBERG"), and the books still under
# copyright ("*** START OF THE COPYRIGHTED PROJECT GUTENBERG EBOOK"), as c-w/gutenberg lists them.
START = re.compile(
    r"^[ \t]*(?:\*{3,}[ \t]*START OF (?:THE|THIS) (?:COPYRIGHTED )?PROJECT GUTENBERG"
    r"|\*END\*?[ \t]*THE SMALL PRINT!)[^\n]*\n?",
    re.IGNORECASE | re.MULTILINE,
)
END = re.compile(
    r"^[ \t]*(?:\*{3,}[ \t]*END OF (?:THE|THIS) (?:COPYRIGHTED )?PROJECT GUTENBERG"
    r"|END OF (?:THE |THIS )?(?:COPYRIGHTED )?PROJECT GUTENBERG"
    r"|(?:\*{1,3}[ \t]*)?START:? FULL LICEN[SC]E)",
    re.IGNORECASE | re.MULTILINE,
)
# The paragraph of producer credits that opens the body ("Produced by ...", "This etext was
# produced from the 1908 edition by ..."): it names transcribers, not the author's text.
CREDITS = re.compile(
    r"[ \t]*(?:Produced by|E-?text prepared by|This e-?(?:text|book) was (?:produced|prepared)\b|Transcribed from)",
    re.IGNORECASE,
)
# The label of a transcriber's note: "Transcriber's Note", "Transcribers' Notes", "Original
# Transcriber's Notes"; curly apostrophes too.
NOTE_LABEL = r"(?:Original[ \t]+)?Transcribers?['’]?s?[ \t]+Notes?"
# A bracketed note on lines of its own: "[" at a line start, "]" at a line end. Its lines never
# start with "[" nor hold a blank line, and brackets inside it pair up on one line ("[sic]"),
# so a search stops at the next note and reads each line at most twice.
BRACKETED_NOTE = re.compile(
    r"^[ \t]*\[[ \t]*(?:" + NOTE_LABEL + r"|Note[ \t]+(?:of[ \t]+)?Project[ \t]+Gutenberg"
    r"|Project[ \t]+Gutenberg(?:['’]s)?[ \t]+Note)\b"
    r"(?:[^\[\]\n]|\n(?![ \t]*[\n\[])|\[[^\[\]\n]*\])*\][ \t]*(?:\n|\Z)",
    re.IGNORECASE | re.MULTILINE,
)
# A heading line: the label alone, or followed by ":" or "." and the note's first words.
NOTE_HEADING = re.compile(r"^[ \t]*" + NOTE_LABEL + r"[ \t]*(?:[:.][^\n]*)?$", re.IGNORECASE | re.MULTILINE)
# Two or more blank lines: the break between a text's divisions.
DIVISION_BREAK = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
BLANK_LINES = re.compile(r"(?:[ \t]*\n)*")
FIRST_TEXT = re.compile(r"[ \t\n]*")
PARAGRAPH_END = re.compile(r"\n[ \t]*\n")
TITLE = re.compile(r"^Title:[ \t]*([^\n]+)", re.MULTILINE)


def normalize_newlines(text: str) -> str:
    """CRLF and lone CR line breaks as "\\n" (most real Gutenberg files use CRLF)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def strip_boilerplate(text: str) -> str:
    """The book's body without the Gutenberg header, footer, licence, producer credits and
    transcriber's notes."""
    text = normalize_newlines(text)
    start = _last_start(text)
    body_start = start.end() if start else 0
    end = END.search(text, body_start)
    body = text[body_start : end.start() if end else len(text)]
    if start or end:
        body = _without_bracketed_notes(body)
    if start:
        body = _without_credits(body)
    if start or end:
        body = _without_tail_note(_without_head_note(body))
    return body.strip()


# Lines from the top within which a START marker ends the header: a later one ends it again
# (a licence block between two START lines is header too), as the reference cleaner
# (c-w/gutenberg's strip_headers) starts the text over at every marker in its first 600 lines.
HEADER_LINES = 600


def _last_start(text: str) -> re.Match[str] | None:
    """The last START marker within the first HEADER_LINES lines; else the first one anywhere (a
    header longer than that); None when the text has none."""
    limit, found = 0, None
    for _ in range(HEADER_LINES):
        limit = text.find("\n", limit) + 1
        if limit == 0:
            limit = len(text)
            break
    for match in START.finditer(text, 0, limit):
        found = match
    return found or START.search(text)


def _without_credits(body: str) -> str:
    """`body` without a credits paragraph at its head (blank lines before it skipped)."""
    first = FIRST_TEXT.match(body).end()
    if not CREDITS.match(body, first):
        return body
    after = PARAGRAPH_END.search(body, first)
    return body[after.end() :] if after else ""


def _without_bracketed_notes(body: str) -> str:
    """`body` without its bracketed notes. A note that was a paragraph of its own takes the
    blank lines after it, so that the paragraphs around it stay one blank line apart."""
    pieces, kept_from = [], 0
    for note in BRACKETED_NOTE.finditer(body):
        pieces.append(body[kept_from : note.start()])
        kept_from = note.end()
        if _opens_paragraph(body, note.start()):
            kept_from = BLANK_LINES.match(body, kept_from).end()
    pieces.append(body[kept_from:])
    return "".join(pieces)


def _without_head_note(body: str) -> str:
    """`body` without a headed note that opens it; kept when it is all the body holds."""
    start = BLANK_LINES.match(body).end()
    if not NOTE_HEADING.match(body, start):
        return body
    end, rest = _division_end(body, start)
    if _lone_heading(body, start, end):
        end, rest = _division_end(body, rest)
    return body[rest:] if body[rest:].strip() else body


def _without_tail_note(body: str) -> str:
    """`body` cut at a headed note that opens a paragraph of its last division (or that stands
    alone in the division before it); kept when the note is all the body holds."""
    body = body.rstrip()
    before_last, last = 0, 0  # where the last two divisions start
    for brk in DIVISION_BREAK.finditer(body):
        before_last, last = last, brk.end()
    search_from = last
    if last and _lone_heading(body, before_last, _division_end(body, before_last)[0]):
        search_from = before_last
    for heading in NOTE_HEADING.finditer(body, search_from):
        if heading.start() == search_from or _opens_paragraph(body, heading.start()):
            return body[: heading.start()] if body[: heading.start()].strip() else body
    return body


def _division_end(body: str, start: int) -> tuple[int, int]:
    """(end, start of the next division) for the division that starts at `start`."""
    brk = DIVISION_BREAK.search(body, start)
    return (brk.start(), brk.end()) if brk else (len(body), len(body))


def _lone_heading(body: str, start: int, end: int) -> bool:
    """Whether body[start:end] is a note's heading line and nothing else."""
    heading = NOTE_HEADING.match(body, start, end)
    return heading is not None and not body[heading.end() : end].strip()


def _opens_paragraph(body: str, line_start: int) -> bool:
    """Whether the line at `line_start` is the body's first or follows a blank line."""
    if line_start == 0:
        return True
    previous_line = body[body.rfind("\n", 0, line_start - 1) + 1 : line_start - 1]
    return not previous_line.strip()


def header_title(text: str) -> str:
    """The "Title:" line of the header, or ""; only looked for before the start marker (or in
    the first 5000 characters when there is none)."""
    head = normalize_newlines(text[:200_000])
    start = START.search(head)
    match = TITLE.search(head, 0, start.start() if start else min(len(head), 5000))
    return match.group(1).strip() if match else ""
