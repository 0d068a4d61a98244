"""Wikitext to plain text with mwparserfromhell: what a reader sees on the page, without the
formatting machinery. The page is read by mwparserfromhell's C tokenizer into the light node
tree of pipeline/text/wikitext_tree.py (its pure-Python builder cost four times the tokenizer).

Removed: templates that are machinery (infoboxes, navboxes, citations, maintenance tags),
tables, references, file and image links (caption included), categories, interlanguage
links (`[[fr:Paris]]`, whose prefix is a Wikipedia's language code: see
pipeline/text/wikipedia_languages.py), comments, magic words, and extension tags whose content
is not prose. Kept: the visible text of links (`[[Target|text]]` gives "text", `[[Target]]`
gives "Target", `[[:fr:Paris]]` gives "fr:Paris"), of external links with a label,
`<nowiki>` text as typed (`[[not a link]]` stays), bold/italic/list content, headings as plain lines, and the
text of templates that put prose on the page (language, transliteration, convert, dates,
pronunciation, quotations: see `TEMPLATE_RENDERERS`). A heading whose section ends up empty
(typically "References" or "External links") is dropped with it.

Three rules keep real articles whole:
- `''` / `'''` are not parsed as style tags (`skip_style_tags=True`) but stripped from the
  text: parsed as tags, one unbalanced pair inside a `<ref>` or a table cell opens a tag that
  runs to the end of the article, and the sections after it were removed with the ref.
- A removed node (ref, table, file link, template) that holds a section heading swallowed
  the article after it (an unclosed `[[File:` or `<ref>`): the text from that heading on is
  kept.
- Whatever the parser leaves as plain text because the markup was malformed (a table that
  does not open at a line start, a stray `{{`, `<ref>`, `[[`, `&nbsp;`) is swept by plain
  patterns afterwards, so no markup reaches the corpus.

Every removal leaves a marker (`REMOVED`) in the rendered text; punctuation left orphaned
next to a marker ("(; born", ", )", "text ." ) is tidied there and only there, so a plain
prose line of the article comes out exactly as written.

`<math>` keeps its TeX source between `$...$`: a sentence like "where $\\alpha$ is the
albedo" stays a sentence, the model sees the same notation as in the arXiv part of the
corpus, and the dollar signs tell a reader (and `pipeline audit`) where TeX starts. A
placeholder ("formula_1", WikiExtractor's choice) would keep the grammar but lose the
content.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_left
from collections.abc import Callable

from pipeline.text.wikipedia_languages import WIKIPEDIA_LANGUAGE_CODES
from pipeline.text.wikitext_tree import (Argument, Code, Comment, ExternalLink, Heading, HTMLEntity, Tag, Template,
                                         Wikilink, parse)
from pipeline.text.wikitext_unclosed import BREAK, URL_LT, neutralise_unclosed, restore_unclosed

# Namespace names of files and categories in the paper's 20 languages, English aliases, and
# the other wikis we test on (Vietnamese).
FILE_NAMESPACES = {
    "file", "image", "media", "datei", "bild", "fichier", "archivo", "imagen", "immagine", "bestand",
    "plik", "ficheiro", "arquivo", "imagem", "fișier", "fişier", "imagine", "файл", "изображение",
    "soubor", "obrázek", "fil", "billede", "datoteka", "slika", "fájl", "kép", "fitxer", "imatge",
    "датотека", "слика", "медиа", "медија", "medium", "mediji", "зображення", "медіа", "tập tin", "hình",
    "грешка",
}
CATEGORY_NAMESPACES = {
    "category", "kategorie", "catégorie", "categoría", "categoria", "categorie", "kategoria", "категория",
    "категорія", "kategori", "kategorija", "kategória", "категорија", "категории", "thể loại",
}
# Extension and HTML tags whose content is not prose: dropped with their content.
DROPPED_TAGS = {
    "ref", "references", "table", "gallery", "timeline", "imagemap", "score", "graph", "templatestyles",
    "syntaxhighlight", "source", "hiero", "inputbox", "mapframe", "maplink", "includeonly", "categorytree",
    "style", "script", "hr", "noinclude", "indicator", "charinsert", "section",
}
MATH_TAGS = {"math", "chem", "ce"}
LIST_MARKERS = {"li", "dt", "dd"}
BLOCK_TAGS = {"p", "div", "blockquote", "center", "poem", "tr", "li"}
REMOVED = "\x01"  # marks where a node was removed until the punctuation around it is tidied
HEADING_MARK = "\x00"  # prefixes heading lines until empty sections are resolved
VERBATIM_MARK = "\x02"  # brackets a formula's TeX and nowiki text so the markup sweeps leave them alone
OWN_MARKERS = {ord(HEADING_MARK): None, ord(REMOVED): None, ord(VERBATIM_MARK): None, ord(BREAK): None,
               ord(URL_LT): None}
# str.translate looks every character up in the table (slow on non-Latin text): it runs only on
# the rare page that holds one of the markers.
ANY_OWN_MARKER = re.compile("[" + "".join(map(chr, OWN_MARKERS)) + "]")

MAGIC_WORD = re.compile(r"__[A-ZА-ЯЁ]+__")
APOSTROPHES = re.compile(r"'{2,}")
# Image options that start the caption part of a file link the parser did not recognise
# (`thumb|`, Ukrainian `міні|`, Vietnamese `nhỏ|`, `250px|`): a link whose text still holds
# a `|` is a file link.
IMAGE_OPTION_LINE = re.compile(
    r"^[ \t]*(?:thumb|thumbnail|frame|frameless|left|right|center|upright|міні|мініатюра|праворуч|ліворуч|"
    r"nhỏ|trái|phải|giữa|\d+px|x?\d+x\d+px)[ \t]*\|[^\n]*$", re.IGNORECASE | re.MULTILINE)
# Fallback sweeps over text the parser left as plain text (malformed markup).
TABLE_MID_LINE = re.compile(r"(?<=\S)[ \t]*\{\|")  # `Intro: {| ...`: MediaWiki would not draw it either
TABLE_LINE = re.compile(r"^\s*(\{\||\|\}|\|-|\||!)")
LIST_OPENERS = ("*", "#", ":", ";")  # a run of them opens a list item, or an indented or defined line
POEM_FIRST_LINE_MARKERS = re.compile(rf"^[{re.escape(''.join(LIST_OPENERS))}]+(?=[^\n])")
# A leftover ref, `<ref .../>` or `<ref ...>...</ref>`: its attributes up to 500 characters, its
# body up to 10,000 (see `_remove_leftover_refs`). Spans are bounded so that many unclosed `[[`
# cost linear time, not quadratic.
REF_START = re.compile(r"<ref\b", re.IGNORECASE)
REF_END = re.compile(r"</ref\s*>", re.IGNORECASE)
ANGLE = re.compile("[<>]")
REF_ATTRIBUTES_LIMIT = 500
REF_BODY_LIMIT = 10_000
LEFTOVER_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>\n]*)?/?>")
INNER_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
LEFTOVER_LINK = re.compile(r"\[\[([^\[\]|\n]{0,500})(?:\|([^\[\]\n]{0,2000}))?\]\]")
LEFTOVER_EXTERNAL = re.compile(r"\[(?:https?:)?//[^\s\]]{1,2000}(?:\s([^\]\n]{0,500}))?\]")
VERBATIM_SPAN = re.compile(f"({VERBATIM_MARK}[^{VERBATIM_MARK}]*{VERBATIM_MARK})")
# `&amp;nbsp;` in the page source shows as "&nbsp;" on the page: a typo, not text.
LEFTOVER_ENTITY = re.compile(r"&(?:nbsp|ndash|mdash|thinsp|ensp|emsp|shy|amp|quot|lt|gt|#\d{2,5}|#x[0-9a-fA-F]{2,4});")
STRAY_BRACKETS = re.compile(r"\[\[|\]\]|\{\{|\}\}|\{\||\|\}")
# Orphaned punctuation next to a removal marker (and only there). Every pattern is one
# possessive character class, started only where its run begins, so a page of ten thousand
# removals next to each other is tidied in linear time; the callbacks leave a run that holds
# no marker as the author wrote it. A run's start is found by its first character, then the one
# before it checked (`(?<!CC)`): a lookbehind first would be tried at every position of the line.
EMPTY_PARENS = re.compile(rf"\([ \t,;:{REMOVED}]*+\)")
AFTER_OPEN = re.compile(rf"\([ \t,;:–—{REMOVED}]++")
_SEPARATED = rf"[ \t,;:–—{REMOVED}]"
BEFORE_CLOSE = re.compile(rf"{_SEPARATED}(?<!{_SEPARATED}{_SEPARATED}){_SEPARATED}*+\)")
DOUBLED_SEPARATOR = re.compile(rf"[,;:–—][ \t,;:{REMOVED}]*+")  # always matches: never rescanned
_SPACED = rf"[ \t{REMOVED}]"
SPACE_BEFORE_PUNCT = re.compile(rf"{_SPACED}(?<!{_SPACED}{_SPACED}){_SPACED}*+(?=[.,;:!?)])")
LEADING_SEPARATOR = re.compile(rf"[ \t{REMOVED}]*+[,;:]++[ \t]*+")  # matched at a line's start

Renderer = Callable[[list[str]], str]


def clean_wikitext(wikitext: str) -> str:
    """Plain text of one article's wikitext; "" when nothing readable is left."""
    # The markers below and wikitext_unclosed's BREAK and URL_LT are ours: a page that holds them as
    # characters (control characters, which an XML dump cannot hold) loses them.
    if ANY_OWN_MARKER.search(wikitext):
        wikitext = wikitext.translate(OWN_MARKERS)
    # Openers that can never close are plain text before the parser sees them: it would scan to
    # the end of the article for each one (quadratic time), then keep it as text all the same.
    parsed = parse(neutralise_unclosed(wikitext))
    rendered = restore_unclosed(_render(parsed))
    rendered = _sweep_leftover_markup(rendered)
    # Tidying changes only what holds a marker, and none of its patterns crosses a line break:
    # a line without a marker is left as it is, unscanned (three quarters of an article's text).
    lines = [_single_spaced(_tidy_removals(line) if REMOVED in line else line).strip()
             for line in rendered.split("\n")]
    text = _join(_drop_empty_sections(lines))
    return text.replace(VERBATIM_MARK, "")


