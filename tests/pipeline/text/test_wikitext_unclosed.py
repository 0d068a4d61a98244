"""Openers that can never close: the exact text the tokenizer gets (a break after the bracket of
each, `_` below), that it then builds nothing from them, and that the cleaner's output is the
one the tokenizer gives without the pass."""

from __future__ import annotations

import mwparserfromhell
import pytest
from mwparserfromhell.nodes import ExternalLink, Text

import pipeline.text.wikitext as cleaner
from pipeline.text.wikitext import clean_wikitext
from pipeline.text.wikitext_unclosed import BREAK, URL_LT, neutralise_unclosed, restore_unclosed


def shown(text: str) -> str:
    return text.replace(BREAK, "_").replace(URL_LT, "~")


@pytest.mark.parametrize(
    "wikitext, passed",
    [
        # tags: no closer left once each later tag of the name took the nearest one after it
        ("<ref><ref><ref> text", "<_ref><_ref><_ref> text"),
        ("<ref>a<ref>b<ref>c</ref> d", "<_ref>a<_ref>b<ref>c</ref> d"),
        ('<ref name="a">x <REF name=\'b\' group=c>y ', '<_ref name="a">x <_REF name=\'b\' group=c>y '),
        ("<ref name=a", "<_ref name=a"),  # an opening tag with no `>` after it never ends
        ('<ref name="a" <ref name="a" > text', '<_ref name="a" <_ref name="a" > text'),
        ("<div>a <span>b <b>c", "<_div>a <_span>b <_b>c"),
        # ... left alone: closed, closing themselves, implicitly closed, or hidden from the tokenizer
        ('<ref name="a" /><ref name=b/><br><li>item <hr>', '<ref name="a" /><ref name=b/><br><li>item <hr>'),
        ("<ref>a<!-- <ref> -->b</ref>", "<ref>a<!-- <ref> -->b</ref>"),
        ("<ref>a<nowiki><ref></nowiki>b</ref>", "<ref>a<nowiki><ref></nowiki>b</ref>"),
        # the inner <ref> fails on </small> (a closer of a tag opened before it): the outer keeps </ref>
        ("<ref><small><ref>x</small></ref>", "<ref><small><ref>x</small></ref>"),
        ("<ref name={{x}}>a", "<ref name={{x}}>a"),  # unsure what the template makes of the tag
        # comments; one inside a URL is the URL's text to the tokenizer, and stays so
        ("a<!-- b <!-- c", "a<_!-- b <_!-- c"),
        ("a<!-- b --> c", "a<!-- b --> c"),
        ("see http://x.org/a<!--b c", "see http://x.org/a~!--b c"),
        # templates and arguments: each later run takes two closing braces
        ("A {{cite|x {{cite|y", "A {_{_cite|x {_{_cite|y"),
        ("{{a|{{b|c}}", "{_{_a|{{b|c}}"),
        ("{{{1|x", "{_{_{_1|x"),
        ("{{a|{{}}", "{{a|{{}}"),  # a blank name fails: it takes nothing, the outer one closes
        # wikilinks
        ("[[a|b [[c|d]] e", "[_[_a|b [[c|d]] e"),
        ("[[File:x.jpg|thumb|a [[b]] c", "[_[_File:x.jpg|thumb|a [[b]] c"),
        ("[[a|x [[b\nc]]", "[[a|x [[b\nc]]"),  # a title with a line break fails: the outer one closes
        ("[[http://x.org y]", "[[http://x.org y]"),  # an external link after a `[`
        # tables (at a line start)
        ("Intro.\n{|\n| a\n{|\n| b\n|}\n", "Intro.\n{_|\n| a\n{|\n| b\n|}\n"),
        # indented ones count, on the first line too; one after text on its line is no table
        (" \t{|\n| a\n  {|\n| b\n\t|}", " \t{_|\n| a\n  {|\n| b\n\t|}"),
        ("{|\na {|\n|}", "{|\na {|\n|}"),
        ("|}\n{|\n", "|}\n{_|\n"),  # a closer before the opener closes nothing of it
        # a tag's attributes read up to its first `>`: a quote or a link there is looked at there
        ('<ref name="a>b">x <ref name=[[c]]>y', '<ref name="a>b">x <ref name=[[c]]>y'),
        ("<ref name='a'>x <ref>y", "<_ref name='a'>x <_ref>y"),
        # external links: no `]` before the line ends, nothing to carry them over it
        ("[http://x.org a [http://y.org b\n[//z.org c]", "[_http://x.org a [_http://y.org b\n[//z.org c]"),
        ("[http://x.org {{a}} b\n]", "[http://x.org {{a}} b\n]"),
        ("[mailto:a@b.org x", "[_mailto:a@b.org x"),
        ("[MAILTO:a@b.org x [Http://x.org a", "[_MAILTO:a@b.org x [_Http://x.org a"),  # schemes in any case
        ("see HTTP://x.org/a<!--b c", "see HTTP://x.org/a~!--b c"),
        ("[[Ftp://x.org y]", "[[Ftp://x.org y]"),
        ("[xyz:a b", "[xyz:a b"),  # not a URL scheme: the tokenizer gives up at once anyway
    ],
)
def test_openers_that_cannot_close_are_broken(wikitext: str, passed: str) -> None:
    assert shown(neutralise_unclosed(wikitext)) == passed
    assert restore_unclosed(neutralise_unclosed(wikitext)) == wikitext


