"""Wikitext to plain text with mwparserfromhell: what a reader sees on the page, without the
formatting machinery.

Removed: templates (infoboxes, navboxes, citation templates), tables, references, file and
image links (caption included), categories, interlanguage links, comments, magic words,
math and other extension tags whose content is not prose. Kept: the visible text of links
(`[[Target|text]]` gives "text", `[[Target]]` gives "Target"), of external links with a
label, bold/italic/list content, and headings as plain lines. A heading whose section ends
up empty (typically "References" or "External links") is dropped with it.
"""

from __future__ import annotations

import re

import mwparserfromhell
from mwparserfromhell.nodes import Argument, Comment, ExternalLink, Heading, HTMLEntity, Tag, Template, Text, Wikilink
from mwparserfromhell.wikicode import Wikicode

# Namespace names of files and categories in the paper's 20 languages (and English aliases).
FILE_NAMESPACES = {
    "file", "image", "media", "datei", "bild", "fichier", "archivo", "imagen", "immagine", "bestand",
    "plik", "ficheiro", "arquivo", "imagem", "fișier", "fişier", "imagine", "файл", "изображение",
    "soubor", "obrázek", "fil", "billede", "datoteka", "slika", "fájl", "kép", "fitxer", "imatge",
    "датотека", "слика", "медиа", "медија", "medium", "mediji",
}
CATEGORY_NAMESPACES = {
    "category", "kategorie", "catégorie", "categoría", "categoria", "categorie", "kategoria", "категория",
    "категорія", "kategori", "kategorija", "kategória", "категорија", "категории",
}
# Interlanguage links are `[[xx:Title]]` with a lower-case language code prefix.
INTERLANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z]{2,8})*$|^simple$")
# Extension and HTML tags whose content is not prose: dropped with their content.
DROPPED_TAGS = {
    "ref", "references", "table", "gallery", "math", "chem", "ce", "timeline", "imagemap", "score",
    "graph", "templatestyles", "syntaxhighlight", "source", "hiero", "inputbox", "mapframe", "maplink",
    "includeonly", "categorytree", "style", "script", "hr",
}
# Templates that show their last positional argument as text ({{lang|fr|bonjour}} -> bonjour).
INLINE_TEXT_TEMPLATES = {"lang", "nowrap", "nobr", "small", "sic", "transl", "script"}
LIST_MARKERS = {"li", "dt", "dd"}
MAGIC_WORD = re.compile(r"__[A-Z]+__")
EMPTY_PARENS = re.compile(r"\(\s*[,;:]?\s*\)")
SPACE_BEFORE_PUNCT = re.compile(r" +([.,])")
SPACES = re.compile(r"[ \t\u00a0]+")
HEADING_MARK = "\x00"  # prefixes heading lines until empty sections are resolved


def clean_wikitext(wikitext: str) -> str:
    """Plain text of one article's wikitext; "" when nothing readable is left."""
    rendered = _render(mwparserfromhell.parse(wikitext, skip_style_tags=False))
    rendered = MAGIC_WORD.sub("", rendered)
    rendered = EMPTY_PARENS.sub("", rendered)
    lines = []
    for line in rendered.split("\n"):
        line = SPACE_BEFORE_PUNCT.sub(r"\1", SPACES.sub(" ", line)).strip()
        lines.append(line)
    return _join(_drop_empty_sections(lines))


def _render(code: Wikicode) -> str:
    return "".join(_render_node(node) for node in code.nodes)


def _render_node(node: object) -> str:
    if isinstance(node, Text):
        return str(node.value)
    if isinstance(node, Template):
        return _render_inline_template(node)
    if isinstance(node, (Argument, Comment)):
        return ""
    if isinstance(node, HTMLEntity):
        return node.normalize()
    if isinstance(node, Wikilink):
        return _render_wikilink(node)
    if isinstance(node, ExternalLink):
        # A bare or unlabelled URL is not prose; a labelled one keeps its label.
        return _render(node.title) if node.title is not None and node.brackets else ""
    if isinstance(node, Heading):
        title = _render(node.title).strip()
        return f"\n{HEADING_MARK}{node.level}{HEADING_MARK}{title}\n" if title else ""
    if isinstance(node, Tag):
        return _render_tag(node)
    return ""


def _render_inline_template(template: Template) -> str:
    """The few templates that render prose inline keep their text; every other one is removed."""
    name = str(template.name).strip().lower().replace("_", " ")
    positional = [p for p in template.params if not p.showkey]
    if name in ("convert", "cvt") and len(positional) >= 2:
        return f"{_render(positional[0].value).strip()} {_render(positional[1].value).strip()}"
    if name in INLINE_TEXT_TEMPLATES and positional:
        return _render(positional[-1].value).strip()
    return ""


def _render_wikilink(link: Wikilink) -> str:
    target = str(link.title).strip()
    visible_colon = target.startswith(":")  # [[:Category:X]] is a visible link to the category page
    prefix = target.lstrip(":").split(":", 1)[0].strip() if ":" in target.lstrip(":") else ""
    if prefix and not visible_colon:
        lowered = prefix.lower()
        if lowered in FILE_NAMESPACES or lowered in CATEGORY_NAMESPACES:
            return ""
        if INTERLANGUAGE.match(prefix):
            return ""
    if link.text is not None:
        return _render(link.text)
    return target.lstrip(":").split("#", 1)[0] or target.lstrip(":").lstrip("#")


def _render_tag(tag: Tag) -> str:
    name = str(tag.tag).strip().lower()
    if name in DROPPED_TAGS:
        return ""
    if name == "br":
        return "\n"
    if name in LIST_MARKERS and tag.wiki_markup:
        return ""  # the item's text follows the marker as plain nodes
    if tag.self_closing or tag.contents is None:
        return ""
    inner = _render(tag.contents)
    return f"\n{inner}\n" if name in ("p", "div", "blockquote", "center") else inner


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
