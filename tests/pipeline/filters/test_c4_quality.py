"""The C4 quality rules, one test per heuristic: what each removes and what it keeps."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from pipeline.engine.document import Document
from pipeline.filters.c4_quality import C4Quality, C4Thresholds, clean_page, count_sentences

DEFAULT = C4Thresholds()
GOOD = [
    "The river flooded the northern valley in the spring of that year.",
    "A young engineer designed a new bridge after a long debate.",
    "The museum opened the ancient walls to visitors for the first time.",
    "Our team recorded the winter harvest with great care.",
    "The committee celebrated the annual festival in a quiet ceremony.",
]


def page(*extra: str) -> str:
    return "\n".join([*GOOD, *extra])


def test_keeps_a_clean_page_unchanged() -> None:
    verdict = clean_page(page(), DEFAULT)
    assert verdict.text == page() and verdict.reason is None and not verdict.lines_removed


def test_lines_without_terminal_punctuation_are_removed() -> None:
    verdict = clean_page(page("Share this page on social media", "It was long ago, they said...",
                              "The sign on the door said 'closed'"), DEFAULT)
    assert verdict.text == page()
    # TFDS's end marks are . ? ! and the double quote: a single quote is not one.
    assert verdict.lines_removed == {"no_terminal_punctuation": 3}
    quoted = clean_page(page('He said it was "really finished."', "Is this a line that ends with a question?"), DEFAULT)
    assert quoted.text == page('He said it was "really finished."', "Is this a line that ends with a question?")


def test_lines_with_fewer_than_five_words_are_removed() -> None:
    verdict = clean_page(page("Contact us today.", "Read more about it.", "Here are exactly five words."), DEFAULT)
    assert verdict.text == page("Here are exactly five words.")
    assert verdict.lines_removed == {"too_few_words": 2}
    # Words are counted after citation markers go: "[1]" is no word.
    assert clean_page(page("Four words here [1]."), DEFAULT).lines_removed == {"too_few_words": 1}


def test_pages_with_fewer_than_three_sentences_are_dropped() -> None:
    two = "\n".join(GOOD[:2])
    assert clean_page(two, DEFAULT).reason == "fewer_than_3_sentences"
    assert clean_page("\n".join(GOOD[:3]), DEFAULT).text == "\n".join(GOOD[:3])
    # Three sentences on one line are enough: sentences, not lines, are counted.
    one_line = " ".join(GOOD[:3])
    assert clean_page(one_line, DEFAULT).text == one_line
    # Sentences in removed lines do not count.
    assert clean_page(two + "\nMenu item one. Menu item two. Subscribe", DEFAULT).reason == "fewer_than_3_sentences"


def test_sentence_count_follows_punkt_rules() -> None:
    assert count_sentences("One is here. Two is here! Three is here? Four") == 4
    assert count_sentences('He said "stop." Then he left.') == 2
    # A period after an abbreviation, an initial or an inner-period word ends no sentence...
    assert count_sentences("Dr. Smith met Mr. Jones at 5 p.m. on Friday, e.g. for lunch.") == 1
    assert count_sentences("J. R. R. Tolkien wrote it in vol. 2 of the series.") == 1
    # ... unless a capitalised word that starts sentences follows it.
    assert count_sentences("We met at 5 p.m. The talk began late.") == 2
    # A number ends a sentence unless a lower-case word follows it.
    assert count_sentences("It opened in 2010. The doors closed in 2019.") == 2
    assert count_sentences("See section 3. below for details.") == 1
    # An ellipsis ends one only before a capital; repeated marks count each, as in punkt.
    assert count_sentences("Wait... what happened? Nothing... Really.") == 3
    assert count_sentences("True story!!") == 2
    assert count_sentences("") == 0 and count_sentences("No end mark") == 1


def test_lorem_ipsum_in_a_kept_line_drops_the_page() -> None:
    assert clean_page(page("Lorem Ipsum dolor sit amet, consectetur."), DEFAULT).reason == "lorem_ipsum"
    # As in TFDS, a line removed by an earlier rule does not count.
    assert clean_page(page("lorem ipsum"), DEFAULT).text == page()
    assert clean_page(page("Lorem is a name, ipsum is not."), DEFAULT).text is not None


def test_curly_bracket_in_a_kept_line_drops_the_page() -> None:
    assert clean_page(page("The rule body { color: red; } stayed here."), DEFAULT).reason == "curly_bracket"
    assert clean_page(page("Parentheses (like these) and [brackets] are fine."), DEFAULT).text is not None
    # A code line without an end mark, or a javascript line, is removed before the check.
    assert clean_page(page("function f() { return 1 }"), DEFAULT).text == page()
    assert clean_page(page("Enable javascript: var x = {a: 1} now."), DEFAULT).text == page()


def test_javascript_lines_are_removed() -> None:
    verdict = clean_page(page("Please enable JavaScript to view the comments."), DEFAULT)
    assert verdict.text == page() and verdict.lines_removed == {"javascript": 1}


def test_cookie_and_policy_lines_are_removed() -> None:
    notices = ["This site uses cookies to improve your visit.", "Read our Privacy Policy before you sign up.",
               "By using the site you accept the terms of use.", "We explain our use of cookies below."]
    verdict = clean_page(page(*notices), DEFAULT)
    assert verdict.text == page() and verdict.lines_removed == {"policy": 4}
    assert clean_page(page("The cookie jar was empty again."), DEFAULT).text == page("The cookie jar was empty again.")


def test_lines_with_a_word_over_1000_characters_are_removed() -> None:
    verdict = clean_page(page(f"A pasted token {'z' * 1001} appears here.", f"A token {'y' * 1000} is allowed."), DEFAULT)
    assert verdict.text == page(f"A token {'y' * 1000} is allowed.")
    assert verdict.lines_removed == {"too_long_word": 1}


def test_citation_markers_are_removed_with_the_space_before_them() -> None:
    verdict = clean_page(page("The tower was rebuilt twice.[1][23] It still stands.[edit]",
                              "Its height is disputed by some [citation needed].",
                              "The old tower [2] fell in the great storm."), DEFAULT)
    assert verdict.text == page("The tower was rebuilt twice. It still stands.", "Its height is disputed by some.",
                                "The old tower fell in the great storm.")
    # Without the rule, a line ending in a marker has no terminal punctuation and goes.
    off = clean_page(page("The tower still stands there.[edit]"), C4Thresholds(remove_citations=False))
    assert off.text == page() and off.lines_removed == {"no_terminal_punctuation": 1}


def test_thresholds_are_configurable() -> None:
    loose = C4Thresholds(min_sentences=2, min_words_per_line=1, require_terminal_punctuation=False,
                         drop_curly_bracket=False, drop_javascript_lines=False)
    text = "Menu\nOne sentence here. And a second one.\nfunction f() { return 1 } javascript"
    assert clean_page(text, loose).text == text


def test_stage_cleans_and_counts() -> None:
    stage = C4Quality()
    doc = Document("a", page("Menu", "This site uses cookies to work."), "c4", {})
    kept = stage.process(doc)
    assert isinstance(kept, Document) and kept.text == page() and kept.meta["c4_lines_removed"] == 2
    assert stage.process(Document("b", "Lorem ipsum dolor sit amet.", "c4", {})) == "lorem_ipsum"
    assert stage.lines_removed == {"no_terminal_punctuation": 1, "policy": 1}


# --- TFDS's rules, case by case (c4_utils.clean_page, written as our own cases) -----------


def test_tfds_rule_order_and_constants() -> None:
    # The constants that built allenai/c4: 5 words a line, 3 sentences a page, 1000-character words.
    assert (DEFAULT.min_words_per_line, DEFAULT.min_sentences, DEFAULT.max_word_length) == (5, 3, 1000)
    # A line is stripped, then checked: a trailing space does not hide its end mark.
    assert clean_page("  ".join(["", GOOD[0], ""]) + "\n" + "\n".join(GOOD[1:3]), DEFAULT).text == "\n".join(GOOD[:3])
    # A too long word is checked before citation markers go, and before the end mark.
    assert clean_page(page(f"{'w' * 1001}"), DEFAULT).lines_removed == {"too_long_word": 1}
    # A policy line that would also be a page drop ("{") is a page drop: "{" comes first.
    assert clean_page(page("Our privacy policy {is} short and sweet."), DEFAULT).reason == "curly_bracket"
    # A javascript line with lorem ipsum drops the page: lorem ipsum comes first.
    assert clean_page(page("Lorem ipsum javascript dolor sit amet."), DEFAULT).reason == "lorem_ipsum"
    # Blank lines are not kept; kept lines are joined by one newline.
    assert clean_page("\n\n".join(GOOD), DEFAULT).text == page()


# --- the real allenai/c4 --------------------------------------------------------------------

REAL_C4 = Path(__file__).resolve().parents[3] / "../shared/realdata/c4/allenai-c4/c4-validation-2k.json.gz"


def test_real_allenai_c4_is_kept_as_tfds_made_it() -> None:
    """allenai/c4 was made by these rules: re-filtering it keeps at least 99% of its pages,
    unchanged except where TFDS left the space of a removed citation marker at a line start."""
    if not REAL_C4.exists():
        pytest.skip(f"real data not present: {REAL_C4} (only in the project's shared folder)")
    with gzip.open(REAL_C4, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == 2000
    kept = changed = 0
    for row in rows:
        verdict = clean_page(row["text"], DEFAULT)
        if verdict.text is None:
            assert verdict.reason == "fewer_than_3_sentences"  # punkt counts "e.g." and "I.S.M." as ends
            continue
        kept += 1
        if verdict.text != row["text"]:
            changed += 1
            lines = row["text"].split("\n")
            assert verdict.text.split("\n") == [line.strip() for line in lines]
            assert any(line != line.lstrip() for line in lines)
    assert kept / len(rows) >= 0.99, kept
    assert (kept, changed) == (1997, 3)
