"""The Stack Exchange source end to end on sites the test writes: answer order, the 28
largest sites, code blocks, unanswered questions, and hostile or broken inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import py7zr
import pytest
from datasets import Dataset
from lxml import etree

from pipeline.commands.run import run_source
from pipeline.common.errors import UserError
from pipeline.commands.sample import write_samples
from pipeline.engine.document import Skipped
from pipeline.engine.heartbeat import send_heartbeats_to
from sources.samples.stackexchange import entity_bomb_xml, posts_xml
from sources.stackexchange import ANSWER_SEPARATOR, StackExchange, StackExchangeConfig, site_name

CODE = "def area(w, h):\n    return w * h  # a < b &amp; c"


def _question(qid: int, score: int = 1, body: str = "<p>How?</p>") -> dict:
    return {"Id": qid, "PostTypeId": 1, "Score": score, "Title": f"Question {qid}", "Body": body}


def _answer(aid: int, parent: int, score: int) -> dict:
    return {"Id": aid, "PostTypeId": 2, "ParentId": parent, "Score": score, "Body": f"<p>answer scored {score}</p>"}


def _site(root: Path, site: str, rows: list[dict]) -> None:
    (root / site).mkdir(parents=True, exist_ok=True)
    (root / site / "Posts.xml").write_bytes(posts_xml(rows))


def _rows(folder: Path) -> dict[str, dict]:
    return {r["id"]: r for p in sorted(folder.glob("shard-*.arrow")) for r in Dataset.from_file(str(p)).to_list()}


def _run(inputs: Path, out: Path, config: StackExchangeConfig | None = None, workers: int = 1):
    return run_source(StackExchange(config), str(inputs), str(out), workers=workers, show_progress=False)


def test_answers_are_sorted_by_numeric_score_and_code_survives(tmp_path: Path) -> None:
    body = f"<p>Why does <code>area</code> fail?</p><pre><code>{CODE}\n</code></pre><ul><li>tried A</li><li>tried B</li></ul>"
    rows = [_answer(10 + i, 1, s) for i, s in enumerate([9, 100, 10, -1, 2])] + [_question(1, 7, body)]
    _site(tmp_path / "in", "code.stackexchange.com", rows)
    _run(tmp_path / "in", tmp_path / "out")
    (row,) = _rows(tmp_path / "out/stackexchange").values()
    assert row["text"] == (
        "Question 1\n\nWhy does area fail?\n\n"
        "def area(w, h):\n    return w * h  # a < b & c\n\n- tried A\n- tried B\n\n"
        "A:\n\nanswer scored 100\n\nA:\n\nanswer scored 10\n\nA:\n\nanswer scored 9\n\nA:\n\nanswer scored 2\n\n"
        "A:\n\nanswer scored -1"
    )
    assert {k: v for k, v in row.items() if k != "text"} == {
        "id": "code.stackexchange.com/1", "source": "stackexchange", "site": "code.stackexchange.com",
        "question_id": 1, "question_score": 7, "answer_count": 5, "title": "Question 1", "site_posts": 6,
        "answer_score": None}  # set only on the answer records the join folds in


def test_equal_scores_keep_id_order(tmp_path: Path) -> None:
    _site(tmp_path / "in", "s", [_question(1), _answer(5, 1, 3), _answer(4, 1, 3), _answer(6, 1, 4)])
    _run(tmp_path / "in", tmp_path / "out")
    (row,) = _rows(tmp_path / "out/stackexchange").values()
    assert row["text"].split(ANSWER_SEPARATOR)[1:] == ["answer scored 4", "answer scored 3", "answer scored 3"]


@pytest.mark.slow
def test_only_the_28_largest_of_30_sites_are_kept(tmp_path: Path) -> None:
    # Site k has k + 1 questions, each with one answer: 2 * (k + 1) posts.
    for k in range(30):
        rows = [r for q in range(k + 1) for r in (_question(2 * q + 1), _answer(2 * q + 2, 2 * q + 1, 1))]
        if k == 3:  # one site archived, as the dumps are published
            (tmp_path / "stage").mkdir()
            (tmp_path / "stage/Posts.xml").write_bytes(posts_xml(rows))
            (tmp_path / "in").mkdir(exist_ok=True)
            with py7zr.SevenZipFile(tmp_path / "in/site03.example.7z", "w") as archive:
                archive.write(tmp_path / "stage/Posts.xml", "Posts.xml")
        else:
            _site(tmp_path / "in", f"site{k:02d}.example", rows)
    report = _run(tmp_path / "in", tmp_path / "out", workers=2)
    stages = {s["name"]: s for s in report.stats["stages"]}
    assert stages["largest_sites"] == {"name": "largest_sites", "in": 465, "out": 462,
                                       "dropped": {"not_among_28_largest": 3}}  # sites 0 and 1: 1 + 2 questions
    kept_sites = {r["site"] for r in _rows(tmp_path / "out/stackexchange").values()}
    assert kept_sites == {f"site{k:02d}.example" for k in range(2, 30)}
    everything = _run(tmp_path / "in", tmp_path / "all", StackExchangeConfig(largest_sites=0))
    assert everything.documents_kept == 465


def test_unanswered_questions_are_kept_by_default(tmp_path: Path) -> None:
    _site(tmp_path / "in", "s", [_question(1, 5), _question(2, 50), _answer(3, 1, 0)])
    report = _run(tmp_path / "in", tmp_path / "keep")
    assert report.stats["stages"][-1] == {"name": "unanswered", "in": 2, "out": 2, "dropped": {}}
    kept = _rows(tmp_path / "keep/stackexchange")
    assert kept["s/2"]["text"] == "Question 2\n\nHow?" and kept["s/2"]["answer_count"] == 0
    assert kept["s/1"]["text"] == "Question 1\n\nHow?\n\nA:\n\nanswer scored 0"
    report = _run(tmp_path / "in", tmp_path / "out", StackExchangeConfig(keep_unanswered=False))
    assert report.stats["stages"][-1] == {"name": "unanswered", "in": 2, "out": 1, "dropped": {"no_answers": 1}}
    assert list(_rows(tmp_path / "out/stackexchange")) == ["s/1"]


def test_orphans_other_post_types_and_malformed_rows_are_counted(tmp_path: Path) -> None:
    rows = [_question(1), _answer(2, 1, 1), _answer(3, 77, 1), {"Id": 4, "PostTypeId": 5, "Body": "wiki"},
            {"Id": "x", "PostTypeId": 1, "Body": "bad id"}, {"Id": 6, "PostTypeId": 2, "Body": "no parent"}]
    _site(tmp_path / "in", "s", rows)
    report = _run(tmp_path / "in", tmp_path / "out")
    # Read: six rows, of which one question and two answers are records; the join folds answer 2
    # into question 1 and finds no question 77.
    assert report.stats["stages"][0] == {"name": "read", "in": 6, "out": 3, "dropped": {
        "other_post_type": 1, "malformed_row": 2}}
    assert report.stats["stages"][1] == {"name": "join_answers", "in": 3, "out": 1, "dropped": {
        "answer_without_question": 1, "joined_to_question": 1}, "merged_reasons": ["joined_to_question"]}


def test_entity_bomb_malformed_xml_truncated_archive_and_non_utf8_fail_alone(tmp_path: Path) -> None:
    root = tmp_path / "in"
    _site(root, "good", [_question(1), _answer(2, 1, 1)])
    (root / "bomb").mkdir()
    (root / "bomb/Posts.xml").write_bytes(entity_bomb_xml())
    (root / "broken").mkdir()
    (root / "broken/Posts.xml").write_bytes(b'<?xml version="1.0"?>\n<posts>\n<row Id="1" PostTypeId="1" Body="x"')
    (root / "latin1").mkdir()
    (root / "latin1/Posts.xml").write_bytes(posts_xml([_question(1)]).replace(b"How?", b"caf\xe9?"))
    with py7zr.SevenZipFile(tmp_path / "whole.7z", "w") as archive:
        archive.writestr(posts_xml([_question(1)] * 50), "Posts.xml")
    whole = (tmp_path / "whole.7z").read_bytes()
    (root / "cut.7z").write_bytes(whole[: len(whole) // 2])
    report = _run(root, tmp_path / "out", workers=2)
    problems = {Path(f["path"]).parent.name if f["path"].endswith("Posts.xml") else Path(f["path"]).name: f["problem"]
                for f in report.stats["files"]["failed"]}
    assert sorted(problems) == ["bomb", "broken", "cut.7z", "latin1"]
    assert problems["bomb"].startswith("refused: the XML declares a DTD")
    assert problems["broken"].startswith("malformed XML")
    assert problems["latin1"].startswith("malformed XML")
    assert problems["cut.7z"].startswith("truncated or corrupt 7z archive")
    assert list(_rows(tmp_path / "out/stackexchange")) == ["good/1"]


def test_a_bomb_alone_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "in/bomb").mkdir(parents=True)
    (tmp_path / "in/bomb/Posts.xml").write_bytes(entity_bomb_xml())
    with pytest.raises(UserError, match=r"bomb/Posts.xml: refused: the XML declares a DTD"):
        _run(tmp_path / "in", tmp_path / "out")


def test_site_names() -> None:
    assert site_name("/d/math.stackexchange.com/Posts.xml") == "math.stackexchange.com"
    assert site_name("/d/math.stackexchange.com.7z") == "math.stackexchange.com"
    assert site_name("s3://b/stackoverflow.com-Posts.7z") == "stackoverflow.com"


@pytest.mark.slow
def test_sample_keeps_28_of_30_sites(tmp_path: Path) -> None:
    write_samples(tmp_path / "raw", ["stackexchange"])
    report = _run(tmp_path / "raw/stackexchange", tmp_path / "out", workers=2)
    assert sorted(Path(f["path"]).name for f in report.stats["files"]["failed"]) == [
        "Posts.xml", "truncated.stackexchange.com.7z"]
    read, join, largest, unanswered = report.stats["stages"]
    assert read["dropped"] == {"other_post_type": 30}
    assert join["dropped"]["answer_without_question"] == 30 and set(join["dropped"]) == {
        "answer_without_question", "joined_to_question"}
    assert largest["dropped"] == {"not_among_28_largest": 4}
    assert unanswered["dropped"] == {}  # the 42 unanswered questions are kept
    rows = _rows(tmp_path / "out/stackexchange")
    assert len({r["site"] for r in rows.values()}) == 28
    first = rows["math.stackexchange.com/1"]["text"]
    positions = [first.index(f"Answer with score {s}:") for s in (100, 10, 9, 2, -1)]
    assert positions == sorted(positions)
    assert "    if item.size > 10:\n        print(item)" in first


def test_an_answer_with_no_text_is_counted_not_marked(tmp_path: Path) -> None:
    empty = {"Id": 3, "PostTypeId": 2, "ParentId": 1, "Score": 5, "Body": "<p> </p><!-- only a comment -->"}
    _site(tmp_path / "in", "s", [_question(1), _answer(2, 1, 1), empty])
    report = _run(tmp_path / "in", tmp_path / "out")
    assert report.stats["stages"][0]["dropped"] == {"empty_answer": 1}
    (row,) = _rows(tmp_path / "out/stackexchange").values()
    assert row["text"] == "Question 1\n\nHow?\n\nA:\n\nanswer scored 1" and row["answer_count"] == 1


def test_unpacking_and_parsing_a_site_send_heartbeats_that_move_on(tmp_path: Path) -> None:
    """Stack Exchange's long preparation before its first record tells the engine it is moving
    (pipeline/engine/heartbeat.py): by megabytes unpacked from the .7z, then by megabytes of
    Posts.xml parsed."""
    body = "<p>" + "words of an answer " * 20 + "</p>"
    rows = []
    for q in range(1, 401):  # 400 questions of 100 answers: enough rows for SQLite to work a while
        rows += [_question(q)] + [{**_answer(1000 * q + a, q, a), "Body": body} for a in range(100)]
    xml = posts_xml(rows)
    assert len(xml) > 12 << 20
    (tmp_path / "Posts.xml").write_bytes(xml)
    (tmp_path / "in").mkdir()
    # Stored, not compressed: quick to write, and never over the bomb ratio.
    with py7zr.SevenZipFile(tmp_path / "in" / "beats.example.7z", "w", filters=[{"id": py7zr.FILTER_COPY}]) as archive:
        archive.write(tmp_path / "Posts.xml", "Posts.xml")
    beats: list[tuple[int, str]] = []
    send_heartbeats_to(lambda done, note: beats.append((done, note)))
    try:
        documents = [d for d in StackExchange().read(str(tmp_path / "in" / "beats.example.7z"))
                     if not isinstance(d, Skipped)]
    finally:
        send_heartbeats_to(None)

    # Records in file order: each question, then its 100 answers (ids <site>/<question>/<answer>).
    assert [d.id for d in documents] == [i for q in range(1, 401) for i in
                                         [f"beats.example/{q}"] + [f"beats.example/{q}/{1000 * q + a}" for a in range(100)]]
    unpacked = [b for b in beats if b[1].startswith("unpacked ")]
    loaded = [b for b in beats if b[1].startswith("loaded ")]
    # At least one every few megabytes (py7zr writes in blocks of a few), one a megabyte parsed.
    assert len(unpacked) >= len(xml) // (4 << 20) and len(loaded) >= len(xml) // (1 << 20)
    assert len(unpacked) + len(loaded) == len(beats)
    assert unpacked[-1][1] == f"unpacked {unpacked[-1][0] / 1e6:.1f} MB of Posts.xml"
    # The beats come in order: everything unpacked, then loaded; none repeats its predecessor's
    # `done` (a repeated one would not count as moving on).
    kinds = [b[1].split()[0] for b in beats]
    assert kinds == sorted(kinds, key=["unpacked", "loaded"].index)
    assert all(a[0] != b[0] for a, b in zip(beats, beats[1:]))


def _plain_sites(raw: Path) -> Path:
    """The sample's sites that are plain Posts.xml folders (no archive, no refused bomb)."""
    plain = raw.parent / "plain"
    for posts in sorted(raw.glob("*/Posts.xml")):
        if posts.parent.name != "hostile.stackexchange.com":
            (plain / posts.parent.name).mkdir(parents=True)
            (plain / posts.parent.name / "Posts.xml").write_bytes(posts.read_bytes())
    return plain


