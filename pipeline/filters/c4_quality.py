"""The C4 quality rules as TFDS's `c4_utils.clean_page` applied them to make allenai/c4.

Re-filtering the public C4 must use the rules that built it, or it throws away what LLaMA
trained on. TFDS's constants (not datatrove's, which swap the first two): a line needs at
least 5 words, a page at least 3 sentences; a line must end in `.` `?` `!` or `"` (not `'`)
and not in an ellipsis; a line with a word over 1000 characters goes. Each line is checked
in TFDS's order, and the page rules look only at lines that passed the checks before them:

    too long word -> remove citations -> end mark -> words -> "lorem ipsum" (drop page)
    -> "javascript" (line) -> "{" (drop page) -> policy phrase (line) -> sentences

Two differences, both deliberate:
- A citation marker takes the spaces before it along ("rebuilt [1]." -> "rebuilt."): TFDS
  left "rebuilt ." behind. Markers sitting between two words leave one space.
- Sentences are counted by `count_sentences`, a rule-based stand-in for NLTK's punkt (which
  TFDS used and which needs a data download): a `.` `?` `!` followed by a space and a word,
  or by a closing mark, ends a sentence, except a period after a known abbreviation ("Dr.",
  "p.m.", "e.g."), an initial ("J. Smith"), an ellipsis, or a number followed by a lower-case
  word. Like punkt, each repeated `!`/`?` ("Really?!") counts.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from pipeline.common.config import Count
from pipeline.engine.document import Document
from pipeline.engine.stage import Result, Stage

# The spaces before a marker go with it, so no space is left before the mark that follows.
CITATION = re.compile(r"[ \t]*(?:\[\d*\]|\[edit\]|\[citation needed\])")
END_MARKS = (".", "?", "!", '"')
ELLIPSIS = "..."
POLICY_PHRASES = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)

# --- sentences ----------------------------------------------------------------------------

# A candidate sentence end: a mark followed by a punctuation character that punkt treats as
# a separate token, or by white space and the next word.
_CANDIDATE = re.compile(r"([.?!])(?:(?=[)\";}\]*:@'({\[!?])|\s+(?=(\S+)))")
# Common English abbreviations that a period does not end (lower-case, without the final
# period). Written for this project; words with inner periods ("u.s", "e.g") are recognised
# by shape instead of being listed.
ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof rev gen col capt lt sgt cpl sen rep gov pres hon st mt ft jr sr
    inc ltd co corp bros dept univ assn est approx vs etc al fig figs eq vol vols no nos pp
    ch sec ed eds trans jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed
    thu thur thurs fri sat sun ave blvd rd hwy apt ste dist div
    """.split()  # noqa: SIM905 (a word list reads better as words)
)
_INNER_PERIODS = re.compile(r"^(?:[a-z]\.)+[a-z]$")  # u.s, e.g, p.m, i.e
_NUMBER = re.compile(r"^-?[.,]?\d[\d,.\-]*$")
# Capitalised words that start a sentence even after an abbreviation ("at 5 p.m. The ...").
SENTENCE_STARTERS = frozenset(
    "the a an i it he she we they this that these those there in on at but and if when after".split()  # noqa: SIM905
)
_OPENING = "([{\"'“‘"


def _ends_sentence(line: str, mark_at: int, next_word: str | None) -> bool:
    """Whether the mark at `line[mark_at]` ends a sentence, given the word after it (None
    when a closing mark follows directly)."""
    if line[mark_at] in "?!":
        return True
    if (mark_at > 0 and line[mark_at - 1] == ".") or line.startswith(".", mark_at + 1):
        return next_word is not None and next_word[:1].isupper()  # an ellipsis
    start = line.rfind(" ", 0, mark_at) + 1
    word = line[start:mark_at].lstrip(_OPENING).lower()
    starter = next_word is not None and next_word[:1].isupper() and next_word.lower().strip(_OPENING) in SENTENCE_STARTERS
    if word in ABBREVIATIONS or _INNER_PERIODS.match(word):
        return starter
    if len(word) == 1 and word.isalpha():  # an initial: "J. Smith", but "the K.'s hand" ends one
        return next_word is None or starter
    if _NUMBER.match(word):
        return next_word is None or not next_word[:1].islower()
    return True


