"""Wikipedia articles made of thousands of openers that never close (`<ref>`, `[http://`,
`<!--`, `{{`, `[[File:`, `{|`): mwparserfromhell read to the end of the article for each, so
one took minutes and a worker's document budget would have dropped it. Through the Wikipedia
source each article is kept with its prose exact, and the run balances. Timings:
bench/hostile_text.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from sources.samples.wikipedia import Page, write_dump
from sources.wikipedia import Wikipedia, WikipediaConfig
from tests.hostile.helpers import run

N = 5000
# title: (wikitext, plain text). What an unclosed opener leaves is the cleaner's rule for
# malformed markup: a stray `<ref>`, `{{`, `[[` goes and its words stay; `[` and `<!--` stay.
HOSTILE = {
    "Refs": ("The Alder is a river." + "<ref>source " * N + "\n\n== Course ==\nIt flows north.",
             "The Alder is a river." + "source " * (N - 1) + "source\n\nCourse\n\nIt flows north."),
    "Links": ("The Birch is a tree. " + "[http://example.org/a the site " * N + "\nIt grows tall.",
              "The Birch is a tree. " + "[ the site " * (N - 1) + "[ the site\nIt grows tall."),
    "Comments": ("The Cedar is a tree.\n\nIt lives long." + "<!--" * N,
                 "The Cedar is a tree.\n\nIt lives long." + "<!--" * N),
    "Templates": ("The Dogwood flowers." + "{{cite|a " * N + "\n\nIt is small.",
                  "The Dogwood flowers." + "cite|a " * (N - 1) + "cite|a\n\nIt is small."),
    "Files": ("The Elm is a tree." + "[[File:a.jpg|thumb|b " * N + "\n\nIt is tall.",
              "The Elm is a tree." + "File:a.jpg|thumb|b " * (N - 1) + "File:a.jpg|thumb|b\n\nIt is tall."),
    "Tables": ("The Fir is a tree.\n\n" + "{|\n" * N + "\nIt is green.", "The Fir is a tree.\n\nIt is green."),
}


@pytest.mark.slow
def test_articles_of_unclosed_openers_are_kept_whole(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    pages = [Page(title, text, page_id) for page_id, (title, (text, _)) in enumerate(HOSTILE.items(), start=1)]
    write_dump(raw / "enwiki-20220701-pages-articles.xml.bz2", "en", pages)
    stats, docs = run(Wikipedia(WikipediaConfig(min_chars=1)), raw, tmp_path / "out")
    assert stats["documents_kept"] == len(HOSTILE)
    assert {doc.id: doc.text for doc in docs} == {
        f"enwiki/{page_id}": plain for page_id, (_, plain) in enumerate(HOSTILE.values(), start=1)}
