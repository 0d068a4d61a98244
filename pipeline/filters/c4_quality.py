"""The C4 quality heuristics (Raffel et al. 2020, section 2.2) as one configurable stage.

Line rules remove lines from a page; page rules drop the whole page. Defaults are the C4
paper's and datatrove's C4QualityFilter's. Two deliberate differences from the TFDS/datatrove
code, both closer to the paper's wording:
- "lorem ipsum" and "{" drop the page wherever they appear, not only in lines that survived
  the line rules (on the public C4, whose text holds only kept lines, this changes nothing);
- sentences are counted with a regular expression (a terminal mark followed by a space or the
  end of the line) instead of a spaCy/NLTK sentence splitter, which is much faster and agrees
  on ordinary prose.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from pipeline.engine.document import Document
from pipeline.engine.stage import Result, Stage

CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]", re.IGNORECASE)
TERMINAL_PUNCTUATION = (".", "?", "!", '"', "'")
ELLIPSIS = "..."
# A sentence ends at a run of terminal marks (and closing quotes or brackets) followed by
# whitespace or the end of the line.
SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")
POLICY_PHRASES = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)


@dataclass
class C4Thresholds:
    min_words_per_line: int = 3  # 0 disables
    min_sentences: int = 5  # per page, counted on the kept lines; 0 disables
    max_word_length: int = 1000  # a line with a longer word is removed; 0 disables
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


def count_sentences(line: str) -> int:
    return len(SENTENCE_END.findall(line))


def clean_page(text: str, t: C4Thresholds) -> C4Verdict:
    """Apply the C4 rules to one page; pure, so tests and benchmarks call it directly."""
    lowered = text.lower()
    if t.drop_lorem_ipsum and "lorem ipsum" in lowered:
        return C4Verdict(None, "lorem_ipsum")
    if t.drop_curly_bracket and "{" in text:
        return C4Verdict(None, "curly_bracket")
    removed: Counter[str] = Counter()
    kept: list[str] = []
    sentences = 0
    max_word = t.max_word_length
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue  # blank lines carry no text; C4 keeps none of them either
        # Cheap guards first: a line shorter than the limit cannot hold a longer word.
        if max_word and len(line) > max_word and any(len(w) > max_word for w in line.split()):
            removed["too_long_word"] += 1
            continue
        if t.remove_citations and "[" in line:
            line = CITATION.sub("", line).strip()
        if t.require_terminal_punctuation and (not line.endswith(TERMINAL_PUNCTUATION) or line.endswith(ELLIPSIS)):
            removed["no_terminal_punctuation"] += 1
            continue
        if t.min_words_per_line and len(raw.split(None, t.min_words_per_line)) < t.min_words_per_line:
            removed["too_few_words"] += 1
            continue
        if t.drop_javascript_lines or t.drop_policy_lines:
            lowered_line = line.lower()
            if t.drop_javascript_lines and "javascript" in lowered_line:
                removed["javascript"] += 1
                continue
            if t.drop_policy_lines and any(p in lowered_line for p in POLICY_PHRASES):
                removed["policy"] += 1
                continue
        if sentences < t.min_sentences:  # counting stops once the page has enough
            sentences += max(1, count_sentences(line))
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