HOSTILE = {
    "unclosed <ref>": ("<ref>", "<_ref>"),
    "unclosed named <ref>": ('<ref name="n">x ', '<_ref name="n">x '),
    "unclosed [http://": ("[http://x.org y ", "[_http://x.org y "),
    "unclosed <!--": ("<!--", "<_!--"),
    "unclosed {{": ("{{a|b ", "{_{_a|b "),
    "unclosed [[File:": ("[[File:a.jpg|thumb|x ", "[_[_File:a.jpg|thumb|x "),
    "unclosed {|": ("{|\n", "{_|\n"),
    "unclosed <div>": ("<div>x ", "<_div>x "),
    "unterminated <span": ('<span x="y ', '<_span x="y '),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_thousands_of_unclosed_openers_leave_the_tokenizer_nothing_to_scan(name: str) -> None:
    # Each of these took the tokenizer quadratic time: it read to the end of the article for
    # every opener. Broken, every one is text to it at once.
    opener, broken = HOSTILE[name]
    passed = neutralise_unclosed(opener * 5000 + "end")
    assert shown(passed) == broken * 5000 + "end"
    nodes = mwparserfromhell.parse(passed, skip_style_tags=True).nodes
    # What is left is text, and the URLs in it as bare links (read to the next space).
    assert all(isinstance(node, Text) or (isinstance(node, ExternalLink) and not node.brackets) for node in nodes)


def test_one_closer_after_thousands_of_openers_closes_only_the_last() -> None:
    assert shown(neutralise_unclosed("<ref>" * 3000 + "</ref>")) == "<_ref>" * 2999 + "<ref></ref>"
    assert shown(neutralise_unclosed("[[a|x " * 3000 + "]]")) == "[_[_a|x " * 2999 + "[[a|x ]]"
    assert shown(neutralise_unclosed("{{a|b " * 3000 + "}}")) == "{_{_a|b " * 2999 + "{{a|b }}"
    assert shown(neutralise_unclosed("{|\n" * 3000 + "|}")) == "{_|\n" * 2999 + "{|\n|}"


@pytest.mark.parametrize(
    "page",
    [
        "Lead.<ref>" * 3 + "Body.\n\n== History ==\nOld times.",
        "Hist.<ref>a</ref>" + '<ref name="x">y ' * 3 + "tail. <ref>z</ref>",
        "See [http://example.org the site\nNext [http://a.org b] line.",
        "Intro.<!-- unfinished note\n\nMore.",
        "A {{cite web|title=broken\n\n'''Prose''' after {{lang|fr|oui}}.",
        "A [[Link|broken [[Other|text]]\n\nProse after.",
        "Intro.\n{|\n| cell\n\nProse after.\n{|\n| a\n|}\nEnd.",
        "see http://x.org/a<!--b c",
        "<ref><small><ref>x</small></ref> kept",
    ],
)
def test_the_cleaned_text_is_what_the_tokenizer_alone_gives(page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with_pass = clean_wikitext(page)
    monkeypatch.setattr(cleaner, "neutralise_unclosed", lambda text: text)
    assert with_pass == clean_wikitext(page)


def test_the_pass_characters_in_a_page_are_dropped() -> None:
    assert clean_wikitext(f"a{BREAK}b{URL_LT}c <ref>d") == "abc d"