def count_sentences(line: str, enough: int = 0) -> int:
    """Sentences in one line of text (a line with text has at least one); counting stops at
    `enough` when it is given."""
    if not line.strip():
        return 0
    count = 1
    for match in _CANDIDATE.finditer(line):
        if count == enough:
            break
        if _ends_sentence(line, match.start(1), match.group(2)):
            count += 1
    return count


# --- the page rules -----------------------------------------------------------------------


@dataclass
class C4Thresholds:
    min_words_per_line: Count = 5  # 0 disables
    min_sentences: Count = 3  # per page, counted on the kept lines; 0 disables
    max_word_length: Count = 1000  # a line with a longer word is removed; 0 disables
    remove_citations: bool = True  # "[1]", "[edit]", "[citation needed]"
    require_terminal_punctuation: bool = True
    drop_lorem_ipsum: bool = True
    drop_curly_bracket: bool = True
    drop_javascript_lines: bool = True
    drop_policy_lines: bool = True


@dataclass
class C4Verdict:
    """The cleaned text, or the reason the page is dropped; and why each removed line went."""

    text: str | None
    reason: str | None = None
    lines_removed: Counter[str] = field(default_factory=Counter)


def clean_page(text: str, t: C4Thresholds) -> C4Verdict:
    """Apply the C4 rules to one page; pure, so tests and benchmarks call it directly."""
    removed: Counter[str] = Counter()
    kept: list[str] = []
    sentences = 0
    max_word = t.max_word_length
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue  # blank lines carry no text; TFDS drops them as lines without an end mark
        # Cheap guard first: a line shorter than the limit cannot hold a longer word.
        if max_word and len(line) > max_word and any(len(w) > max_word for w in line.split()):
            removed["too_long_word"] += 1
            continue
        if t.remove_citations and "[" in line:
            line = CITATION.sub("", line).strip()
        if t.require_terminal_punctuation and (not line.endswith(END_MARKS) or line.endswith(ELLIPSIS)):
            removed["no_terminal_punctuation"] += 1
            continue
        if t.min_words_per_line and len(line.split(None, t.min_words_per_line)) < t.min_words_per_line:
            removed["too_few_words"] += 1
            continue
        lowered = line.lower()
        if t.drop_lorem_ipsum and "lorem ipsum" in lowered:
            return C4Verdict(None, "lorem_ipsum", removed)
        if t.drop_javascript_lines and "javascript" in lowered:
            removed["javascript"] += 1
            continue
        if t.drop_curly_bracket and "{" in line:
            return C4Verdict(None, "curly_bracket", removed)
        if t.drop_policy_lines and any(p in lowered for p in POLICY_PHRASES):
            removed["policy"] += 1
            continue
        if sentences < t.min_sentences:  # counting stops once the page has enough
            sentences += count_sentences(line, t.min_sentences - sentences)
        kept.append(line)
    if not kept:
        return C4Verdict(None, "no_lines_left", removed)
    if sentences < t.min_sentences:
        return C4Verdict(None, f"fewer_than_{t.min_sentences}_sentences", removed)
    return C4Verdict("\n".join(kept), None, removed)


class C4Quality(Stage):
    """Keeps a page's good lines, or drops the page with the rule that failed.

    Page drops are counted by the runner per reason; line removals are summed per rule in
    `lines_removed` (per worker) and written to the document's `c4_lines_removed` column.
    """

    name = "c4_quality"

    def __init__(self, thresholds: C4Thresholds | None = None) -> None:
        self.thresholds = thresholds or C4Thresholds()
        self.lines_removed: Counter[str] = Counter()

    def fields(self) -> list[pa.Field]:
        return [pa.field("c4_lines_removed", pa.int32())]

    def process(self, doc: Document) -> Result:
        verdict = clean_page(doc.text, self.thresholds)
        self.lines_removed.update(verdict.lines_removed)
        if verdict.text is None:
            assert verdict.reason is not None
            return verdict.reason
        doc.text = verdict.text
        doc.meta["c4_lines_removed"] = sum(verdict.lines_removed.values())
        return doc
