"""The page holds corpus text only escaped, and nothing that would reach the network."""

from __future__ import annotations

import json
import re
from pathlib import Path

from lxml import html as lxml_html

from pipeline.commands.run import run_source
from pipeline.report.facts import read_source_facts
from pipeline.report.page import ResidueRow, render
from sources.jsonl import Jsonl, JsonlConfig

HOSTILE = [
    {"id": "<img src=http://127.0.0.1:9/id.png>", "text": "<script>fetch('http://127.0.0.1:9/')</script>" * 3},
    {"id": "x\"><iframe src=//127.0.0.1:9>", "text": "<link rel=stylesheet href=http://127.0.0.1:9/a.css>"},
    {"id": "short", "text": "<svg onload=alert(1)>"},  # dropped (under 60 characters): an example
]


def page_of(tmp_path: Path) -> str:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "docs.jsonl").write_text("".join(json.dumps(doc) + "\n" for doc in HOSTILE))
    run_source(Jsonl(JsonlConfig(min_chars=60)), str(raw), str(tmp_path / "corpus"), workers=1,
               show_progress=False, keep_dropped=True)
    facts = read_source_facts(tmp_path / "corpus" / "jsonl")
    residue = {"jsonl": [ResidueRow("<b>class</b>", 1, 2, HOSTILE[0]["id"])]}
    return render("report <of> & a corpus", [facts], residue, "llama1", 0, [])


def test_corpus_text_is_escaped_and_shown_as_text(tmp_path: Path) -> None:
    page = page_of(tmp_path)
    tree = lxml_html.fromstring(page)
    # No element the corpus could have brought: the only tags are the page's own.
    assert not tree.xpath("//script | //img | //iframe | //link | //*[@onload]")
    shown = tree.xpath("//pre/text()")
    assert "<svg onload=alert(1)>" in shown  # the dropped example, as a reader sees its text
    assert HOSTILE[0]["id"] in tree.xpath("//table[@class='residue']//td/text()")
    assert tree.xpath("//title/text()") == ["report <of> & a corpus"]


def test_the_page_references_nothing_outside_itself(tmp_path: Path) -> None:
    page = page_of(tmp_path)
    tree = lxml_html.fromstring(page)
    for element in tree.iter():
        for name, value in element.attrib.items():
            local = name.rsplit("}", 1)[-1]
            if local in ("src", "href") or local.endswith(":href"):
                assert value.startswith("#"), (element.tag, name, value)  # in-page references only (SVG's own)
    assert not re.search(r"url\(\s*['\"]?(?!#)", page)  # no CSS fetch
    assert "@import" not in page and "<script" not in page.lower().replace("&lt;script", "")