def _single_spaced(line: str) -> str:
    """Each run of spaces, tabs and no-break spaces made one space. By str methods, not a regex
    (which stops at every single space): tabs and no-break spaces become spaces, then doubled
    spaces are halved until none is left (a run of n takes log2(n) rounds)."""
    if "\t" in line or "\u00a0" in line:
        line = line.replace("\t", " ").replace("\u00a0", " ")
    while "  " in line:
        line = line.replace("  ", " ")
    return line


def _render(code: Code) -> str:
    if len(code) == 1 and type(code[0]) is str:  # a link's text, a parameter's value: no list, no join
        return _plain(code[0])
    return "".join([_plain(node) if type(node) is str else RENDERERS[type(node)](node) for node in code])


def _render_node(node: object) -> str:
    return _plain(node) if type(node) is str else RENDERERS[type(node)](node)


def _render_external_link(link: ExternalLink) -> str:
    # A bare or unlabelled URL is not prose; a labelled one keeps its label.
    return _render(link.title) if link.title is not None and link.brackets else REMOVED


def _render_heading(heading: Heading) -> str:
    title = _render(heading.title).replace(REMOVED, "").strip()
    return f"\n{HEADING_MARK}{heading.level}{HEADING_MARK}{title}\n" if title else ""


def _plain(text: str) -> str:
    """A text node: italics/bold quotes go, entities the parser did not take (`&nbsp;` inside
    a failed construct) are decoded, magic words (`__TOC__`) go."""
    if "''" in text:
        text = APOSTROPHES.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    if "__" in text:
        text = MAGIC_WORD.sub("", text)
    return text


