"""Markup openers that can never close, made plain text before mwparserfromhell reads them.

mwparserfromhell's tokenizer tries every opener it meets (`<ref>`, `<!--`, `{{`, `[[`,
`[http://`, `{|`). When the closer is missing it reads on to the end of the article (or of the
line, for an external link) before it gives up and keeps the opener as text, and the next
opener does the same: an article of thousands of unclosed `<ref>` or `[http://x` takes
quadratic time (8,000 unclosed `<ref>` 7-10 s, 8,000 `[http://x` 17 s, twice as many four times
that; bench/hostile_text.py has them all).

`neutralise_unclosed` finds the openers the tokenizer would give up on, in linear time, and
puts `BREAK` (a control character the tokenizer takes for a space) right after each of their
brackets: `<` + space is no tag, `[` + space no link, `{` + space no template, so the tokenizer
gives up at once. The bracket itself stays, so the text around it parses as before (a URL
still ends at the `<`, a template name still fails on it); `restore_unclosed` deletes `BREAK`
from the rendered text. Giving up keeps the opener as text, which is what the tokenizer's own
scan ends with: the same parse, without the scans. So an unclosed `<ref>` keeps its words (the
tag itself is swept as leftover markup), as MediaWiki shows an extension tag that is never
closed as text; an unclosed `[http://x y` is the plain link text MediaWiki shows. Neither
loses article text, where reading an unclosed `<ref>` as running to the end of the page (the
Cite extension's error) would drop everything after it.

An opener is given up on when, reading right to left, no closer is left for it:
- `<!--` with no `-->` after it. In a URL the tokenizer takes a failed comment in as the URL's
  text, where a `<` would end it: there the `<` becomes `URL_LT`, text that ends no URL, and
  `restore_unclosed` makes it `<` again;
- `<name ...>` with no `>` after it at all; or one whose opening tag is plain (no template,
  link or tag in its attributes, quotes balanced), that does not close itself (`/>`), and that
  is left without a `</name>` by two pairings: by count (each later `<name>` takes the nearest
  free `</name>` after it) and by nesting (a closer closes the innermost open tag of its name
  and fails the tags opened inside that one, as the tokenizer does). Tags the tokenizer closes
  implicitly (`<br>`, `<li>`) are never touched;
- `{{` (or `{{{`...) with fewer than two free `}` after it, each later run taking two; `[[`
  with no free `]]` after it, each later `[[` taking one; `{|` at a line start with no free
  `|}` at a line start after it. A later opener whose name or title fails the tokenizer (a
  bracket, `<`, `>`, a lone `{` or `}`, a line break in a title) takes nothing, nor does one
  the pass is unsure about (a template or comment in the name);
- `[` + URL with no `]` before the end of its line and nothing on the rest of the line (a
  template, link, tag or comment) that could carry the link over a line break.
Comments and the bodies of tags the tokenizer does not parse (`<nowiki>`, `<pre>`, `<math>`
...) are left out of every pairing: markup in them is text. Where a rule is unsure it leaves the
opener to the tokenizer, which costs time only on text that is rare in real articles.

Checked against the tokenizer alone: the cleaned text of each of the 542 pages of the real
Ukrainian and Vietnamese dumps is unchanged. On random piles of markup fragments, about one in
15,000 differs: an unclosed opener inside a construct whose extent the pairings do not see (the
attributes of an opening tag that hold links, a template that ends inside a tag's body).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from operator import itemgetter
from typing import NamedTuple, TypeVar

from mwparserfromhell.definitions import PARSER_BLACKLIST, SINGLE, URI_SCHEMES

BREAK = "\x1f"  # str.isspace() and the tokenizer's whitespace, no marker; XML cannot hold it
URL_LT = "\x1e"  # a `<` the tokenizer reads as a URL's text, as it does a failed comment's
RESTORE = {ord(BREAK): None, ord(URL_LT): "<"}

# The tokenizer splits text at these characters; a tag's name runs up to the first.
_NAME = r"[^\s{}\[\]<>|=&'#*;:/\\\"!\-]+"
TAG_EVENT = re.compile(rf"<!--|</([^<>]*)>|<({_NAME})")
# An opening tag whose end is its first `>`: attributes with plain or balanced-quoted values.
# Every repetition is possessive: no backtracking whatever the attributes.
_VALUE = r"""(?:"[^"'\\<>]*+"(?=[\s/>])|'[^"'\\<>]*+'(?=[\s/>])|[^\s"'\\<>/]*+)"""
_ATTRIBUTES = rf"""(?:\s++[^\s"'\\<>=/]++(?:\s*+=\s*+{_VALUE})?+)*+"""
PLAIN_OPEN_TAG = re.compile(rf"<{_NAME}{_ATTRIBUTES}\s*+/?>")
PLAIN_OPEN_TAG_START = re.compile(rf"<{_NAME}{_ATTRIBUTES}\s++")  # up to where another attribute may start
IMPLICITLY_CLOSED = set(SINGLE)
NO_BODY_START = re.compile(rf"<!--|<({'|'.join(PARSER_BLACKLIST)})(?=[\s/>])", re.IGNORECASE)
NO_BODY_END = re.compile(rf"</({'|'.join(PARSER_BLACKLIST)})\s*>", re.IGNORECASE)

# What the tokenizer may take for the start of a URL: `//` or a scheme it knows, and a colon. The
# schemes' first letters are checked first, in one character class under the same case folding
# (`ſ` is an `s` there too): most text fails it, where it failed the schemes one by one.
_SCHEME_INITIALS = "".join(sorted({scheme[0] for scheme in URI_SCHEMES}))
_URL = rf"(?://|(?<![A-Za-z0-9+.\-])(?i:(?=[{_SCHEME_INITIALS}])(?:{'|'.join(sorted(URI_SCHEMES))})):)"
URL_START = re.compile(rf"\[(?<!\[\[)(?={_URL})")  # the bracket first: a literal to look for
URL_IN_WORD = re.compile(_URL)
URL_END = re.compile(r'[ \t\n\[\]"<>]')
# `[[http://x]` is an external link after a `[`; `[[[` is left to the tokenizer.
WIKILINK_START = re.compile(rf"\[\[(?<!\[\[\[)(?!\[|{_URL})")
LINK_BLOCKER = re.compile(rf"\]|\{{\{{|\[\[|<(?:!--|/|{_NAME})")
# `{|` and `|}` after a line's indentation: searched from each line break (a character the search
# skips to), where `^` in multiline mode would be tried at every position; the first line apart.
TABLE_START = re.compile(r"[ \t]*+\{\|")
TABLE_END = re.compile(r"[ \t]*+\|\}")
NEXT_LINE_TABLE_START = re.compile(r"\n([ \t]*+\{\|)")
NEXT_LINE_TABLE_END = re.compile(r"\n([ \t]*+\|\})")
# A template name with one of these fails (a lone `{` or `}`: `{{` makes it unsure, below), a link
# title also with a line break; ...
INVALID_IN_TEMPLATE_NAME = re.compile(r"[\[\]<>{}]")
INVALID_IN_TITLE = re.compile(r"[\[\]<>{}\n]")
HIDES_INVALID = re.compile(r"\{\{|<!--")  # ... unless a template or comment holds it
BLANK = re.compile(r"\s*")
NESTED_IN_TAG = re.compile(r"\{\{|\[\[")
QUOTE = re.compile(r"[\"'\\]")
TEXT_ON_NEXT_LINE = re.compile(r"\n\s*\S")  # a name's text goes on after a line break: it fails


def neutralise_unclosed(text: str) -> str:
    """`text` with `BREAK` after the brackets of every opener that can never close (and the `<` of
    an unclosed comment in a URL made `URL_LT`); `text` must hold neither character."""
    if not any(mark in text for mark in ("<", "{{", "[", "{|")):
        return text
    markup = _Markup(text)
    broken: list[int] = []
    in_urls: list[int] = []
    if "<!--" in text:
        broken, in_urls = _unclosed_comments(markup)
    if "<" in text:
        broken += _unclosed_tags(markup, set(broken + in_urls))
    if "{{" in text:
        broken += _unclosed_braces(markup)
    if "[[" in text:
        broken += _unclosed_wikilinks(markup)
    if "{|" in text:
        broken += _unclosed_tables(markup)
    if "[" in text:
        broken += _unclosed_external_links(markup, set(broken + in_urls))
    return _break(text, broken, in_urls)


def restore_unclosed(text: str) -> str:
    # str.translate looks up every character (slow on non-Latin text): only where one is.
    return text.translate(RESTORE) if BREAK in text or URL_LT in text else text


def _break(text: str, broken: list[int], in_urls: list[int]) -> str:
    """`text` with `BREAK` after each bracket at `broken`, and `URL_LT` for the `<` at `in_urls`."""
    if not broken and not in_urls:
        return text
    changes = sorted([(position, text[position] + BREAK) for position in broken]
                     + [(position, URL_LT) for position in in_urls])
    pieces, start = [], 0
    for position, replacement in changes:
        pieces.append(text[start:position])
        pieces.append(replacement)
        start = position + 1
    pieces.append(text[start:])
    return "".join(pieces)


T = TypeVar("T")
_Event = tuple[int, "range | None", int]  # an opener (position, its brackets, 0) or a closer (position, None, brackets)


class _Hidden(NamedTuple):
    """A closed comment, or a closed tag whose body the tokenizer does not parse."""

    start: int
    end: int
    closer: int  # where its closer starts
    name: str  # "" for a comment


class _Markup:
    """One article's text with the positions every pass looks up (each list sorted)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tag_ends = _positions(">", text)
        self.hidden = self._hidden_spans()

    def first_tag_end(self, position: int) -> int | None:
        """The first `>` after `position`; None when there is none."""
        k = bisect_left(self.tag_ends, position)
        return self.tag_ends[k] if k < len(self.tag_ends) else None

    def closes_itself(self, position: int) -> bool:
        end = self.first_tag_end(position)
        return end is not None and self.text[end - 1] == "/"

    def unhidden(self, items: list[T], position: Callable[[T], int] = itemgetter(0)) -> list[T]:
        """The items (sorted by `position`) that no comment or `<nowiki>`, `<pre>` ... body hides:
        one walk along both sorted lists (the spans do not overlap), not a search per item."""
        if not self.hidden:
            return items
        kept: list[T] = []
        spans = iter(self.hidden)
        span = next(spans)
        for item in items:
            at = position(item)
            while span is not None and span.end <= at:
                span = next(spans, None)
            if span is None or at < span.start:
                kept.append(item)
        return kept

    def _hidden_spans(self) -> list[_Hidden]:
        text = self.text
        last_comment_end = text.rfind("-->")
        body_ends: dict[str, list[tuple[int, int]]] = {}
        for m in NO_BODY_END.finditer(text):
            body_ends.setdefault(m.group(1).lower(), []).append((m.start(), m.end()))
        spans: list[_Hidden] = []
        position = 0
        while (m := NO_BODY_START.search(text, position)) is not None:
            position = m.end()
            if m.group() == "<!--":
                if m.end() <= last_comment_end:
                    close = text.find("-->", m.end())
                    spans.append(_Hidden(m.start(), close + 3, close, ""))
                    position = close + 3
                continue
            if self.closes_itself(m.end()):
                continue
            ends = body_ends.get(m.group(1).lower(), [])
            k = bisect_left(ends, (m.end(), 0))
            if k < len(ends):
                spans.append(_Hidden(m.start(), ends[k][1], ends[k][0], m.group(1).lower()))
                position = ends[k][1]
        return spans


def _itself(position: int) -> int:
    return position


def _positions(pattern: str, text: str) -> list[int]:
    return [m.start() for m in re.finditer(pattern, text)]


def _any_between(positions: list[int], start: int, end: int) -> bool:
    k = bisect_left(positions, start)
    return k < len(positions) and positions[k] < end


# --- comments and external links ------------------------------------------------------------


def _unclosed_comments(markup: _Markup) -> tuple[list[int], list[int]]:
    """`<!--` with no `-->` after it: those outside URLs, and those that may be inside a URL. The
    tokenizer takes a comment into a URL (whole, spaces and all), and a failed one as the URL's
    text, where a `<` would end the URL: there the `<` becomes `URL_LT`, which does neither."""
    text = markup.text
    last_close = text.rfind("-->")
    unclosed = [m.start() for m in re.finditer("<!--", text) if m.start() + 4 > last_close]
    if not unclosed:
        return [], []
    # A URL goes on over the comments in it, closed (hidden) or not.
    unclosed_set = set(unclosed)
    url_ends = [end for end in markup.unhidden([m.start() for m in URL_END.finditer(text)], _itself)
                if end not in unclosed_set]
    urls = _positions(URL_IN_WORD.pattern, text)
    outside: list[int] = []
    inside: list[int] = []
    for start in unclosed:
        k = bisect_left(url_ends, start)
        word_start = url_ends[k - 1] + 1 if k else 0
        (inside if _any_between(urls, word_start, start) else outside).append(start)
    return outside, inside


def _unclosed_external_links(markup: _Markup, broken: set[int]) -> list[int]:
    """`[` + URL with no `]` up to the end of the line and no template, link, tag or comment
    (none broken already) on the way that could carry it over."""
    text = markup.text
    out: list[int] = []
    # The first blocker and line end after the previous URL, reused while they are ahead: each
    # part of the text is searched once.
    blocker = line_end = -1
    for m in URL_START.finditer(text):
        if blocker < m.end():
            blocker = _first_blocker(text, m.end(), broken)
        if line_end < m.end():
            line_end = text.find("\n", m.end())
            line_end = len(text) if line_end < 0 else line_end
        if blocker > line_end:
            out.append(m.start())
    return out


def _first_blocker(text: str, start: int, broken: set[int]) -> int:
    """Where the first `]`, template, link, tag or comment after `start` is; past the end of the
    text when none is."""
    while (m := LINK_BLOCKER.search(text, start)) is not None:
        if m.start() not in broken:
            return m.start()
        start = m.start() + 1
    return len(text) + 1


# --- templates, wikilinks, tables ------------------------------------------------------------


def _unclosed_braces(markup: _Markup) -> list[int]:
    """Every `{` of a run of two or more that finds fewer than two free `}` after it, each later
    run taking two (a template takes two, an argument three)."""
    runs = list(re.finditer(r"\{\{+", markup.text))
    closers = list(re.finditer(r"\}\}+", markup.text))
    return _without_closer(markup, [(m.start(), range(m.start(), m.end())) for m in runs],
                           [(m.start(), m.end() - m.start()) for m in closers], need=2,
                           names=lambda: _Names(markup.text, [m.start() for m in closers], INVALID_IN_TEMPLATE_NAME))


def _unclosed_wikilinks(markup: _Markup) -> list[int]:
    """`[[` that finds no free `]]` after it, each later `[[` taking one."""
    closers = _positions(r"\]\]", markup.text)
    openers = [(m.start(), range(m.start(), m.end())) for m in WIKILINK_START.finditer(markup.text)]
    return _without_closer(markup, openers, [(position, 1) for position in closers], need=1,
                           names=lambda: _Names(markup.text, closers, INVALID_IN_TITLE))


def _unclosed_tables(markup: _Markup) -> list[int]:
    """`{|` at a line start that finds no free `|}` at a line start after it, each later `{|`
    taking one."""
    openers = [(end - 2, range(end - 2, end - 1)) for _, end in _at_line_starts(markup.text, TABLE_START,
                                                                                NEXT_LINE_TABLE_START)]
    closers = [(start, 1) for start, _ in _at_line_starts(markup.text, TABLE_END, NEXT_LINE_TABLE_END)]
    return _without_closer(markup, openers, closers, need=1)


def _at_line_starts(text: str, first_line: re.Pattern[str], next_lines: re.Pattern[str]) -> list[tuple[int, int]]:
    """(start, end) of each match of `first_line` at the start of a line: at the text's start, then
    group 1 of each match of `next_lines` (the same pattern after a line break)."""
    first = first_line.match(text)
    return ([first.span()] if first else []) + [m.span(1) for m in next_lines.finditer(text)]


def _without_closer(markup: _Markup, openers: list[tuple[int, range]], closers: list[tuple[int, int]], need: int,
                    names: Callable[[], _Names] | None = None) -> list[int]:
    """Brackets of the openers (position, brackets) that find fewer than `need` free closing
    brackets (closers: position, brackets) after them, right to left, each later opener taking
    `need`; with `names` (built only when needed), only an opener whose name may parse takes.
    Those in comments and `<nowiki>`, `<pre>` ... bodies are text."""
    events = markup.unhidden(sorted([(position, brackets, 0) for position, brackets in openers]
                                    + [(position, None, count) for position, count in closers], key=itemgetter(0)))
    unpaired = _count_unpaired(events, need, lambda start: True)
    if not unpaired or names is None:
        return unpaired  # with some openers taking nothing, more closers would be free, not fewer
    return _count_unpaired(events, need, names().may_parse)


def _count_unpaired(events: list[_Event], need: int, takes: Callable[[int], bool]) -> list[int]:
    free = 0
    out: list[int] = []
    for _, brackets, count in reversed(events):
        if brackets is None:
            free += count
        elif free < need:
            out.extend(brackets)
        elif takes(brackets.stop):
            free -= need
    return out


class _Names:
    """Template names or link titles: each runs to the first `|` or closer after its opener; the
    tokenizer fails a blank one, one whose text goes on after a line break, or one that holds an
    `invalid` character."""

    def __init__(self, text: str, closers: list[int], invalid: re.Pattern[str]) -> None:
        self.text = text
        self.ends = sorted(closers + _positions(r"\|", text))
        self.invalid = _positions(invalid.pattern, text)
        self.hiding = _positions(HIDES_INVALID.pattern, text)

    def may_parse(self, start: int) -> bool:
        """False for a name that fails, and where unsure (a template or comment in it): an
        opener that takes no closer can only leave an earlier opener to the tokenizer."""
        k = bisect_left(self.ends, start)
        end = self.ends[k] if k < len(self.ends) else len(self.text)
        if _any_between(self.hiding, start, end) or _any_between(self.invalid, start, end):
            return False
        first = BLANK.match(self.text, start).end()
        return first < end and not TEXT_ON_NEXT_LINE.search(self.text, first, end)


# --- tags ------------------------------------------------------------------------------------


class _TagEvent(NamedTuple):
    position: int
    kind: str  # "open", "close" or "comment"
    name: str  # lower-cased


def _unclosed_tags(markup: _Markup, broken_comments: set[int]) -> list[int]:
    """Tag openers the tokenizer cannot close (see the module's docstring): both pairings must
    leave one without a closer before it is touched."""
    events = _tag_events(markup, broken_comments)
    tags = _OpeningTags(markup)
    bodies, by_count = _unpaired_by_count(events, tags)
    by_nesting = _unpaired_by_nesting(events, bodies)
    out: set[int] = set()
    nearest_tag = len(markup.text)
    for position, kind, _ in reversed(events):
        if kind == "open":
            end = markup.first_tag_end(position)
            if end is None:  # the opening tag never ends
                out.add(position)
                continue
            if (position in by_count and position in by_nesting and position in bodies
                    and tags.plain(position, end, nearest_tag, out)):
                out.add(position)
                continue
        nearest_tag = position
    return sorted(out)


def _tag_events(markup: _Markup, broken_comments: set[int]) -> list[_TagEvent]:
    """Comments, closing and opening tags in order; inside comments and the bodies of tags the
    tokenizer does not parse, nothing."""
    hidden = markup.hidden
    events: list[_TagEvent] = []
    h = 0
    for m in TAG_EVENT.finditer(markup.text):
        while h < len(hidden) and hidden[h].end <= m.start():
            h += 1
        if h < len(hidden) and hidden[h].start <= m.start():
            span = hidden[h]
            if m.start() == span.start and span.name:
                events += [_TagEvent(span.start, "open", span.name), _TagEvent(span.closer, "close", span.name)]
            elif m.start() == span.start:
                events.append(_TagEvent(span.start, "comment", ""))
        elif m.group(1) is not None:
            events.append(_TagEvent(m.start(), "close", m.group(1).rstrip().lower()))
        elif m.group(2) is not None:
            events.append(_TagEvent(m.start(), "open", m.group(2).lower()))
        elif m.start() not in broken_comments:  # an unclosed comment inside a URL
            events.append(_TagEvent(m.start(), "comment", ""))
    return events


class _OpeningTags:
    """Whether the tokenizer's reading of an opening tag is known: its attributes hold no
    template, link or tag, and quoted values are balanced, so it ends at its first `>`."""

    def __init__(self, markup: _Markup) -> None:
        self.markup = markup
        self.text = markup.text
        self._plain: dict[int, bool] = {}  # plain() of openers with quotes, for the openers before them

    def plain(self, position: int, end: int, nearest_tag: int, broken: set[int]) -> bool:
        """Whether the tag opening at `position` surely ends at `end`, its first `>`: no template
        or link in it, no `<` that may start a tag or comment (`nearest_tag` is the nearest after
        `position`), and its attributes plain or quoted (`PLAIN_OPEN_TAG`). Another `<` in it
        must be an opener already `broken`, up to which this one is an opening tag's start, and
        plain itself: that one reads as `<` and a space, two more attributes of this one."""
        # Searched between the tag's `<` and `>`, neither of which can be part of a match: the
        # matches found are those a search of the whole text finds there.
        if nearest_tag < end or NESTED_IN_TAG.search(self.text, position, end):
            return False
        if not QUOTE.search(self.text, position, end):
            return True
        inner = self.text.find("<", position + 1, end)
        if inner < 0:
            plain = PLAIN_OPEN_TAG.fullmatch(self.text, position, end + 1) is not None
        else:
            plain = (inner in broken and self._plain.get(inner, False)
                     and PLAIN_OPEN_TAG_START.fullmatch(self.text, position, inner) is not None)
        self._plain[position] = plain
        return plain


def _unpaired_by_count(events: list[_TagEvent], tags: _OpeningTags) -> tuple[dict[int, str], set[int]]:
    """Openers that take a body (position: name), and those of them left without a closer when
    each takes the nearest free closer of its name after it."""
    bodies: dict[int, str] = {}
    unpaired: set[int] = set()
    free_closers: dict[str, int] = {}
    nearest_tag = len(tags.text)
    for position, kind, name in reversed(events):
        if kind == "close":
            free_closers[name] = free_closers.get(name, 0) + 1
        elif kind == "open":
            end = tags.markup.first_tag_end(position)
            if end is None:
                unpaired.add(position)  # never ends: broken in any case
                continue
            if tags.text[end - 1] == "/" or not tags.plain(position, end, nearest_tag, unpaired):
                nearest_tag = position
                continue
            bodies[position] = name
            if free_closers.get(name, 0):
                free_closers[name] -= 1
            elif name not in IMPLICITLY_CLOSED:
                unpaired.add(position)
                continue
        nearest_tag = position
    return bodies, unpaired


def _unpaired_by_nesting(events: list[_TagEvent], bodies: dict[int, str]) -> set[int]:
    """Openers left without a closer when a closer closes the innermost open tag of its name and
    fails every tag opened inside that one (the tokenizer fails a tag whose body holds another
    tag's closer), and a closer of no open tag fails them all."""
    unpaired: set[int] = set()
    stack: list[tuple[int, str]] = []
    open_by_name: dict[str, list[int]] = {}  # stack indices of each name's open tags
    for position, kind, name in events:
        if kind == "open" and position in bodies:
            open_by_name.setdefault(name, []).append(len(stack))
            stack.append((position, name))
        elif kind == "close":
            indices = open_by_name.get(name)
            closing = indices[-1] if indices else -1
            while len(stack) > closing + 1:
                failed, failed_name = stack.pop()
                open_by_name[failed_name].pop()
                unpaired.add(failed)
            if indices:
                stack.pop()
                indices.pop()
    unpaired.update(position for position, _ in stack)
    return unpaired
