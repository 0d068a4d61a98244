"""HTML to text: code blocks verbatim, list items as lines, entities decoded, tags gone."""

from __future__ import annotations

import pytest

from pipeline.text.html import (
    MANY_TAGS, MAX_PAGE_DEPTH, HtmlTooDeep, html_fragment_to_text, html_page_to_text, nests_past,
)


def test_code_blocks_keep_indentation_and_entities_are_decoded() -> None:
    html = "<p>Try <code>x &amp;&amp; y</code>:</p><pre><code>if a &lt; b:\n    run()\n</code></pre><p>Done.</p>"
    assert html_fragment_to_text(html) == "Try x && y:\n\nif a < b:\n    run()\n\nDone."


def test_lists_nested_and_ordered() -> None:
    html = "<ul><li>one</li><li>two<ul><li>deep</li></ul></li></ul><ol start='3'><li>three</li><li>four</li></ol>"
    assert html_fragment_to_text(html) == "- one\n- two\n  - deep\n\n3. three\n4. four"


def test_paragraphs_breaks_headings_and_links() -> None:
    html = "<h2>Title</h2><p>line one<br>line   two with <a href='http://x'>a link</a></p><blockquote>quoted</blockquote><hr>"
    assert html_fragment_to_text(html) == "Title\n\nline one\nline two with a link\n\nquoted"


def test_scripts_styles_and_comments_disappear() -> None:
    assert html_fragment_to_text("<p>a<!-- hidden --></p><script>alert(1)</script><style>p{}</style><p>b</p>") == "a\n\nb"


def test_raw_text_fallbacks_disappear_with_their_literal_tags() -> None:
    # The parser reads noembed and noframes as raw text: their tags were kept as literal text.
    body = "<p>a</p><noembed><b>NOEMBED</b></noembed><noframes><i>NOFRAMES</i></noframes><p>b</p>"
    assert html_fragment_to_text(body) == "a\n\nb"


def test_plain_text_and_empty_input() -> None:
    assert html_fragment_to_text("") == "" and html_fragment_to_text("   ") == ""
    assert html_fragment_to_text("just  text\nhere") == "just text\nhere"
    assert html_fragment_to_text("caf&eacute; &#233; &lt;tag&gt;") == "café é <tag>"


def test_broken_markup_keeps_its_text() -> None:
    assert html_fragment_to_text("<p>open <b>bold <i>both</p> after") == "open bold both\n\nafter"


def test_html_past_lxml_depth_limit_is_an_error_not_silently_cut() -> None:
    # libxml2's HTML parser stops at 255 nested elements and keeps what it had, without an error.
    def nested(depth: int) -> str:
        return "<p>before</p>" + "<div>" * depth + "deep" + "</div>" * depth + "<p>after</p>"

    assert html_fragment_to_text(nested(254)) == "before\n\ndeep\n\nafter"
    with pytest.raises(HtmlTooDeep, match="Excessive depth"):
        html_fragment_to_text(nested(255))
    assert html_fragment_to_text("<p>fine again</p>") == "fine again"  # the parser's error log is per parse


def _nested(tag: str, count: int, close: bool = True) -> str:
    inner = f"<{tag}>" * count + "words" + (f"</{tag}>" * count if close else "")
    return f"<html><head><title>T</title></head><body>{inner}</body></html>"


def test_a_page_nested_past_the_bound_is_too_deep_before_any_extraction() -> None:
    # <html> and <body> are two of the levels: MAX_PAGE_DEPTH - 2 elements inside <body> are allowed.
    assert html_page_to_text(_nested("div", MAX_PAGE_DEPTH - 2)) == ("T", "words")
    wide = "<html><body>" + ("<div>" * 200 + "words" + "</div>" * 200) * 1000 + "</body></html>"
    assert html_page_to_text(wide) == ("", "\n".join(["words"] * 1000))
    too_deep = [
        _nested("div", MAX_PAGE_DEPTH - 1),
        _nested("span", 40_000, close=False),  # never closed: the parser nests them all the same
        "<div></span>" * 1000,  # a stray end tag closes nothing, so the <div>s still nest
        "<ul><li>" * 40_000,  # the whole text of this would indent each item by its depth
    ]
    for page in too_deep:
        with pytest.raises(HtmlTooDeep, match=f"elements nest more than {MAX_PAGE_DEPTH} deep") as raised:
            html_page_to_text(page)
        assert raised.value.title == ("T" if "<title>" in page else "")


@pytest.mark.parametrize("unit", ["<b></a>", "<span></x>", "<i><u></p>"])
def test_a_page_of_deep_inline_elements_and_stray_end_tags_is_refused_before_lexbor_parses_it(unit: str) -> None:
    # Found by fuzzing: lexbor's parse takes time that grows with the depth times the stray end
    # tags (40,000 `<span></x>`: 2.4 s; a megabyte of them about 35 s).
    page = "<html><head><title>A &amp;\n B</title></head><body>" + unit * 100_000 + "</body></html>"
    with pytest.raises(HtmlTooDeep, match=r"nest more than 256 deep \(by a scan of its tags, unparsed\)") as raised:
        html_page_to_text(page)
    assert raised.value.title == "A & B"  # for the audit of dropped pages, as a parsed page gives it


def test_a_page_of_many_tags_that_a_parser_closes_by_itself_is_kept() -> None:
    # More tags than MANY_TAGS, none nesting: paragraphs, list items and links left open, closed
    # blocks, void elements.
    items = "".join(f"<p>para {i}<li>item {i}<a href=/{i}>link {i}<br><img src=x.png><div>block {i}</div>"
                    for i in range(MANY_TAGS // 5))
    title, text = html_page_to_text(f"<html><head><title>Many</title></head><body>{items}</body></html>")
    assert title == "Many"
    assert text.count("block ") == MANY_TAGS // 5 and "para 7999" in text and "link 7999" in text


def test_the_depth_scan_reads_tags_as_a_parser_does() -> None:
    assert nests_past("<div>" * 11, 10) and not nests_past("<div>" * 10, 10)
    assert not nests_past("<div><span><b>x</div>" * 20, 10)  # an end tag closes the elements inside it
    assert not nests_past("</div></span>" * 50 + "<div>" * 5, 10)  # end tags of nothing open close nothing
    assert not nests_past("<p><li><a><br><img><td>" * 50, 10)  # closed by a parser by themselves, or void
    assert not nests_past("<div/>" * 50, 10)
    # Tags inside comments, scripts and styles are text; one left open hides the rest of the page.
    assert not nests_past("<!--" + "<div>" * 50 + "-->", 10)
    assert not nests_past("<script>" + "<div>" * 50 + "</script>", 10)
    assert not nests_past("<STYLE>" + "<div>" * 50 + "</style>" + "<DIV>" * 9, 10)
    assert nests_past("<style>x</style>" + "<DIV>" * 11, 10)
    assert not nests_past("<script>" + "<div>" * 50, 10) and not nests_past("<!--" + "<div>" * 50, 10)