def _removed(*parts: Code | None, paragraph_ends: bool = False) -> str:
    """What a removed node leaves: the marker, plus the article from the first heading inside
    it, when it swallowed one (an unclosed file link or ref runs over the next sections).
    With `paragraph_ends` (links: a caption cannot span paragraphs), a blank line ends the
    node too."""
    for part in parts:
        if part is None:
            continue
        for i, node in enumerate(part):
            if isinstance(node, Heading):
                return REMOVED + "".join(_render_node(n) for n in part[i:])
            if paragraph_ends and isinstance(node, str) and "\n\n" in node:
                rest = node.split("\n\n", 1)[1]
                return REMOVED + "\n\n" + _plain(rest) + "".join(_render_node(n) for n in part[i + 1:])
            if isinstance(node, Tag) and not paragraph_ends and not node.may_hold_heading:
                continue  # no heading in it: nothing to keep (and its contents stay unbuilt)
            if isinstance(node, (Tag, Template, Wikilink)):
                inner = _removed(*_children(node), paragraph_ends=paragraph_ends)
                if inner != REMOVED:
                    return REMOVED + "".join([inner] + [_render_node(n) for n in part[i + 1:]])
    return REMOVED


def _children(node: object) -> list[Code | None]:
    if isinstance(node, Tag):
        return [node.contents]
    if isinstance(node, Wikilink):
        return [node.title, node.text]
    if isinstance(node, Template):
        return [p.value for p in node.params]
    return []


