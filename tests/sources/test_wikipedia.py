"""Wikipedia: exact plain text from markup, skipped pages counted, safe against bad dumps."""

from __future__ import annotations

import bz2
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.commands.run import run_source
from pipeline.common.errors import InputError
from pipeline.engine.shards import read_corpus
from pipeline.text.wikitext import clean_wikitext
from sources.samples.wikipedia import BOMB, Page, dump_xml, write, write_dump
from sources.wikipedia import PAPER_LANGUAGES, Wikipedia, WikipediaConfig, language_of

ARTICLE = """{{Infobox river
| name = Alder River
| length = 42 km
}}
'''Alder River''' is a [[river]] in [[Northland|the north]] of the [[Example Country]].<ref name="a">{{cite web|url=http://example.org|title=Atlas}}</ref> It flows into [[Lake Mira]].<ref>A survey.</ref>
<!-- editors: keep this short -->
[[File:Alder river.jpg|thumb|The river in [[Spring (season)|spring]]]]

== Course ==
The river rises near [[Hill (town)|Hill]].

{| class="wikitable"
|-
! Town !! Population
|-
| Hill || 300
|}

== References ==
{{reflist}}

[[Category:Rivers]]
[[de:Alder (Fluss)]]
"""
EXPECTED = """Alder River is a river in the north of the Example Country. It flows into Lake Mira.

Course

The river rises near Hill."""


def run(raw: Path, out: Path, **config) -> tuple[dict, list]:
    report = run_source(Wikipedia(WikipediaConfig(**config)), str(raw), str(out), workers=1, show_progress=False)
    return report.stats, list(read_corpus(out / "wikipedia"))


def test_markup_page_becomes_exact_plain_text() -> None:
    assert clean_wikitext(ARTICLE) == EXPECTED


def test_links_entities_magic_words_and_lists() -> None:
    text = "A [[b]] and [[c|d]], [[:Category:Lists|the list]] &amp; [http://x.org site] http://bare.org\n* one\n* two\n__TOC__"
    assert clean_wikitext(text) == "A b and d, the list & site\none\ntwo"


def test_dump_keeps_main_namespace_articles_and_counts_skips(tmp_path: Path) -> None:
    pages = [
        Page("Alder River", ARTICLE, 10),
        Page("Alder", "#REDIRECT [[Alder River]]", 11, redirect_to="Alder River"),
        Page("Old Alder", "#redirect [[Alder River]]", 12),  # no <redirect/> element: older dumps
        Page("Talk:Alder River", "Is this right?", 13, ns=1),
        Page("Template:Infobox river", "{{{name}}}", 14, ns=10),
        Page("Only markup", "{{stub}}\n[[Category:Stubs]]", 15),
    ]
    raw = tmp_path / "raw"
    raw.mkdir()
    write_dump(raw / "enwiki-20220701-pages-articles.xml.bz2", "en", pages)
    stats, docs = run(raw, tmp_path / "out")
    assert [(d.id, d.text) for d in docs] == [("enwiki/10", EXPECTED)]
    assert docs[0].meta == {"title": "Alder River", "lang": "en", "page_id": 10,
                            "url": "https://en.wikipedia.org/wiki/Alder_River"}
    read, clean, _ = stats["stages"]
    assert read["dropped"] == {"redirect": 2, "not_main_namespace": 2}
    assert clean["dropped"] == {"empty_after_cleaning": 1}


def test_default_languages_are_the_papers_twenty(tmp_path: Path) -> None:
    assert WikipediaConfig().languages == PAPER_LANGUAGES
    assert sorted(PAPER_LANGUAGES) == ["bg", "ca", "cs", "da", "de", "en", "es", "fr", "hr", "hu", "it", "nl",
                                       "pl", "pt", "ro", "ru", "sl", "sr", "sv", "uk"]
    raw = tmp_path / "raw"
    raw.mkdir()
    write_dump(raw / "jawiki-20220701-pages-articles.xml.bz2", "ja", [Page("Kawa", "Text.", 1)])
    write_dump(raw / "svwiki-20220701-pages-articles.xml", "sv", [Page("Å", "Text om [[ån]].", 1)])
    stats, docs = run(raw, tmp_path / "out")
    assert [(d.id, d.text, d.meta["lang"]) for d in docs] == [("svwiki/1", "Text om ån.", "sv")]
    assert stats["stages"][0]["dropped"] == {"language_not_selected": 1}
    assert language_of("x/enwiki-20220801-pages-articles-multistream.xml.bz2") == "en"
    assert language_of("x/20231101.de/train-00000-of-00002.parquet") == "de"


