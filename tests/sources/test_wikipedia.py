"""Wikipedia: exact plain text from markup, skipped pages counted, safe against bad dumps."""

from __future__ import annotations

import bz2
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lxml import etree

from pipeline.commands.audit import residue, run_audit, wikitext_prose
from pipeline.commands.run import run_source
from pipeline.common.errors import InputError
from pipeline.engine.document import Document
from pipeline.engine.shards import read_corpus
from pipeline.text.wikitext import clean_wikitext
from sources.samples.wikipedia import BOMB, Page, dump_xml, write, write_dump
from sources.wikipedia import PAPER_LANGUAGES, Wikipedia, WikipediaConfig, dump_file, language_of, select_dump_files
from tests.conftest import script, subprocess_env
from tests.sources.wikipedia_dumps import REAL_WIKIPEDIA, raw_enwiki

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
    raw = raw_enwiki(tmp_path, pages)
    stats, docs = run(raw, tmp_path / "out")
    assert [(d.id, d.text) for d in docs] == [("enwiki/10", EXPECTED)]
    assert docs[0].meta == {"title": "Alder River", "lang": "en", "page_id": 10,
                            "url": "https://en.wikipedia.org/wiki/Alder_River", "cited_urls": ["http://example.org"]}
    read, clean, _ = stats["stages"]
    assert read["dropped"] == {"redirect": 2, "not_main_namespace": 2}
    assert clean["dropped"] == {"empty_after_cleaning": 1}


