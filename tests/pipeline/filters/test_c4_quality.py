"""The C4 quality rules, one test per heuristic: what each removes and what it keeps."""

from __future__ import annotations

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
    verdict = clean_page(page("Share this page on social media", "It was long ago..."), DEFAULT)
    assert verdict.text == page()
    assert verdict.lines_removed == {"no_terminal_punctuation": 2}
    quoted = clean_page(page('He said it was "finished."', "A line that ends with a question?"), DEFAULT)
    assert quoted.text == page('He said it was "finished."', "A line that ends with a question?")


def test_lines_with_fewer_than_three_words_are_removed() -> None:
    verdict = clean_page(page("Contact us.", "Read more.", "Three words here."), DEFAULT)
    assert verdict.text == page("Three words here.")
    assert verdict.lines_removed == {"too_few_words": 2}


def test_pages_with_fewer_than_five_sentences_are_dropped() -> None:
    four = "\n".join(GOOD[:4])
    assert clean_page(four, DEFAULT).reason == "fewer_than_5_sentences"
    # Five sentences on two lines are enough: sentences, not lines, are counted.
    two_lines = " ".join(GOOD[:3]) + "\n" + " ".join(GOOD[3:])
    assert clean_page(two_lines, DEFAULT).text == two_lines
    # Sentences in removed lines do not count.
    assert clean_page(four + "\nMenu item one. Menu item two. Subscribe", DEFAULT).reason == "fewer_than_5_sentences"
    assert count_sentences('One. Two! Three? "Four." Five') == 4


def test_lorem_ipsum_drops_the_page() -> None:
    assert clean_page(page("Lorem Ipsum dolor sit amet."), DEFAULT).reason == "lorem_ipsum"
    assert clean_page(page("lorem ipsum"), DEFAULT).reason == "lorem_ipsum"  # even in a line removed anyway
    assert clean_page(page("Lorem is a name, ipsum is not."), DEFAULT).text is not None


def test_curly_bracket_drops_the_page() -> None:
    assert clean_page(page("The rule body { color: red; } stayed."), DEFAULT).reason == "curly_bracket"
    assert clean_page(page("Parentheses (like these) and [brackets] are fine."), DEFAULT).text is not None


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


def test_citation_markers_are_removed() -> None:
    verdict = clean_page(page("The tower was rebuilt twice.[1][23] It still stands.[edit]",
                              "Its height is disputed.[citation needed]"), DEFAULT)
    assert verdict.text == page("The tower was rebuilt twice. It still stands.", "Its height is disputed.")
    # Without the rule, a line ending in a marker has no terminal punctuation and goes.
    off = clean_page(page("It still stands.[edit]"), C4Thresholds(remove_citations=False))
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
    assert stage.process(Document("b", "Lorem ipsum.", "c4", {})) == "lorem_ipsum"
    assert stage.lines_removed == {"no_terminal_punctuation": 1, "policy": 1}