def test_multistream_dump_reads_every_stream(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    pages = [Page(f"P{i}", f"Text {i}.", i) for i in range(1, 21)]
    write_dump(raw / "enwiki-20220701-pages-articles-multistream.xml.bz2", "en", pages, streams=5)
    _, docs = run(raw, tmp_path / "out")
    assert [d.text for d in docs] == [f"Text {i}." for i in range(1, 21)]


def test_huggingface_parquet_layout(tmp_path: Path) -> None:
    folder = tmp_path / "raw" / "20231101.fr"
    folder.mkdir(parents=True)
    table = pa.table({"id": ["7", "8"], "url": ["https://fr.wikipedia.org/wiki/Rivi%C3%A8re", ""],
                      "title": ["Rivière", "Vide"], "text": ["Une rivière {{pas un modèle}}.", ""]})
    pq.write_table(table, folder / "train-00000-of-00001.parquet")
    stats, docs = run(tmp_path / "raw", tmp_path / "out")
    # Plain text already: not parsed again as wikitext.
    assert [(d.id, d.text, d.meta["lang"], d.meta["title"]) for d in docs] == [
        ("frwiki/7", "Une rivière {{pas un modèle}}.", "fr", "Rivière")]
    assert stats["stages"][0]["dropped"] == {"empty_page": 1}


def test_truncated_stream_keeps_pages_before_the_cut(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    path = raw / "enwiki-20220701-pages-articles.xml.bz2"
    write_dump(path, "en", [Page(f"P{i}", "Words here. " * 600, i) for i in range(1, 61)], streams=30)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    stats, docs = run(raw, tmp_path / "out")
    assert 10 <= len(docs) < 60
    assert [d.meta["page_id"] for d in docs] == list(range(1, len(docs) + 1))
    assert stats["stages"][0]["dropped"] == {"truncated_stream": 1}


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("bomb.xml", BOMB.encode(), "dtd_not_allowed"),
        ("malformed.xml", dump_xml("en", [Page("A", "x", 1)]).replace("</title>", "</ttl>", 1).encode(), "malformed_xml"),
        ("cut.xml.bz2", bz2.compress(dump_xml("en", [Page("A", "x", 1)]).encode())[:40], "truncated_stream"),
        ("external.xml", b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><mediawiki>'
         b"<page><title>A</title><ns>0</ns><id>1</id><revision><text>&x;</text></revision></page></mediawiki>",
         "dtd_not_allowed"),
    ],
)
def test_unusable_dumps_fail_with_a_reason(tmp_path: Path, name: str, content: bytes, problem: str) -> None:
    path = tmp_path / f"enwiki-20220701-pages-articles-{name}"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        list(Wikipedia().read(str(path)))
    assert caught.value.problem.startswith(problem)


def test_sample_runs_and_counts_every_bad_file(tmp_path: Path) -> None:
    write(tmp_path / "raw", seed=0)
    stats, docs = run(tmp_path / "raw", tmp_path / "out")
    failed = {Path(f["path"]).name: f["problem"].split(" ")[0] for f in stats["files"]["failed"]}
    assert failed == {"enwiki-20220701-pages-articles-bomb.xml": "dtd_not_allowed",
                      "enwiki-20220701-pages-articles-malformed.xml": "malformed_xml"}
    read = stats["stages"][0]
    assert read["dropped"]["truncated_stream"] == 1 and read["dropped"]["language_not_selected"] == 1
    alder = next(d for d in docs if d.meta["title"] == "Alder River")
    from sources.samples.wikipedia import MARKUP_ARTICLE_TEXT
    assert alder.text == MARKUP_ARTICLE_TEXT
    assert {d.meta["lang"] for d in docs} == {"en", "de"}
    assert len({d.id for d in docs}) == len(docs)
    assert json.loads((tmp_path / "out" / "wikipedia" / "manifest.json").read_text())["documents"] == len(docs)