# --- templates -------------------------------------------------------------------------------


def _render_template(template: Template) -> str:
    name = str(template.name).strip().lower().replace("_", " ")
    renderer = TEMPLATE_RENDERERS.get(name) or _family_renderer(name)
    if renderer is None:
        return _removed(*(p.value for p in template.params))
    positional = [_render(p.value).replace(REMOVED, "").strip() for p in template.params if not p.showkey]
    text = renderer(positional)
    return text if text else REMOVED


def _last(values: list[str]) -> str:
    return values[-1] if values else ""


def _first(values: list[str]) -> str:
    return values[0] if values else ""


def _second(values: list[str]) -> str:
    return values[1] if len(values) > 1 else _first(values)


def _joined(values: list[str]) -> str:
    return " ".join(v for v in values if v)


CONVERT_JOINERS = {"to", "-", "–", "and", "or", "by", "x", "×", "+", "and(-)", "to(-)", "+/-", "±"}


def _convert(values: list[str]) -> str:
    """{{convert|42|km}} -> "42 km"; {{convert|1|to|2|km|mi}} -> "1 to 2 km" (the input value)."""
    out: list[str] = []
    i = 0
    while i < len(values):
        out.append(values[i])
        if i + 2 < len(values) and values[i + 1] in CONVERT_JOINERS:
            out.append(values[i + 1])
            i += 2
            continue
        if i + 1 < len(values):
            out.append(values[i + 1])
        break
    return " ".join(v for v in out if v)


def _date(values: list[str]) -> str:
    """{{birth date|1982|3|6}} -> "1982-03-06": the date in ISO form, whatever the wiki's language."""
    numbers = [v for v in values if v.isdigit()][:3]
    if not numbers:
        return _first(values)
    parts = [numbers[0]] + [n.zfill(2) for n in numbers[1:]]
    return "-".join(parts)


def _day_month_year(values: list[str]) -> str:
    """Ukrainian {{ДН|6|3|1982}} / {{ДС2|21|3|1908|8}}: day, month, year -> "1982-03-06"."""
    numbers = [v for v in values if v.isdigit()][:3]
    if len(numbers) < 3:
        return _first(values)
    return f"{numbers[2]}-{numbers[1].zfill(2)}-{numbers[0].zfill(2)}"


def _ipa(values: list[str]) -> str:
    return f"[{_first(values)}]" if values and values[0] else ""


def _ipac(values: list[str]) -> str:
    # IPAc-en spells one word in pieces ("ə", "ˈ", "k", "ɪ" ...); labels like "lang" or "pron" say
    # how it is introduced, not how it sounds.
    pieces = [v for v in values if v not in {"lang", "pron", "local", "uk", "us", "audio", "also", "we"}]
    return "/" + "".join(pieces) + "/" if pieces else ""


def _circa(values: list[str]) -> str:
    return f"c. {_first(values)}" if values else "c."