def _expected_threads(plain: Path) -> dict[str, list[int]]:
    """Read with lxml alone: each question's id -> the scores of its answers, highest first, ties by id."""
    threads: dict[str, list[int]] = {}
    for posts in sorted(plain.glob("*/Posts.xml")):
        rows = [r.attrib for r in etree.parse(str(posts)).getroot().iter("row")]
        site = posts.parent.name
        for q in (r for r in rows if r["PostTypeId"] == "1"):
            answers = sorted(((-int(a["Score"]), int(a["Id"])) for a in rows
                              if a["PostTypeId"] == "2" and a["ParentId"] == q["Id"]))
            threads[f"{site}/{q['Id']}"] = [-score for score, _ in answers]
    return threads


def test_ranges_give_the_same_shards_as_whole_files_with_one_or_two_workers(tmp_path: Path) -> None:
    write_samples(tmp_path / "raw", ["stackexchange"])
    plain = _plain_sites(tmp_path / "raw/stackexchange")
    tiny = StackExchangeConfig(largest_sites=0, task_bytes=1500)
    inputs = StackExchange(tiny).list_inputs(str(plain))
    sites = len(list(plain.iterdir()))
    assert len(inputs) >= 4 * sites  # several ranges a site
    # Every cut falls where a row starts, and some question's answers were cut off into another range.
    crossing = 0
    for posts in sorted(plain.glob("*/Posts.xml")):
        data = posts.read_bytes()
        cuts = [int(re.search(r"#rows=(\d+)-", p)[1]) for p in inputs if p.startswith(f"{posts}#")][1:]
        assert cuts and all(data[c:c + 5] == b"<row " for c in cuts)
        offsets = {m[1]: m.start() for m in re.finditer(rb'<row Id="(\d+)"', data)}
        for m in re.finditer(rb'<row Id="\d+" PostTypeId="2" ParentId="(\d+)"', data):
            if m[1] in offsets and any(min(m.start(), offsets[m[1]]) < c <= max(m.start(), offsets[m[1]]) for c in cuts):
                crossing += 1
    assert crossing >= sites

    whole = _run(plain, tmp_path / "whole", StackExchangeConfig(largest_sites=0, task_bytes=0))
    one = _run(plain, tmp_path / "one", tiny)
    two = _run(plain, tmp_path / "two", tiny, workers=2)
    assert whole.stats["files"]["total"] == sites and one.stats["files"]["total"] == len(inputs)
    shards = [json.loads((tmp_path / run / "stackexchange/manifest.json").read_text())["shards"]
              for run in ("whole", "one")]
    assert [s["sha256"] for s in shards[0]] == [s["sha256"] for s in shards[1]]  # byte for byte
    rows = _rows(tmp_path / "whole/stackexchange")
    assert _rows(tmp_path / "two/stackexchange") == rows  # two tasks: the same documents, split in two

    expected = _expected_threads(plain)
    assert sorted(rows) == sorted(expected)
    for doc_id, scores in expected.items():
        text = rows[doc_id]["text"]
        assert [int(s) for s in re.findall(r"Answer with score (-?\d+):", text)] == scores, doc_id
        assert rows[doc_id]["answer_count"] == len(scores) == text.count(ANSWER_SEPARATOR)