def test_a_page_longer_than_mediawiki_allows_is_skipped_unparsed(tmp_path: Path) -> None:
    # Found by fuzzing: 5 MB of `{` in one page cost 1.2 GB and 13 s in the wikitext cleaner.
    # MediaWiki saves at most 2048 KiB of wikitext, counted in UTF-8 bytes.
    limit = 2 * 1024 * 1024
    pages = [Page("At the limit", "a" * limit, 1), Page("Past it", "{" * (limit + 1), 2),
             Page("Two-byte letters at the limit", "é" * (limit // 2), 3),
             Page("Two-byte letters past it", "é" * (limit // 2) + "a", 4)]
    path = tmp_path / "enwiki-20220701-pages-articles.xml.bz2"
    write_dump(path, "en", pages)
    read = list(Wikipedia().read(str(path)))
    kept = [(r.id, len(r.text)) for r in read if isinstance(r, Document)]
    assert kept == [("enwiki/1", limit), ("enwiki/3", limit // 2)]
    assert [(r.reason, r.document.id) for r in read if not isinstance(r, Document)] == [
        ("page_too_large", "enwiki/2"), ("page_too_large", "enwiki/4")]


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
    # The Japanese dump is not read at all (named on stderr), not counted as one dropped document.
    assert stats["stages"][0]["dropped"] == {} and stats["files"]["total"] == 1
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
    assert read["dropped"]["truncated_stream"] == 1 and "language_not_selected" not in read["dropped"]
    alder = next(d for d in docs if d.meta["title"] == "Alder River")
    from sources.samples.wikipedia import MARKUP_ARTICLE_TEXT
    assert alder.text == MARKUP_ARTICLE_TEXT
    assert {d.meta["lang"] for d in docs} == {"en", "de", "sv"}
    assert len({d.id for d in docs}) == len(docs)
    assert json.loads((tmp_path / "out" / "wikipedia" / "manifest.json").read_text())["documents"] == len(docs)


# --- dump names and identity -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, wiki, date, multistream, piece",
    [
        ("enwiki-20220701-pages-articles1.xml-p1p41242.bz2", "enwiki", "20220701", False, "1-p1p41242"),
        ("enwiki-20220701-pages-articles-multistream1.xml-p1p41242.bz2", "enwiki", "20220701", True, "1-p1p41242"),
        ("enwiki-20220701-pages-articles-multistream.xml.bz2", "enwiki", "20220701", True, ""),
        ("zh_yuewiki-20220701-pages-articles.xml", "zh_yuewiki", "20220701", False, ""),
        ("ukwiki-20230501-pages-articles-multistream-truncated100k.xml.bz2", "ukwiki", "20230501", True, ""),
    ],
)
def test_wikimedia_dump_names(name: str, wiki: str, date: str, multistream: bool, piece: str) -> None:
    found = dump_file(f"raw/{name}")
    assert (found.wiki, found.date, found.multistream, found.piece) == (wiki, date, multistream, piece)
    assert dump_file("raw/enwiki-20220701-pages-articles-multistream-index1.txt-p1p41242.bz2") is None


def test_split_dump_files_are_read(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    write_dump(raw / "enwiki-20220701-pages-articles1.xml-p1p2.bz2", "en",
               [Page("A", "Text a.", 1), Page("B", "Text b.", 2)])
    write_dump(raw / "enwiki-20220701-pages-articles2.xml-p3p3.bz2", "en", [Page("C", "Text c.", 3)])
    (raw / "enwiki-20220701-pages-articles-multistream-index1.txt-p1p2.bz2").write_bytes(bz2.compress(b"0:1:A\n"))
    report = run_source(Wikipedia(), str(raw), str(tmp_path / "out"), workers=1, tasks=2, show_progress=False)
    stats, docs = report.stats, list(read_corpus(tmp_path / "out" / "wikipedia"))
    assert sorted((d.id, d.text) for d in docs) == [("enwiki/1", "Text a."), ("enwiki/2", "Text b."),
                                                    ("enwiki/3", "Text c.")]
    assert stats["files"]["failed"] == []


def test_the_same_dump_in_two_forms_is_read_once_and_the_other_file_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    pages = [Page(f"P{i}", f"Text {i}.", i) for i in range(1, 6)]
    write_dump(raw / "enwiki-20220701-pages-articles.xml.bz2", "en", pages)
    write_dump(raw / "enwiki-20220701-pages-articles-multistream.xml.bz2", "en", pages, streams=2)
    write_dump(raw / "dewiki-20220701-pages-articles.xml", "de", [Page("P6", "Eine Seite.", 6)])  # another wiki
    stats, docs = run(raw, tmp_path / "out")
    assert sorted(d.id for d in docs) == ["dewiki/6", "enwiki/1", "enwiki/2", "enwiki/3", "enwiki/4", "enwiki/5"]
    assert stats["stages"][0]["in"] == 6
    assert (f"warning: {raw}/enwiki-20220701-pages-articles.xml.bz2: not read: same dump (enwiki 20220701) as "
            "enwiki-20220701-pages-articles-multistream.xml.bz2") in capsys.readouterr().err


def test_two_dump_dates_of_one_wiki_read_the_newest_and_name_the_older(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Both dates carry page 1 (enwiki/1): reading both would publish one id twice."""
    raw = tmp_path / "raw"
    raw.mkdir()
    write_dump(raw / "enwiki-20220601-pages-articles.xml", "en", [Page("Old", "Old text.", 1)])
    write_dump(raw / "enwiki-20220701-pages-articles.xml.bz2", "en", [Page("New", "New text.", 1), Page("B", "B.", 2)])
    stats, docs = run(raw, tmp_path / "out")
    assert sorted((d.id, d.text) for d in docs) == [("enwiki/1", "New text."), ("enwiki/2", "B.")]
    assert (f"warning: {raw}/enwiki-20220601-pages-articles.xml: not read: older dump of enwiki (20220601) than "
            "enwiki-20220701-pages-articles.xml.bz2; one dump of each wiki is read, the newest"
            ) in capsys.readouterr().err


def test_dates_dumps_and_parquet_folders_each_wiki_read_once() -> None:
    kept, skipped = select_dump_files([
        "r/enwiki-latest-pages-articles.xml.bz2", "r/enwiki-20990101-pages-articles.xml.bz2",
        "r/dewiki-20220701-pages-articles.xml.bz2", "r/20231101.de/train-0.parquet",
        "r/20231101.fr/train-0.parquet", "r/20231101.fr/train-1.parquet", "r/20220301.fr/train-0.parquet",
        "r/enwiki-20220701-pages-articles-sample.xml",  # a tagged file is a dump of its own
    ])
    assert kept == ["r/enwiki-latest-pages-articles.xml.bz2", "r/dewiki-20220701-pages-articles.xml.bz2",
                    "r/20231101.fr/train-0.parquet", "r/20231101.fr/train-1.parquet",
                    "r/enwiki-20220701-pages-articles-sample.xml"]
    assert skipped == {
        "r/enwiki-20990101-pages-articles.xml.bz2": "older dump of enwiki (20990101) than "
                                                    "enwiki-latest-pages-articles.xml.bz2; one dump of each wiki "
                                                    "is read, the newest",
        "r/20231101.de/train-0.parquet": "de is read from its dump dewiki-20220701-pages-articles.xml.bz2",
        "r/20220301.fr/train-0.parquet": "older parquet folder of fr (20220301) than 20231101.fr; the newest is read",
    }


def test_one_file_compressed_and_not_is_read_once() -> None:
    kept, skipped = select_dump_files(["r/enwiki-20220701-pages-articles1.xml-p1p9",
                                       "r/enwiki-20220701-pages-articles1.xml-p1p9.bz2",
                                       "r/enwiki-20220701-pages-articles2.xml-p10p20.bz2"])
    assert kept == ["r/enwiki-20220701-pages-articles1.xml-p1p9", "r/enwiki-20220701-pages-articles2.xml-p10p20.bz2"]
    assert skipped == {"r/enwiki-20220701-pages-articles1.xml-p1p9.bz2":
                       "same file as enwiki-20220701-pages-articles1.xml-p1p9"}


# --- read-time drops and bad pages -----------------------------------------------------------


def test_keep_dropped_records_redirects_and_other_namespaces(tmp_path: Path) -> None:
    raw = raw_enwiki(tmp_path, [
        Page("Alder", "Text.", 1), Page("Old", "#REDIRECT [[Alder]]", 2, redirect_to="Alder"),
        Page("Talk:Alder", "Is this right?", 3, ns=1)])
    report = run_source(Wikipedia(), str(raw), str(tmp_path / "out"), workers=1, show_progress=False, keep_dropped=True)
    dropped = sorted((d.id, d.meta["drop_stage"], d.meta["drop_reason"], d.meta["title"], d.text)
                     for d in read_corpus(tmp_path / "out" / "wikipedia" / "dropped"))
    assert dropped == [("enwiki/2", "read", "redirect", "Old", "#REDIRECT [[Alder]]"),
                       ("enwiki/3", "read", "not_main_namespace", "Talk:Alder", "Is this right?")]
    assert report.stats["stages"][0]["dropped"] == {"redirect": 1, "not_main_namespace": 1}


@pytest.mark.slow
def test_bad_pages_and_rows_are_skipped_and_counted_and_the_run_goes_on(tmp_path: Path) -> None:
    raw = raw_enwiki(tmp_path, [
        Page("Good", "Good text.", 1),
        Page("Surrogate", "Half a pair: &#xD800; here.", 2),  # escaped once more in the XML: wikitext entity
        Page("Huge id", "Text.", 1 << 63),
        Page("Largest id", "Last text.", (1 << 63) - 1),
    ])
    (raw / "enwiki-20220701-pages-articles-noid.xml").write_text(
        dump_xml("en", [Page("No id", "Text.", 7)]).replace("<id>7</id>", "<id>seven</id>", 1))
    folder = raw / "20231101.de"  # a language without a dump here: its parquet folder is read
    folder.mkdir()
    pq.write_table(pa.table({"id": ["5", None, "99999999999999999999"], "title": ["Five", "Null", "Big"],
                             "text": ["Five text.", "Null text.", "Big text."]}), folder / "train.parquet")
    done = subprocess.run([script("pipeline"), "run", "wikipedia", "--input", str(raw), "--corpus",
                           str(tmp_path / "out"), "--workers", "1", "--no-progress"],
                          check=False, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    stats = json.loads((tmp_path / "out" / "wikipedia" / "stats.json").read_text())
    read, clean = stats["stages"][0], stats["stages"][1]
    assert read["dropped"] == {"invalid_page_id": 4}  # 2^63, "seven", a null and a too-large parquet id
    assert clean["dropped"] == {"invalid_character": 1}
    docs = sorted((d.id, d.text) for d in read_corpus(tmp_path / "out" / "wikipedia"))
    assert docs == [("dewiki/5", "Five text."), ("enwiki/1", "Good text."), (f"enwiki/{(1 << 63) - 1}", "Last text.")]


# --- real dumps (../shared/realdata/wikipedia: Ukrainian and Vietnamese Wikipedia) --------------

REAL = REAL_WIKIPEDIA
DEBRIS = re.compile(r"\(\s*[;,]|[;,]\s*\)")


def _real_dumps() -> list[Path]:
    if not REAL.is_dir():
        pytest.skip(f"real Wikipedia dumps not present ({REAL}): only on the project's machines")
    return sorted(REAL.glob("*.xml.bz2"))


def _raw_pages(path: Path) -> dict[str, str]:
    """Independent reading: lxml over the dump, main-namespace pages that are not redirects."""
    lang = path.name.split("wiki-", 1)[0]
    pages: dict[str, str] = {}
    with bz2.open(path) as stream:
        try:
            for _, page in etree.iterparse(stream, tag="{*}page", resolve_entities=False, no_network=True):
                if page.findtext("{*}ns") == "0" and page.find("{*}redirect") is None:
                    pages[f"{lang}wiki/{page.findtext('{*}id')}"] = page.findtext("{*}revision/{*}text") or ""
                page.clear()
        except etree.XMLSyntaxError:
            pass  # both files end without their closing tags: the pages before are whole
    return pages


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict[str, str], Path]:
    _real_dumps()
    out = tmp_path_factory.mktemp("real") / "out"
    report = run_source(Wikipedia(WikipediaConfig(languages=["uk", "vi"])), str(REAL), str(out), workers=1,
                        show_progress=False, keep_dropped=True)
    return report.stats, {d.id: d.text for d in read_corpus(out / "wikipedia")}, out / "wikipedia"


@pytest.mark.slow
def test_real_dumps_keep_every_plain_prose_paragraph(real_run: tuple[dict, dict[str, str], Path]) -> None:
    _, docs, _ = real_run
    raw = {doc_id: text for path in _real_dumps() for doc_id, text in _raw_pages(path).items()}
    assert len(raw) == 518 and set(docs) <= set(raw)
    checked, missing = 0, []
    for doc_id, wikitext in raw.items():
        flat = " ".join(docs.get(doc_id, "").split())
        for paragraph in wikitext_prose(wikitext):
            checked += 1
            if " ".join(paragraph.split()) not in flat:
                missing.append((doc_id, paragraph))
    assert checked > 700 and missing == []
    # The 166 KB article whose malformed [[Файл: link took 62 KB of prose with it.
    life = next(text for doc_id, text in docs.items() if text.startswith("Життя"))
    assert "Онтогенез тварин включає такі стадії:" in life and len(life) > 100_000


@pytest.mark.slow
def test_real_dumps_leave_no_wiki_markup(real_run: tuple[dict, dict[str, str], Path]) -> None:
    _, docs, _ = real_run
    raw = {doc_id: text for path in _real_dumps() for doc_id, text in _raw_pages(path).items()}
    markup = {doc_id: sorted(set(residue("wikipedia", text)) - {"(; debris", ", ) debris"})
              for doc_id, text in docs.items()}
    assert {doc_id: found for doc_id, found in markup.items() if found} == {}
    # "(;" and ", )" only where the article's author wrote them ("-ти,)", "null;)", "),)").
    for doc_id, text in docs.items():
        for match in DEBRIS.finditer(text):
            assert text[max(0, match.start() - 1): match.end()] in raw[doc_id], (doc_id, match.group())


@pytest.mark.slow
def test_real_dumps_record_read_time_drops(real_run: tuple[dict, dict[str, str], Path]) -> None:
    stats, docs, folder = real_run
    read = stats["stages"][0]
    assert read["dropped"] == {"redirect": 16, "not_main_namespace": 8, "malformed_xml": 2}
    dropped = Counter(d.meta["drop_reason"] for d in read_corpus(folder / "dropped") if d.meta["drop_stage"] == "read")
    assert dropped == {"redirect": 16, "not_main_namespace": 8}
    assert len(docs) == 517


def test_real_dumps_under_split_names_and_in_two_forms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uk = next(p for p in _real_dumps() if p.name.startswith("ukwiki"))
    # Hard links (a copy across file systems): a symlink out of the input folder is not read.
    for name in ("ukwiki-20230501-pages-articles-multistream1.xml-p1p7000.bz2",
                 "ukwiki-20230501-pages-articles1.xml-p1p7000.bz2"):
        try:
            os.link(uk, tmp_path / name)
        except OSError:
            shutil.copyfile(uk, tmp_path / name)
    inputs = Wikipedia(WikipediaConfig(languages=["uk"])).list_inputs(str(tmp_path))
    assert [Path(p).name for p in inputs] == ["ukwiki-20230501-pages-articles-multistream1.xml-p1p7000.bz2"]
    assert "ukwiki-20230501-pages-articles1.xml-p1p7000.bz2: not read: same dump" in capsys.readouterr().err
    first = [d for d in islice(Wikipedia(WikipediaConfig(languages=["uk"])).read(inputs[0]), 40)
             if isinstance(d, Document)]
    assert first and all(d.id.startswith("ukwiki/") for d in first)


@pytest.mark.slow
def test_audit_on_the_real_dumps_finds_no_missing_prose(real_run: tuple[dict, dict[str, str], Path]) -> None:
    audit = run_audit("wikipedia", real_run[2], REAL)
    assert (audit.documents, audit.paragraphs, audit.missing, audit.absent_documents) == (517, 737, 0, 1)
    assert set(audit.occurrences) <= {", ) debris", "(; debris"}