TEMPLATE_RENDERERS: dict[str, Renderer] = {
    # Text in another language or script, shown as written.
    "lang": _last, "langx": _last, "transl": _last, "transliteration": _last, "script": _last,
    "native name": _second, "nihongo": _first, "audio": _last, "iast": _first, "unicode": _first,
    # Typography around prose.
    "nowrap": _last, "nobr": _last, "small": _first, "smaller": _first, "big": _first, "larger": _first,
    "sic": _last, "noitalic": _first, "smallcaps": _first, "sc": _first, "abbr": _first, "nowrap begin": _first,
    "angle bracket": _first, "bracket": _first, "nbsp": lambda v: " ", "spaces": lambda v: " ",
    "-": lambda v: "", "mdash": lambda v: "—", "ndash": lambda v: "–", "·": lambda v: " · ", "dot": lambda v: " · ",
    # Numbers, units, dates.
    "convert": _convert, "cvt": _convert, "nts": _first, "ntsh": _first, "formatnum": _first, "val": _joined,
    "birth date": _date, "death date": _date, "birth date and age": _date, "death date and age": _date,
    "start date": _date, "end date": _date, "start date and age": _date, "dts": _date, "date": _first,
    "birth year and age": _first, "death year and age": _first, "circa": _circa, "c.": _circa, "floruit": _first,
    "дн": _day_month_year, "дс": _day_month_year, "дн2": _day_month_year, "дс2": _day_month_year,
    # Formulas written as templates, and pronunciation.
    "math": _first, "mvar": _first, "var": _first, "tmath": _first, "ipa": _ipa, "ipa2": _ipa, "ipa-all": _ipa,
    "pronunciation": _first,
    # Quotations are prose.
    "quote": _first, "quotation": _first, "cquote": _first, "blockquote": _first, "цитата": _first,
    "text": _first, "trích dẫn": _first, "не перекладено": _first, "нп": _first,
}


def _family_renderer(name: str) -> Renderer | None:
    """Template families: {{lang-fr|...}}, {{IPA-de|...}}, {{IPAc-en|...}}."""
    if name.startswith(("lang-", "langx-")):
        return _last
    if name.startswith("ipac-"):
        return _ipac
    if name.startswith(("ipa-", "мфа")):
        return _ipa
    if name.startswith("formatnum:"):
        return lambda values: name.split(":", 1)[1]
    return None


# --- links and tags --------------------------------------------------------------------------


def _render_wikilink(link: Wikilink) -> str:
    target = str(link.title).strip()
    # A leading colon makes a link shown in the text: `[[:Category:X]]` to the category page,
    # `[[:fr:Paris]]` to the French article (MediaWiki shows it as "fr:Paris").
    visible_colon = target.startswith(":")
    bare = target.lstrip(":")
    if not visible_colon and _is_hidden_link(bare):
        return _removed(link.text, paragraph_ends=True)
    if link.text is not None:
        if "|" in str(link.text):  # options then a caption: a file link in a namespace we do not know
            return _removed(link.text, paragraph_ends=True)
        return _render(link.text)
    return bare.split("#", 1)[0] or bare.lstrip("#")


def _link_prefix(target: str) -> str:
    """The namespace or language prefix of a link target, lower-cased: "fr" for "FR:Paris"."""
    return target.split(":", 1)[0].strip().lower() if ":" in target else ""


def _is_hidden_link(target: str) -> bool:
    """Whether `[[target]]` puts nothing in the text: a file or image (its caption goes with it),
    a category, or an interlanguage link (MediaWiki moves it to the sidebar). Only a language
    code of a Wikipedia makes an interlanguage link: `[[wikt:word]]` or `[[Ab:cd]]` stay links."""
    prefix = _link_prefix(target)
    return prefix in FILE_NAMESPACES or prefix in CATEGORY_NAMESPACES or prefix in WIKIPEDIA_LANGUAGE_CODES


def _render_tag(tag: Tag) -> str:
    name = str(tag.tag).strip().lower()
    if name in DROPPED_TAGS:
        return _removed(tag.contents) if tag.may_hold_heading else REMOVED
    if name in MATH_TAGS:
        source = str(tag.contents).strip() if tag.contents is not None else ""
        if not source:
            return REMOVED
        shown = f"${source}$" if name == "math" else source
        return f"{VERBATIM_MARK}{shown}{VERBATIM_MARK}"
    if name == "br":
        return "\n"
    if name in LIST_MARKERS and tag.wiki_markup:
        return ""  # the item's text follows the marker as plain nodes
    if tag.self_closing or tag.contents is None:
        return ""
    if name == "pre":
        return str(tag.contents)
    if name == "nowiki":
        return _render_nowiki(tag.contents)
    inner = _render(tag.contents)
    if name == "poem" and tag.contents and type(tag.contents[0]) is str and tag.contents[0].startswith(LIST_OPENERS):
        # The Poem extension parses its text on its own, so the line right after `<poem>` starts
        # a line there: its colons indent (`^(:++)(.+)$`), its `*` and `#` make a list, as on
        # every other line. The parser here saw no line start, so they are still text, in the
        # first node.
        inner = POEM_FIRST_LINE_MARKERS.sub("", inner, count=1)
    return f"\n{inner}\n" if name in BLOCK_TAGS else inner


