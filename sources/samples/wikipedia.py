"""Sample Wikipedia input: generated MediaWiki pages-articles dumps (.xml.bz2) in the real
export format, with the markup the cleaner must remove, and bad files on purpose.

Written: enwiki-20220701-pages-articles.xml.bz2 (articles, redirects, talk/template/user
pages), svwiki-20220701-pages-articles-multistream1.xml-p100p129.bz2 (a split multistream
file: several bz2 streams; generated English text, as the reader never looks at the text's
language) and the same pages as svwiki-20220701-pages-articles1.xml-p100p129.bz2 (read once),
dewiki-20220701-pages-articles.xml.bz2, jawiki-... (a language outside the paper's 20),
and broken ones: a truncated bz2 stream, malformed XML and an entity-expansion bomb.
"""

from __future__ import annotations

import bz2
import random
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from sources.samples.text import paragraph, sentence

HEADER = (
    '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="{lang}">\n'
    "  <siteinfo>\n    <sitename>Wikipedia</sitename>\n    <dbname>{lang}wiki</dbname>\n"
    "    <base>https://{lang}.wikipedia.org/wiki/Main_Page</base>\n  </siteinfo>\n"
)
FOOTER = "</mediawiki>\n"

# One article using every construct the cleaner handles, and its exact expected plain text.
MARKUP_ARTICLE = """{{Infobox river
| name = Alder River
| length = 42 km
| mouth = [[Lake Mira]]
}}
'''Alder River''' is a [[river]] in [[Northland|the north]] of the [[Example Country]].<ref name="atlas">{{cite web|url=http://example.org/atlas|title=Atlas}}</ref> It flows into [[Lake Mira]].<ref>A survey of rivers, 1990.</ref>
<!-- editors: please keep this short -->
[[File:Alder river.jpg|thumb|The river in [[Spring (season)|spring]]]]

== Course ==
The river rises near [[Hill (town)|Hill]] and runs for {{convert|42|km}} to the lake.

{| class="wikitable"
|-
! Town !! Population
|-
| Hill || 300
|}

=== Tributaries ===
* [[Brook One]]
* Brook Two

== References ==
{{reflist}}

== External links ==
* [http://example.org/alder Official site]

[[Category:Rivers of Example Country]]
[[de:Alder (Fluss)]]
__NOTOC__
"""
MARKUP_ARTICLE_TEXT = """Alder River is a river in the north of the Example Country. It flows into Lake Mira.

Course

The river rises near Hill and runs for 42 km to the lake.

Tributaries

Brook One
Brook Two

External links

Official site"""

BOMB = """<?xml version="1.0"?>
<!DOCTYPE mediawiki [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
]>
<mediawiki><page><title>Bomb</title><ns>0</ns><id>1</id>
<revision><id>1</id><text>&f;&f;&f;&f;&f;&f;&f;&f;</text></revision></page></mediawiki>
"""


@dataclass
class Page:
    title: str
    text: str
    page_id: int
    ns: int = 0
    redirect_to: str | None = None


def page_xml(page: Page) -> str:
    redirect = f'    <redirect title="{escape(page.redirect_to, {chr(34): "&quot;"})}" />\n' if page.redirect_to else ""
    return (
        f"  <page>\n    <title>{escape(page.title)}</title>\n    <ns>{page.ns}</ns>\n    <id>{page.page_id}</id>\n"
        f"{redirect}    <revision>\n      <id>{page.page_id * 10}</id>\n      <model>wikitext</model>\n"
        f'      <format>text/x-wiki</format>\n      <text bytes="{len(page.text.encode())}" xml:space="preserve">'
        f"{escape(page.text)}</text>\n    </revision>\n  </page>\n"
    )


def dump_xml(lang: str, pages: list[Page]) -> str:
    return HEADER.format(lang=lang) + "".join(page_xml(p) for p in pages) + FOOTER


