"""The MediaWiki dump reader on a dump cut at every byte of its last page: the whole pages before
the cut are read, the cut is one `DumpError`, and never a page of its own. What lxml reports for
the element open at the end of input differs between libxml2 releases (6.2 closes it and reports
it, 6.1 did not); the reader must not depend on either."""

from __future__ import annotations

import io

import pytest

from pipeline.formats.mediawiki import DumpError, iter_pages
from sources.samples.wikipedia import HEADER, Page, page_xml

PAGES = [Page(f"Page {i}", f"Text of page {i}. " * 3, i) for i in (1, 2, 3)]
WHOLE = (HEADER.format(lang="en") + "".join(page_xml(p) for p in PAGES)).encode()
LAST_PAGE_START = WHOLE.rindex(b"<page>")
LAST_PAGE_END = WHOLE.rindex(b"</page>") + len(b"</page>")


def read_until_error(data: bytes) -> tuple[list[int | None], str | None]:
    ids: list[int | None] = []
    try:
        for page in iter_pages(io.BytesIO(data)):
            ids.append(page.page_id)
    except DumpError as e:
        return ids, e.reason
    return ids, None


@pytest.mark.parametrize("cut", range(LAST_PAGE_START - 3, LAST_PAGE_END + 2))
def test_a_dump_cut_inside_its_last_page_keeps_the_whole_pages_and_fails_once(cut: int) -> None:
    ids, reason = read_until_error(WHOLE[:cut])
    assert reason == "malformed_xml"  # the root element never closes, wherever the cut is
    # Pages whose closing tag is in the input, counted independently of the parser.
    whole_pages = WHOLE[:cut].count(b"</page>")
    assert ids == [p.page_id for p in PAGES][:whole_pages]


def test_a_page_closed_in_the_last_chunk_is_read_before_the_error() -> None:
    ids, reason = read_until_error(WHOLE + b"  <page>\n    <title>Cut")
    assert (ids, reason) == ([1, 2, 3], "malformed_xml")


@pytest.mark.parametrize("document, root", [
    (b"<html><head><title>404 Not Found</title></head><body><p>No such dump</p></body></html>\n", "html"),
    (b"<?xml version='1.0'?><error><code>503</code><message>Slow down</message></error>", "error"),
])
def test_well_formed_xml_of_another_kind_is_no_dump_of_no_pages(document: bytes, root: str) -> None:
    # A server's error page saved under the dump's name parses; its root says what it is.
    with pytest.raises(DumpError) as caught:
        list(iter_pages(io.BytesIO(document)))
    assert (caught.value.reason, caught.value.detail) == ("not_a_dump", f"its root element is <{root}>, not <mediawiki>")


def test_a_whole_dump_of_no_pages_is_read_as_none() -> None:
    assert list(iter_pages(io.BytesIO(HEADER.format(lang="en").encode() + b"</mediawiki>\n"))) == []


def test_a_page_of_many_small_elements_is_oversized_and_elements_outside_pages_go() -> None:
    """`<x/>` * 200,000 inside a page, then between two pages: a namespaced dump of them took time
    growing with the square of their number (a 700-byte .bz2 ran 28 s), and held them all (2.7 GB
    for a 6 KB .bz2). A page past MAX_PAGE_ELEMENTS is flagged, not read; the others are whole."""
    first, big, last = (page_xml(p) for p in PAGES)
    inside = big.replace("</revision>", "<x/>" * 200_000 + "</revision>")
    assert inside != big
    data = (HEADER.format(lang="en") + first + inside + "<x/>" * 200_000 + last + "</mediawiki>\n").encode()
    assert b'xmlns="http://www.mediawiki.org/' in data  # as in every real dump: the slow case
    pages = list(iter_pages(io.BytesIO(data)))
    assert [(p.page_id, p.title, p.oversized) for p in pages] == [(1, "Page 1", False), (2, "Page 2", True),
                                                                  (3, "Page 3", False)]
    assert pages[0].text == PAGES[0].text and pages[2].text == PAGES[2].text


@pytest.mark.parametrize("text", ["<!-- </page> </page> -->", "<!-- a --> <!-- </page> -->"])
def test_a_page_closing_tag_inside_a_comment_never_makes_a_cut_page_whole(text: str) -> None:
    """The damage check counts `</page>` tags in the bytes; counted inside a comment, it kept a
    page the file cut off after it (no `</text>`, no `</page>`) as a whole article."""
    first, second, _ = (page_xml(p) for p in PAGES)
    cut = second[: second.index("</text>")]
    ids, reason = read_until_error((HEADER.format(lang="en") + first + text + "\n" + cut).encode())
    assert (ids, reason) == ([1], "malformed_xml")