def _render_nowiki(contents: Code) -> str:
    """What a reader sees of `<nowiki>...</nowiki>`: the markup as typed (`[[not a link]]`,
    `{{tmpl}}`), with character entities decoded, as MediaWiki decodes them there (the parser
    takes only well-formed ones, `&amp;` but not `&foo;`). Bracketed so the sweeps for broken
    markup leave it alone."""
    text = "".join(node.normalize() if isinstance(node, HTMLEntity) else str(node) for node in contents)
    # `<nowiki>''</nowiki>Title<nowiki>''</nowiki>`: an editor's way to type a double quote.
    text = text.replace("''", '"')
    return f"{VERBATIM_MARK}{text}{VERBATIM_MARK}" if text else ""


# What each kind of node renders to (a text node, a `str`, is `_plain`); any other node is
# machinery and leaves a removal marker.
RENDERERS: dict[type, Callable[..., str]] = {
    Template: _render_template, Argument: lambda node: REMOVED, Comment: lambda node: REMOVED,
    HTMLEntity: HTMLEntity.normalize, Wikilink: _render_wikilink, ExternalLink: _render_external_link,
    Heading: _render_heading, Tag: _render_tag,
}


# --- after rendering -------------------------------------------------------------------------


def _sweep_leftover_markup(text: str) -> str:
    """Markup the parser left as text because it was malformed: removed by plain patterns,
    outside the TeX of formulas."""
    if not any(mark in text for mark in ("{", "}", "[", "]", "<", "|", "&")):
        return text
    pieces = VERBATIM_SPAN.split(text)
    return "".join(p if p.startswith(VERBATIM_MARK) else _sweep(p) for p in pieces)


def _sweep(text: str) -> str:
    if "<ref" in text or "<REF" in text:
        text = _remove_leftover_refs(text)
    for _ in range(20):  # innermost templates first; real nesting is shallow
        text, count = INNER_TEMPLATE.subn(REMOVED, text)
        if not count:
            break
    text = _drop_table_lines(text)
    text = LEFTOVER_LINK.sub(_leftover_link, text)
    text = LEFTOVER_EXTERNAL.sub(lambda m: m.group(1) or REMOVED, text)
    if "|" in text:  # a line of image options holds one; `^` in multiline mode is tried at every position
        text = IMAGE_OPTION_LINE.sub(REMOVED, text)
    text = LEFTOVER_TAG.sub("", text)
    text = STRAY_BRACKETS.sub(REMOVED, text)
    return LEFTOVER_ENTITY.sub(lambda m: html.unescape(m.group()), text)


def _remove_leftover_refs(text: str) -> str:
    """Each leftover ref, left to right, replaced by REMOVED: what
    `re.sub(r"<ref\\b[^<>]{0,500}/>|<ref\\b[^<>]{0,500}>.{0,10000}?</ref\\s*>", REMOVED, text, flags=re.I | re.S)`
    does, in linear time: that pattern looks up to 10,000 characters ahead for the `</ref>` of
    every `<ref>`, and a page of unclosed ones took seconds. Here the closers are found once."""
    closers = [(m.start(), m.end()) for m in REF_END.finditer(text)]
    pieces: list[str] = []
    done = 0
    for start in REF_START.finditer(text):
        if start.start() < done:
            continue
        angle = ANGLE.search(text, start.end())
        if angle is None or angle.group() == "<":
            continue
        end = angle.start()  # the opening tag's `>`
        if text[end - 1] == "/" and end - 1 - start.end() <= REF_ATTRIBUTES_LIMIT and end - 1 >= start.end():
            span_end = end + 1
        elif end - start.end() <= REF_ATTRIBUTES_LIMIT:
            k = bisect_left(closers, (end + 1, 0))
            if k == len(closers) or closers[k][0] - (end + 1) > REF_BODY_LIMIT:
                continue
            span_end = closers[k][1]
        else:
            continue
        pieces.append(text[done:start.start()])
        pieces.append(REMOVED)
        done = span_end
    pieces.append(text[done:])
    return "".join(pieces)


