"""HTML to text: code blocks verbatim, list items as lines, entities decoded, tags gone."""

from __future__ import annotations

import pytest

from pipeline.text.html import HtmlTooDeep, html_fragment_to_text


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
