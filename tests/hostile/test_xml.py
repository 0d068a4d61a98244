"""Hostile and malformed XML for the two XML sources (Wikipedia dumps, Stack Exchange
Posts.xml): entity-expansion bombs and external entities never expand or reach the disk or
network, malformed XML keeps what was read before it (a dump) or fails the file alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sources.samples.stackexchange import entity_bomb_xml
from sources.samples.wikipedia import BOMB, Page, dump_xml
from sources.stackexchange import StackExchange, StackExchangeConfig
from sources.wikipedia import Wikipedia
from tests.hostile.helpers import failures, read_drops, run
from tests.hostile.sources_data import ARTICLE, se_site, wiki_dump

DUMP = "enwiki-20220701-pages-articles{}.xml"
# Past the 64 KiB prologue the readers look at for a DOCTYPE: libxml2 must still refuse.
HIDE = "<!--" + "x" * 70_000 + "-->\n"
SECRET = "TOP-SECRET-LINE"


def _wiki(tmp_path: Path, hostile: dict[str, str | bytes]) -> tuple[dict, list]:
    raw = tmp_path / "wiki"
    raw.mkdir()
    (raw / DUMP.format("-good")).write_text(wiki_dump())
    for name, data in hostile.items():
        (raw / DUMP.format(name)).write_bytes(data if isinstance(data, bytes) else data.encode())
    return run(Wikipedia(), raw, tmp_path / "out-wiki")


def _se(tmp_path: Path, hostile: dict[str, bytes]) -> tuple[dict, list]:
    raw = tmp_path / "se"
    (raw / "good").mkdir(parents=True)
    (raw / "good/Posts.xml").write_bytes(se_site())
    for site, data in hostile.items():
        (raw / site).mkdir()
        (raw / site / "Posts.xml").write_bytes(data)
    return run(StackExchange(StackExchangeConfig(largest_sites=0)), raw, tmp_path / "out-se")


def _failed_sites(stats: dict) -> dict[str, str]:
    return {Path(f["path"]).parent.name: f["problem"] for f in stats["files"]["failed"]}


def test_entity_expansion_bombs_are_refused(tmp_path: Path) -> None:
    hidden_wiki = BOMB.replace("<!DOCTYPE", HIDE + "<!DOCTYPE", 1)
    stats, docs = _wiki(tmp_path, {"-bomb": BOMB, "-hidden": hidden_wiki})
    assert len(docs) == 3
    assert failures(stats)[DUMP.format("-bomb")].startswith("dtd_not_allowed")
    assert failures(stats)[DUMP.format("-hidden")].startswith(
        "malformed_xml (Maximum entity amplification factor exceeded")
    hidden_se = entity_bomb_xml().replace(b"<!DOCTYPE", HIDE.encode() + b"<!DOCTYPE", 1)
    stats, docs = _se(tmp_path, {"bomb": entity_bomb_xml(), "hidden": hidden_se})
    assert [d.id for d in docs] == ["good/1"]
    assert _failed_sites(stats)["bomb"].startswith("refused: the XML declares a DTD")
    assert _failed_sites(stats)["hidden"].startswith("malformed XML (Maximum entity amplification factor exceeded")


def test_external_entities_are_never_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    doctype = f'<!DOCTYPE m [<!ENTITY x SYSTEM "file://{secret}">]>'
    page = "<page><title>A</title><ns>0</ns><id>9</id><revision><text>&x;</text></revision></page>"
    wiki = f'<?xml version="1.0"?>{doctype}<mediawiki>{page}</mediawiki>'
    hidden = f'<?xml version="1.0"?>{HIDE}{doctype}<mediawiki>{page}</mediawiki>'
    stats, docs = _wiki(tmp_path, {"-external": wiki, "-hidden": hidden})
    assert failures(stats) == {DUMP.format("-external"): failures(stats)[DUMP.format("-external")]}
    assert failures(stats)[DUMP.format("-external")].startswith("dtd_not_allowed")
    # Hidden past the prologue check, the entity stays an unexpanded reference: an empty page.
    assert read_drops(stats) == {"empty_page": 1}
    assert len(docs) == 3 and not any(SECRET in d.text for d in docs)
    row = '<row Id="1" PostTypeId="1" Score="1" Title="t" Body="&x;" />'
    se = f'<?xml version="1.0"?>{doctype.replace(" m ", " posts ")}<posts>{row}</posts>'.encode()
    hidden_se = f'<?xml version="1.0"?>{HIDE}{doctype.replace(" m ", " posts ")}<posts>{row}</posts>'.encode()
    stats, docs = _se(tmp_path, {"external": se, "hidden": hidden_se})
    assert [d.id for d in docs] == ["good/1"]
    assert _failed_sites(stats)["external"].startswith("refused: the XML declares a DTD")
    assert _failed_sites(stats)["hidden"].startswith("malformed XML (Attribute references external entity 'x'")


def _second_page(damage):
    """`damage` applied to the second of three pages of a dump."""
    def apply(xml: str) -> str:
        first, second, third = xml.split("<page>")[1:]
        return xml.split("<page>")[0] + "<page>" + first + "<page>" + damage(second) + "<page>" + third
    return apply


@pytest.mark.parametrize("damage", [
    _second_page(lambda page: page.replace("</title>", "</ttl>")),
    _second_page(lambda page: page.replace("<ns>", "<<<ns>")),
    lambda xml: xml[: xml.index("<page>", xml.index("<page>") + 1) + 40],
], ids=["mismatched_tag", "broken_tag", "cut_mid_page"])
def test_malformed_dump_keeps_the_pages_before_the_damage(tmp_path: Path, damage) -> None:
    # The first page is kept, the rest of the dump counts once with its reason.
    # The damaged part holds other pages than the good one (ids are unique in a source).
    other_pages = dump_xml("en", [Page(f"Page {i}", ARTICLE, i) for i in (4, 5, 6)])
    stats, docs = _wiki(tmp_path, {"-damaged": damage(other_pages)})
    assert sorted(d.id for d in docs) == ["enwiki/1", "enwiki/2", "enwiki/3", "enwiki/4"]
    assert read_drops(stats) == {"malformed_xml": 1}
    assert failures(stats) == {}


def test_malformed_posts_xml_fails_that_site_alone(tmp_path: Path) -> None:
    cut = se_site(3)[:-40]
    stats, docs = _se(tmp_path, {
        "unclosed": se_site(3).replace(b"/>", b" ", 1),
        "cut": cut,
        "not-xml": b"\x00\x01 this is not XML",
        "wrong-root": b'<?xml version="1.0"?><html><body>nothing</body></html>',
    })
    # Rows stream as they are parsed (a site may be read by ranges): the questions whole before
    # the damage are kept, as a dump's pages before its damage are.
    before_cut = [f"cut/{i.decode()}" for i in re.findall(rb'<row Id="(\d+)" PostTypeId="1"[^>]*/>', cut)]
    assert before_cut == ["cut/1", "cut/3", "cut/5"]
    assert sorted(d.id for d in docs) == before_cut + ["good/1"]
    problems = _failed_sites(stats)
    assert sorted(problems) == ["cut", "not-xml", "unclosed", "wrong-root"]
    assert all(problems[site].startswith("malformed XML") for site in ("cut", "not-xml", "unclosed"))
    # A well-formed file of another shape (an error page saved as Posts.xml) fails too, named
    # by its root: never a site of no posts. Records read: good's question and answer, and the
    # rows whole before the cut.
    assert problems["wrong-root"] == "not a Stack Exchange Posts.xml: its root element is <html>, not <posts>"
    assert stats["documents_read"] == 2 + len(re.findall(rb"<row [^>]*/>", cut))