def _leftover_link(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    visible_colon = target.lstrip().startswith(":")
    if (not visible_colon and _is_hidden_link(target)) or (label and "|" in label):
        return REMOVED
    return label if label is not None else target.strip().lstrip(":")


def _drop_table_lines(text: str) -> str:
    """A table the parser could not read: every line from `{|` to its `|}` goes. One that is
    never closed ends at the first blank line or heading, so it cannot take the article."""
    if "{|" not in text:
        return text
    lines = TABLE_MID_LINE.sub("\n{|", text).split("\n")
    i = 0
    while i < len(lines):
        if not lines[i].lstrip().startswith("{|"):
            i += 1
            continue
        end = _table_end(lines, i)
        lines[i:end] = [REMOVED] * (end - i)
        i = end
    return "\n".join(lines)


def _table_end(lines: list[str], start: int) -> int:
    depth = 0
    for j in range(start, len(lines)):
        stripped = lines[j].lstrip()
        if stripped.startswith("{|"):
            depth += 1
        elif stripped.startswith("|}"):
            depth -= 1
            if depth == 0:
                return j + 1
    for j in range(start + 1, len(lines)):
        if not lines[j].strip() or lines[j].startswith(HEADING_MARK) or not TABLE_LINE.match(lines[j]):
            return j
    return len(lines)


def _tidy_removals(text: str) -> str:
    """Punctuation orphaned by a removal in one line, fixed where the removal was and nowhere else:
    "Achilles (\x01; Greek: ...)" -> "Achilles (Greek: ...)", "(born 1950, \x01)" -> "(born 1950)",
    "Paris \x01." -> "Paris.", "(\x01)" -> ""."""
    if REMOVED not in text:
        return text
    text = EMPTY_PARENS.sub(lambda m: _if_removed(m, ""), text)
    text = AFTER_OPEN.sub(lambda m: _if_removed(m, "("), text)
    text = BEFORE_CLOSE.sub(lambda m: _if_removed(m, ")"), text)
    text = DOUBLED_SEPARATOR.sub(_one_separator, text)
    # Before the spaces before punctuation go: with them would go the marker that shows the
    # separator opening the line is orphaned ("* {{date}}: Teachers' Day" -> "Teachers' Day").
    leading = LEADING_SEPARATOR.match(text)  # one line: only its start is a line start
    if leading is not None and REMOVED in leading.group():
        text = text[leading.end():]
    text = SPACE_BEFORE_PUNCT.sub(lambda m: _if_removed(m, ""), text)
    return text.replace(REMOVED, "")


def _if_removed(match: re.Match[str], replacement: str) -> str:
    return replacement if REMOVED in match.group() else match.group()


def _one_separator(match: re.Match[str]) -> str:
    """", \x01, " -> ", ": the first separator stays, with the space after it."""
    run = match.group()
    if REMOVED not in run or not any(c in ",;:" for c in run[1:]):
        return run
    return run[0] + (" " if run[-1] in " \t" else "")


def _drop_empty_sections(lines: list[str]) -> list[str]:
    """Remove headings whose section (up to the next heading of the same or a higher level) has no text."""
    levels = [_heading_level(line) for line in lines]
    keep = [True] * len(lines)
    for i, level in enumerate(levels):
        if level is None:
            continue
        has_text = False
        for j in range(i + 1, len(lines)):
            if levels[j] is not None and levels[j] <= level:
                break
            if levels[j] is None and lines[j]:
                has_text = True
                break
        keep[i] = has_text
    out = []
    for line, level, kept in zip(lines, levels, keep):
        if not kept:
            continue
        out.append(line.split(HEADING_MARK, 2)[2] if level is not None else line)
    return out


def _heading_level(line: str) -> int | None:
    if not line.startswith(HEADING_MARK):
        return None
    return int(line.split(HEADING_MARK, 2)[1])


def _join(lines: list[str]) -> str:
    """Lines joined with single newlines, runs of blank lines collapsed to one, ends trimmed."""
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)
