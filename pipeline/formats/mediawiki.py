"""Streaming reader of MediaWiki XML dumps (pages-articles, multistream too), safe by design.

Dumps are tens of gigabytes, so pages are parsed incrementally with lxml's pull parser and
each page element is freed once read. The parser never resolves entities, never loads a DTD,
never touches the network and keeps libxml2's size limits (`huge_tree` off). A real dump has
no DOCTYPE at all, so one in the prolog is refused outright: that is the entity-expansion
("billion laughs") guard, and it also rejects external entities.

Problems are reported as `DumpError(reason)`; the source turns them into a counted skip
(when pages were already read) or an unusable file (when nothing was).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO, Iterator

from lxml import etree

from pipeline.common.errors import CountedProblem
from pipeline.common.files import single_read
from pipeline.formats.xml import SAFE_PARSER_OPTIONS, declares_dtd

CHUNK = 1 << 16  # decompressed bytes handed to the parser at a time, at most
PROLOG_LIMIT = 1 << 16  # bytes before the root element we look at for a DOCTYPE
PAGE_CLOSE = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?page\s*>")
# What PageCloseCounter reads: a closing page tag, and the bounds of comments and CDATA sections,
# where `</page>` is text, not a tag.
PAGE_CLOSE_OR_TEXT = re.compile(rb"<!--|-->|<!\[CDATA\[|\]\]>|" + PAGE_CLOSE.pattern)
TEXT_ENDS = {b"<!--": b"-->", b"<![CDATA[": b"]]>"}
PAGE_CLOSE_OVERLAP = 64  # bytes of the previous chunk kept so a closing tag split across two is seen


class DumpError(CountedProblem):
    """The dump cannot be read past this point; `reason` is a short counted label."""


@dataclass(slots=True)
class Page:
    page_id: int | None  # None: the <id> is missing or not a number
    title: str
    namespace: int | None  # None: the <ns> is not a number
    redirect: bool
    text: str
    # More than MAX_PAGE_ELEMENTS elements: no page of a real dump; its text is not read (the
    # reader counts it as `page_too_large`).
    oversized: bool = False


@dataclass(slots=True)
class SiteInfo:
    dbname: str = ""  # "enwiki": the dump's language comes from it when the file name does not say


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child_text(elem: etree._Element, name: str) -> str:
    for child in elem:
        if _local(child.tag) == name:
            return child.text or ""
    return ""


def _page(elem: etree._Element) -> Page:
    page_id: int | None = None
    namespace: int | None = 0  # pages of old dumps without <ns> are articles
    redirect, title, text = False, "", ""
    for child in elem:
        name = _local(child.tag)
        if name == "title":
            title = child.text or ""
        elif name == "ns":
            namespace = _number(child.text)
        elif name == "id":
            page_id = _number(child.text)
        elif name == "redirect":
            redirect = True
        elif name == "revision":
            text = _child_text(child, "text")
    return Page(page_id, title, namespace, redirect, text)


def _number(text: str | None) -> int | None:
    """A decimal integer element, or None: one bad page must not end the dump."""
    text = (text or "").strip()
    return int(text) if text.isascii() and text.lstrip("-").isdigit() and len(text) < 40 else None


def _check_prolog(head: bytes) -> None:
    if declares_dtd(head):
        raise DumpError("dtd_not_allowed", "a DOCTYPE or entity declaration (entity-expansion guard)")


def _read_chunk(stream: IO[bytes]) -> bytes:
    try:
        return single_read(stream)(CHUNK)
    except EOFError as e:  # a truncated bz2/gz stream
        raise DumpError("truncated_stream", str(e)) from None
    except OSError as e:  # corrupt compressed data
        raise DumpError("corrupt_stream", str(e)) from None


def read_prolog(stream: IO[bytes]) -> bytes:
    """The first bytes of a dump, read until its root element has started (or PROLOG_LIMIT bytes,
    or the end), after the entity-expansion guard: DumpError("dtd_not_allowed") when the bytes
    before the root declare a DTD or an entity. Every reader of dumps starts here."""
    head = b""
    while True:
        chunk = _read_chunk(stream)
        head += chunk
        _check_prolog(head[:PROLOG_LIMIT])
        if b"<mediawiki" in head or len(head) >= PROLOG_LIMIT or not chunk:
            # The root element has started: a DOCTYPE can only come before it.
            _check_prolog(head.split(b"<mediawiki", 1)[0])
            return head


class PageCloseCounter:
    """Counts the `</page>` closing tags in the bytes fed to the parser, across chunk borders.

    A page is whole only when its closing tag is in the input. Once the parser has met damage,
    what it reports for the element that was open is a detail of the libxml2 release (some
    close it at the end of input and report it as a page, some do not), so pages reported in a
    round that ended in an error are handed out only while the input holds that many closings.
    """

    def __init__(self) -> None:
        self.closed = 0
        self._tail = b""
        self._until = b""  # inside a comment or CDATA section: the bytes that end it

    def feed(self, chunk: bytes) -> None:
        data = self._tail + chunk
        if not self._until and b"<!" not in data:
            # No comment or CDATA starts here (a real dump escapes wikitext's `<!--`): the one
            # regex, at ten times the speed of the token walk below.
            self.closed += sum(1 for m in PAGE_CLOSE.finditer(data) if m.end() > len(self._tail))
            self._tail = data[-PAGE_CLOSE_OVERLAP:]
            return
        for m in PAGE_CLOSE_OR_TEXT.finditer(data):
            if m.end() <= len(self._tail):
                continue  # read with the previous chunk
            token = m.group()
            if self._until:
                # `</page>` in a comment is text: counted, it kept a page cut off after it as whole.
                self._until = b"" if token == self._until else self._until
            elif token in TEXT_ENDS:
                self._until = TEXT_ENDS[token]
            elif token.startswith(b"</"):
                self.closed += 1
        self._tail = data[-PAGE_CLOSE_OVERLAP:]


# Elements a page may hold: a real one holds about twenty (title, ns, id, a revision and its fields).
MAX_PAGE_ELEMENTS = 1000


def iter_pages(stream: IO[bytes], site: SiteInfo | None = None) -> Iterator[Page]:
    """Pages of a dump in file order. Raises `DumpError` on malformed, truncated or unsafe input,
    and on XML of another kind (`not_a_dump`: its root is not `<mediawiki>`).

    `site`, when given, is filled from `<siteinfo>` as soon as it has been read.
    """
    parser = etree.XMLPullParser(
        events=("end",),
        **SAFE_PARSER_OPTIONS,
        remove_comments=True,
        remove_pis=True,
    )
    head: bytes | None = read_prolog(stream)
    finished = False
    root = None
    closings, pages_read = PageCloseCounter(), 0
    elements = 0  # ended since the last page's end
    while not finished:
        chunk, head = (head, None) if head is not None else (_read_chunk(stream), None)
        error = None
        closings.feed(chunk)
        try:
            if chunk:
                parser.feed(chunk)
            else:
                root = parser.close()
                finished = True
        except etree.XMLSyntaxError as e:
            # Pages that ended before the damage in this chunk are still handed out first.
            error = DumpError("malformed_xml", str(e))
        for _, elem in parser.read_events():
            name = _local(elem.tag)
            if name == "page":
                if error is not None and pages_read >= closings.closed:
                    break  # the element open at the damage, not a page of the dump
                pages_read += 1
                page = _page(elem)
                page.oversized = elements > MAX_PAGE_ELEMENTS
                elements = 0
                elem.clear()
                # Free the pages already read: the root would otherwise keep them all.
                while elem.getprevious() is not None:
                    del elem.getparent()[0]
                yield page
            elif name == "siteinfo":
                elements = 0  # its namespaces are no page's
                if site is not None:
                    site.dbname = _child_text(elem, "dbname")
            elif (parent := elem.getparent()) is not None:
                # An element outside any page (under <mediawiki> itself), or past the bound inside
                # one, goes as soon as it ends: millions of small elements (`<x/>` * 10**7, a
                # 6 KB .bz2) were held to the page's end, 2.7 GB, and a namespaced page of them
                # took time growing with the square of their number to free.
                outside = parent.getparent() is None
                elements += not outside
                if outside or elements > MAX_PAGE_ELEMENTS:
                    parent.remove(elem)
        if error is not None:
            raise error
    if root is not None and (name := _local(root.tag)) != "mediawiki":
        # Well-formed XML of another kind (an HTML error page saved under the dump's name): a
        # failed input, never a dump of no pages.
        raise DumpError("not_a_dump", f"its root element is <{name[:40]}>, not <mediawiki>")