def write_dump(path: Path, lang: str, pages: list[Page], streams: int = 1) -> None:
    """A dump; `streams` > 1 writes it as concatenated bz2 streams like the multistream files."""
    xml = dump_xml(lang, pages)
    if path.suffix != ".bz2":
        path.write_text(xml, encoding="utf-8")
        return
    if streams == 1:
        path.write_bytes(bz2.compress(xml.encode()))
        return
    head, rest = xml.split("  <page>", 1)
    bodies = ("  <page>" + rest).split("  </page>\n")
    chunks = [head] + [b + "  </page>\n" for b in bodies[:-1]] + [bodies[-1]]
    per = max(1, len(chunks) // streams)
    out = b"".join(bz2.compress("".join(chunks[i : i + per]).encode()) for i in range(0, len(chunks), per))
    path.write_bytes(out)


def generated_article(rng: random.Random, title: str) -> str:
    """An article with typical markup around generated prose."""
    link = rng.choice(["[[River]]", "[[Village|village]]", "[[Harbour town|harbour]]"])
    return (
        f"{{{{Infobox place|name={title}|population={rng.randint(100, 9000)}}}}}\n"
        f"'''{title}''' is a {link} in the north. {sentence(rng)}<ref>{{{{cite book|title=Notes}}}}</ref>\n\n"
        f"== History ==\n{paragraph(rng)} <!-- check dates -->\n\n"
        f"== Geography ==\n{paragraph(rng)}\n[[File:{title}.png|thumb|A view]]\n\n"
        f"== References ==\n{{{{reflist}}}}\n\n[[Category:Places]]\n"
    )


def english_pages(rng: random.Random, first_id: int, count: int) -> list[Page]:
    pages: list[Page] = []
    for i in range(count):
        pid = first_id + i
        title = f"Place {pid}"
        if i % 7 == 3:
            pages.append(Page(f"Old place {pid}", f"#REDIRECT [[{title}]]", pid, redirect_to=title))
        elif i % 7 == 5:
            pages.append(Page(f"Talk:{title}", f"== Question ==\n{sentence(rng)} ~~~~", pid, ns=1))
        elif i % 7 == 6:
            pages.append(Page(f"Template:Box {pid}", "{{{1}}} box", pid, ns=10))
        else:
            pages.append(Page(title, generated_article(rng, title), pid))
    return pages


def write(folder: Path, seed: int) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pages = [Page("Alder River", MARKUP_ARTICLE, 1)] + english_pages(rng, 2, 40)
    write_dump(folder / "enwiki-20220701-pages-articles.xml.bz2", "en", pages)
    # Another wiki's dump under Wikimedia's split-dump names, in both of its forms: the same pages,
    # so the reader takes one form and names the other file as not read.
    split = english_pages(rng, 100, 30)
    write_dump(folder / "svwiki-20220701-pages-articles-multistream1.xml-p100p129.bz2", "sv", split, 4)
    write_dump(folder / "svwiki-20220701-pages-articles1.xml-p100p129.bz2", "sv", split)
    german = [
        Page("Erlenbach", "'''Erlenbach''' ist ein [[Fluss]] im Norden.<ref>Atlas</ref> Er mündet in den "
             "[[Mirasee|See]].\n\n== Verlauf ==\nDer Bach fließt durch [[Wald]] und Wiesen.\n\n"
             "[[Kategorie:Fluss]]\n[[Datei:Erlenbach.jpg|mini|Der Bach]]", 1),
        Page("Erlbach", "#WEITERLEITUNG [[Erlenbach]]", 2),
        Page("Diskussion:Erlenbach", "Frage zum Artikel.", 3, ns=1),
    ]
    write_dump(folder / "dewiki-20220701-pages-articles.xml.bz2", "de", german)
    write_dump(folder / "jawiki-20220701-pages-articles.xml.bz2", "ja", [Page("Kawa", "Kawa text.", 1)])
    # Bad inputs: a cut-off multistream bz2 (its first pages are still read), malformed XML, a bomb.
    truncated = folder / "enwiki-20220701-pages-articles-truncated.xml.bz2"
    write_dump(truncated, "en", english_pages(rng, 200, 300), streams=30)
    whole = truncated.read_bytes()
    truncated.write_bytes(whole[: len(whole) * 2 // 3])
    (folder / "enwiki-20220701-pages-articles-malformed.xml").write_text(
        HEADER.format(lang="en") + "  <page><title>Broken</title><ns>0</ns><id>1</id><revision><text>x</title>\n"
    )
    (folder / "enwiki-20220701-pages-articles-bomb.xml").write_text(BOMB)
