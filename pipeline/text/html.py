"""HTML to plain text, two ways: fragments that people wrote, and whole web pages.

`html_fragment_to_text`: an HTML fragment (forum posts, answers), every word of it kept and code
and lists kept readable:
- `<pre>` blocks keep their text verbatim (indentation and line breaks), as their own paragraph;
- list items become `- item` or `1. item` lines, nested lists indented by their marker;
- paragraphs, headings, block quotes and rules are separated by a blank line, `<br>` breaks a line;
- other tags go, their text stays (link text, inline `<code>`); entities are decoded;
- `<script>`, `<style>` and comments disappear with their content.
Parsing uses lxml's HTML parser (C, forgiving of broken markup, never fetches anything).
libxml2 stops that parser at a resource limit, nesting 255 elements deep, and keeps what it had
without an error: `html_fragment_to_text` raises `HtmlTooDeep` then, so a caller counts the post
instead of keeping it silently cut short (real posts nest a dozen levels at most).

`html_page_to_text`: a whole crawled page, its title and its main content without the menus,
footers and boilerplate around it (resiliparse's main-content extraction), falling back to the
page's whole text when the main content keeps under a quarter of it (list-heavy pages; see
MAIN_CONTENT_SHARE for the measurement). On the same 200 real pages resiliparse runs at about
350 pages/s on one core against about 14 for trafilatura (measured with bench/commoncrawl.py),
with comparable main-content quality, and the speed matters here more than anywhere: CommonCrawl
pages are two thirds of the corpus.

Main-content extraction takes time that grows with the page's size times its nesting depth
(40,000 nested `<div>`: 25 s; a 550 KB page of blocks 1,000 deep: 0.9 s), and its whole text
indents nested lists by their depth (40,000 unclosed `<ul>`: 1.6 GB of spaces): a page whose
elements nest deeper than MAX_PAGE_DEPTH raises `HtmlTooDeep` before any extraction. See
MAX_PAGE_DEPTH for why such a page is dropped rather than kept some other way. Parsing itself
(lexbor) takes time that grows with the nesting depth times the end tags that close nothing
(`<span></x>` 40,000 times: 2.4 s; a 1 MiB page of it: about 35 s): a page of more than
MANY_TAGS tags is first read by a plain scan of its tags (`nests_past`), and one nesting past
four times MAX_PAGE_DEPTH there raises `HtmlTooDeep` without being parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape

from lxml import etree

BLOCK_TAGS = frozenset(
    "p div h1 h2 h3 h4 h5 h6 blockquote table thead tbody tr hr section article header footer dl dt dd "
    "figure figcaption details summary center form fieldset address".split()
)
# Elements whose content is no text of the page. noembed and noframes are raw-text elements to the
# parser like script: kept, their tags came out as literal text ("<b>NOEMBED</b>").
DROPPED_TAGS = frozenset(["script", "style", "noscript", "template", "noembed", "noframes"])
# Plain etree elements: lxml.html's element classes cost a Python lookup per element.
_PARSER = etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True, default_doctype=False)


class HtmlTooDeep(ValueError):
    """The HTML nests deeper than its extraction handles: lxml's parser stopped and what it kept
    is cut short (a fragment), or extracting its text would take time or memory that grow with
    the depth (a page). For a page, `title` is its title, for the audit of dropped documents."""

    def __init__(self, message: str, title: str = "") -> None:
        super().__init__(message)
        self.title = title


@dataclass
class _Block:
    text: str
    list_id: int = 0  # items of one list (not 0) are joined by one line break, other blocks by two


class _Renderer:
    def __init__(self) -> None:
        self.blocks: list[_Block] = []
        self.inline: list[str] = []
        self.lists = 0

    def flush(self) -> None:
        if not self.inline:
            return
        raw, self.inline = "".join(self.inline), []
        lines = (" ".join(part.split()) for part in raw.split("\n"))
        text = "\n".join(line for line in lines if line)
        if text:
            self.blocks.append(_Block(text))

    def children(self, el: etree._Element) -> None:
        if el.text:
            self.inline.append(el.text)
        for child in el:
            self.element(child)

    def element(self, el: etree._Element) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""  # comments and processing instructions: ""
        if not tag or tag in DROPPED_TAGS:
            pass
        elif tag == "pre":
            self.flush()
            code = "".join(el.itertext()).strip("\n")
            if code.strip():
                self.blocks.append(_Block(code))
        elif tag == "br":
            self.inline.append("\n")
        elif tag in ("ul", "ol"):
            self.flush()
            self.list(el, ordered=tag == "ol")
        elif tag == "li":  # an item outside a list
            self.flush()
            self.item(el, "- ", self.new_list())
        elif tag in BLOCK_TAGS:
            self.flush()
            self.children(el)
            self.flush()
        else:
            self.children(el)
        if el.tail:
            self.inline.append(el.tail)

    def new_list(self) -> int:
        self.lists += 1
        return self.lists

    def list(self, el: etree._Element, ordered: bool) -> None:
        list_id = self.new_list()
        try:
            number = int(el.get("start", "1"))
        except ValueError:
            number = 1
        if el.text and el.text.strip():
            self.inline.append(el.text)
        for child in el:
            if child.tag == "li":
                self.item(child, f"{number}. " if ordered else "- ", list_id)
                number += 1
                if child.tail and child.tail.strip():
                    self.inline.append(child.tail)
            else:
                self.element(child)
        self.flush()

    def item(self, el: etree._Element, marker: str, list_id: int) -> None:
        self.flush()
        inner = _Renderer()
        inner.children(el)
        inner.flush()
        pad = " " * len(marker)
        for i, block in enumerate(inner.blocks or [_Block("")]):
            lines = block.text.split("\n")
            first = (marker if i == 0 else pad) + lines[0]
            rest = [pad + line if line else line for line in lines[1:]]
            self.blocks.append(_Block("\n".join([first.rstrip(), *rest]), list_id))


def html_fragment_to_text(html: str) -> str:
    """Plain text of an HTML fragment (see the module docstring for what is kept); raises
    `HtmlTooDeep` when the parser stopped at its depth limit."""
    if not html or not html.strip():
        return ""
    if "<" not in html and "&" not in html:
        return "\n".join(" ".join(line.split()) for line in html.strip().splitlines())
    try:
        root = etree.fromstring(html, _PARSER)
    except etree.XMLSyntaxError:  # e.g. a fragment of nothing but a comment
        return ""
    last_error = _PARSER.error_log.last_error  # the fatal one, when the parser stopped early
    if last_error is not None and last_error.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT:
        raise HtmlTooDeep(last_error.message)
    body = root.find("body") if root is not None else None
    if body is None:  # nothing but a <head> worth of tags
        return ""
    renderer = _Renderer()
    renderer.children(body)
    renderer.flush()
    out: list[str] = []
    previous: _Block | None = None
    for block in renderer.blocks:
        if previous is not None:
            out.append("\n" if previous.list_id and previous.list_id == block.list_id else "\n\n")
        out.append(block.text)
        previous = block
    return "".join(out)


# Main-content extraction keeps the page's prose and drops its menus, but its heuristics also
# drop pages whose prose sits in lists (soldaini.net: 1,047 characters of text, 58 kept).
# When the main content is under this share of the page's whole text, the whole text is
# kept and line dedup removes the template lines it repeats. On the 106 HTML pages of the
# real WARCs (../shared/realdata/commoncrawl; bench/commoncrawl.py --real), body text kept /
# template lines removed before line dedup: main content only 87.2% / 70.4%, whole text
# 100% / 0%, this 91.1% / 65.3% (98 -> 105 pages of 300+ characters).
MAIN_CONTENT_SHARE = 0.25


# Elements nested deeper than this (<html> is depth 1) make a page `HtmlTooDeep`. The real pages
# of ../shared/realdata/commoncrawl nest 13 deep (median) and 37 at most; libxml2 stops its HTML
# parser at 256 too. Main-content extraction costs about size x depth: at this bound a 1 MiB page
# takes about 0.5 s, and CommonCrawl cuts payloads at 1 MiB. Such a page is dropped (counted as
# `html_too_deep`), not kept as its whole text: no page people write nests that deep, what is
# that deep is generated or hostile, its whole text is what main-content extraction is there to
# remove, and resiliparse's whole text is no safe fallback (it indents each nested list, so its
# size grows with the square of the depth). Dropping is also what a Stack Exchange post too deep
# for lxml gets.
MAX_PAGE_DEPTH = 256
# Matches an element with MAX_PAGE_DEPTH ancestors: lexbor checks each element's ancestors from
# the element up and stops at the root, so on a normal page the test costs the sum of the
# depths (under a tenth of the extraction's time on the real pages) and on a deep one it stops
# at the first element past the bound.
_PAST_MAX_DEPTH = " > ".join(["*"] * (MAX_PAGE_DEPTH + 1))


# Pages with more tags than this are scanned for their depth before lexbor parses them: below it
# the parse's worst case stays under a second or two (20,000 `<span></x>`: 0.6 s).
MANY_TAGS = 40_000
# Elements that add no depth when left open: void ones, and those a parser closes by itself
# (a `<p>` at the next block, an `<li>` at the next item, an `<a>` at the next `<a>`).
_NO_DEPTH = frozenset(
    "area base br col embed hr img input link meta param source track wbr keygen "
    "p li dt dd tr td th option optgroup rb rt rp rtc thead tbody tfoot colgroup caption html head body a nobr".split()
)
# Elements whose content is text, not tags, up to their own end tag.
_RAW_TEXT = frozenset("script style textarea title xmp noscript iframe noembed noframes plaintext".split())
_TAG_OR_COMMENT = re.compile(r"<(?:!--|(/?)([a-z][a-z0-9-]*)[^>]*>)")


def nests_past(html: str, limit: int) -> bool:
    """Whether the elements of `html` nest more than `limit` deep, read as a parser reads them,
    closely enough to tell a page of thousands of levels from a real one: an end tag closes the
    innermost open element of its name and those inside it (one of no open element is ignored);
    comments and the content of script, style and the like are skipped. Linear in the page."""
    low = html.lower()
    stack: list[str] = []
    open_count: dict[str, int] = {}
    at = 0
    while match := _TAG_OR_COMMENT.search(low, at):
        at = match.end()
        name = match.group(2)
        if name is None:  # a comment: up to its end, or the page's
            at = low.find("-->", at)
            if at < 0:
                return False
            continue
        if match.group(1):  # an end tag
            if open_count.get(name):
                while (closed := stack.pop()) != name:
                    open_count[closed] -= 1
                open_count[name] -= 1
            continue
        if name in _RAW_TEXT:
            at = low.find(f"</{name}", at)
            if at < 0:
                return False
            continue
        if name in _NO_DEPTH or match.group(0).endswith("/>"):
            continue
        stack.append(name)
        open_count[name] = open_count.get(name, 0) + 1
        if len(stack) > limit:
            return True
    return False


def _scanned_title(html: str) -> str:
    """The text of the first `<title>` element, entities decoded, for a page not parsed."""
    low = html.lower()
    start = low.find("<title")
    start = low.find(">", start) + 1 if start >= 0 else 0
    end = low.find("</title", start) if start else -1
    return " ".join(unescape(html[start:end]).split()) if end >= 0 else ""


def html_page_to_text(html: str) -> tuple[str, str]:
    """(title, text) of an HTML page, with resiliparse: the main content, or the whole text
    when the main content is under MAIN_CONTENT_SHARE of it. Raises `HtmlTooDeep` for a page
    nested deeper than MAX_PAGE_DEPTH."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    if html.count("<") > MANY_TAGS and nests_past(html, 4 * MAX_PAGE_DEPTH):
        raise HtmlTooDeep(f"elements nest more than {MAX_PAGE_DEPTH} deep (by a scan of its tags, unparsed)",
                          _scanned_title(html))
    tree = HTMLTree.parse(html)
    title = (tree.title or "").strip()
    if tree.document is not None and tree.document.query_selector(_PAST_MAX_DEPTH) is not None:
        raise HtmlTooDeep(f"elements nest more than {MAX_PAGE_DEPTH} deep", title)
    main = extract_plain_text(tree, main_content=True, alt_texts=False)
    whole = extract_plain_text(tree, main_content=False, alt_texts=False)
    return title, main if len(main) >= MAIN_CONTENT_SHARE * len(whole) else whole
