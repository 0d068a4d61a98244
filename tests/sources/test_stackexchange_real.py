"""The Stack Exchange source on real dumps (../shared/realdata/stackexchange: two sites as
folders with Posts.xml, one as `<site>.7z`), judged against an independent reading of each
Posts.xml with lxml, and of each post's HTML with plain regular expressions."""

from __future__ import annotations

import html
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import py7zr
import pytest
from lxml import etree

from pipeline.commands.run import run_source
from pipeline.engine.shards import read_corpus
from sources.stackexchange import ANSWER_SEPARATOR, StackExchange
from tests.conftest import REPO

pytestmark = pytest.mark.slow  # runs the source end to end
REAL = REPO.parent / "shared" / "realdata" / "stackexchange"
TAG = re.compile(r"<[^>]*>")
PRE = re.compile(r"<pre[^>]*>(.*?)</pre>", re.DOTALL | re.IGNORECASE)
LEFTOVER_MARKUP = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>|&(?:[a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);")


@dataclass
class Site:
    rows: int = 0
    questions: dict[int, dict] = field(default_factory=dict)
    answers: dict[int, list[dict]] = field(default_factory=lambda: defaultdict(list))


def _read_posts_xml(path: Path) -> Site:
    """Every row of Posts.xml as lxml reads it: the oracle."""
    site = Site()
    for _, row in etree.iterparse(str(path), tag="row"):
        site.rows += 1
        attrs = dict(row.attrib)
        if attrs["PostTypeId"] == "1":
            site.questions[int(attrs["Id"])] = attrs
        elif attrs["PostTypeId"] == "2":
            site.answers[int(attrs["ParentId"])].append(attrs)
        row.clear()
    return site


def _plain(body: str) -> str:
    """A post's text by regex: tags out, entities decoded (the oracle for what text a post holds)."""
    return html.unescape(TAG.sub(" ", body))


def _letters(text: str) -> str:
    """The letters of a text in order: what must survive whatever the layout (list markers
    "- " and "1. " are the renderer's own, and inline tags like CO<sub>2</sub> split no word)."""
    return re.sub(r"[\W\d_]+", "", text)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Site], dict, dict[str, dict]]:
    if not REAL.is_dir():
        pytest.skip(f"{REAL} absent: the real Stack Exchange dumps are not on this machine")
    tmp = tmp_path_factory.mktemp("se-real")
    sites: dict[str, Site] = {}
    for entry in sorted(REAL.iterdir()):
        if entry.is_dir():
            sites[entry.name] = _read_posts_xml(entry / "Posts.xml")
        elif entry.name.endswith(".7z"):
            with py7zr.SevenZipFile(entry) as archive:
                archive.extractall(tmp / entry.name)
            sites[entry.name.removesuffix(".7z")] = _read_posts_xml(tmp / entry.name / "Posts.xml")
    report = run_source(StackExchange(), str(REAL), str(tmp / "out"), workers=2, show_progress=False)
    docs = {d.id: {"text": d.text, **d.meta} for d in read_corpus(tmp / "out" / "stackexchange")}
    return sites, report.stats, docs


def test_every_question_of_the_real_dumps_is_kept(real) -> None:
    sites, stats, docs = real
    assert sorted(sites) == ["coffee.stackexchange.com", "genai.stackexchange.com", "matheducators.stackexchange.com"]
    expected = {f"{name}/{qid}" for name, site in sites.items() for qid in site.questions}
    assert set(docs) == expected
    assert len(docs) == 225 + 397 + sum(1 for _ in sites["genai.stackexchange.com"].questions)
    unanswered = sum(1 for site in sites.values() for qid in site.questions if not site.answers.get(qid))
    assert unanswered == 65  # the questions the old default dropped
    assert sum(1 for d in docs.values() if d["answer_count"] == 0) == unanswered
    stages = {s["name"]: s for s in stats["stages"]}
    assert stages["unanswered"]["dropped"] == {} and stages["largest_sites"]["dropped"] == {}
    assert stats["files"]["failed"] == []
    # Nothing on these sites is nested past lxml's depth limit, and no answer is an orphan.
    assert "html_too_deep" not in stages["read"]["dropped"] and "answer_html_too_deep" not in stages["read"]["dropped"]


def test_metadata_matches_posts_xml(real) -> None:
    sites, _, docs = real
    for name, site in sites.items():
        for qid, question in site.questions.items():
            doc = docs[f"{name}/{qid}"]
            assert (doc["site"], doc["question_id"], doc["question_score"], doc["title"], doc["site_posts"]) == (
                name, qid, int(question["Score"]), question["Title"], site.rows)
            assert doc["answer_count"] == len(site.answers.get(qid, []))
            assert doc["text"].startswith(question["Title"].strip() + "\n\n")


def test_answers_follow_in_descending_numeric_score_then_id(real) -> None:
    sites, _, docs = real
    checked_orders = 0
    for name, site in sites.items():
        for qid, question in site.questions.items():
            parts = docs[f"{name}/{qid}"]["text"].split(ANSWER_SEPARATOR)
            answers = sorted(site.answers.get(qid, []), key=lambda a: (-int(a["Score"]), int(a["Id"])))
            assert len(parts) == 1 + len(answers)
            assert _letters(parts[0]) == _letters(question["Title"] + " " + _plain(question["Body"]))
            for part, answer in zip(parts[1:], answers):
                assert _letters(part) == _letters(_plain(answer["Body"])), (name, qid, answer["Id"])
            scores = [int(a["Score"]) for a in answers]
            # A string sort (RedPajama's) would differ wherever scores have unequal digit counts.
            checked_orders += scores != sorted(scores, key=str, reverse=True)
    assert checked_orders > 0


def _has_block(text: str, lines: list[str]) -> bool:
    """The lines, in order and whole, in `text`: as they are, or (inside a list item) each under
    the same indent, the first one perhaps after the item's marker instead."""
    for indent in range(13):
        pad = " " * indent
        block = "\n".join(pad + line if line else line for line in lines)
        if re.search(r"(?:^|\n)" + re.escape(block) + r"(?:\n|$)", text):
            return True
        if indent and re.search(r"(?:- |\d+\. )" + re.escape(block[indent:]) + r"(?:\n|$)", text):
            return True
    return False


def test_code_blocks_are_kept_line_for_line(real) -> None:
    sites, _, docs = real
    blocks = 0
    for name, site in sites.items():
        posts = [(qid, q) for qid, q in site.questions.items()]
        posts += [(int(a["ParentId"]), a) for answers in site.answers.values() for a in answers]
        for qid, post in posts:
            text = docs[f"{name}/{qid}"]["text"]
            for inner in PRE.findall(post.get("Body", "")):
                code = html.unescape(TAG.sub("", inner)).strip("\n")
                if code.strip():
                    blocks += 1
                    assert _has_block(text, code.split("\n")), (name, qid, post["Id"])
    assert blocks >= 36  # genai alone has 36 <pre> blocks


def test_no_html_is_left(real) -> None:
    sites, _, docs = real
    for name, site in sites.items():
        for qid, question in site.questions.items():
            text = docs[f"{name}/{qid}"]["text"]
            sources = _plain(question["Body"]) + "".join(_plain(a["Body"]) for a in site.answers.get(qid, []))
            # Markup-looking text may remain only where a post shows it as text (&lt;div&gt; in code).
            for leftover in LEFTOVER_MARKUP.findall(text):
                assert leftover in sources, (name, qid, leftover)
