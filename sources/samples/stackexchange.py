"""Sample input of Stack Exchange: 30 small sites of different sizes in the dump's Posts.xml
format, most as folders and three as .7z archives, plus a truncated archive and a file with
an entity-expansion bomb.

Posts carry HTML bodies with code blocks, lists and entities; answers have varied scores
(one question has answers scored 9, 100, 10, -1 and 2); some questions have no answers, one
answer's question is missing, and a tag-wiki post is not a question at all.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import py7zr
from lxml import etree

from sources.samples.text import paragraph, sentence

TOPICS = ["astronomy", "beekeeping", "chemistry", "cooking", "cycling", "datascience", "earthscience",
          "electronics", "gardening", "genealogy", "history", "languages", "linguistics", "math",
          "mechanics", "music", "outdoors", "parenting", "pets", "philosophy", "photography", "physics",
          "puzzling", "robotics", "security", "sports", "travel", "woodworking", "writing", "literature"]
ARCHIVED = {"cooking", "math", "writing"}
SCORED_ANSWERS = [9, 100, 10, -1, 2]
FIXED_MTIME = 315532800  # 1980-01-01, as zip archives date their members


def posts_xml(rows: list[dict[str, str]]) -> bytes:
    """A Posts.xml holding `rows` (attribute name -> value), escaped as the real dumps are."""
    root = etree.Element("posts")
    for row in rows:
        etree.SubElement(root, "row", {k: str(v) for k, v in row.items()})
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


def entity_bomb_xml() -> bytes:
    """A Posts.xml whose body is a billion-laughs entity: 10^9 copies of "lol" if expanded."""
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE posts [{entities}]>\n<posts>\n'
            f'  <row Id="1" PostTypeId="1" Score="1" Title="boom" Body="&lol9;" />\n</posts>\n').encode()


def question_body(rng: random.Random) -> str:
    code = "for item in items:\n    if item.size &gt; 10:\n        print(item)"
    return (f"<p>{sentence(rng)} How do I fix the loop below?</p>\n<pre><code>{code}\n</code></pre>\n"
            f"<p>I tried:</p>\n<ul>\n<li>restarting &amp; cleaning</li>\n<li>the <code>--force</code> flag</li>\n"
            f"</ul>\n")


def answer_body(rng: random.Random, score: int) -> str:
    return (f"<p>Answer with score {score}: {paragraph(rng, 2)}</p>\n"
            f"<ol><li>{sentence(rng)}</li><li>{sentence(rng)}</li></ol>\n")


def site_rows(rng: random.Random, site_index: int) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    next_id = 1
    questions = 2 + site_index % 7 + (3 if site_index < 5 else 0)
    for q in range(questions):
        qid = next_id
        rows.append({"Id": qid, "PostTypeId": 1, "Score": rng.randint(-2, 30), "Title": f"{sentence(rng)[:-1]}?",
                     "Body": question_body(rng)})
        next_id += 1
        scores = SCORED_ANSWERS if q == 0 else ([] if q % 3 == 2 else [rng.randint(-3, 20) for _ in range(q % 3 + 1)])
        for score in scores:
            rows.append({"Id": next_id, "PostTypeId": 2, "ParentId": qid, "Score": score,
                         "Body": answer_body(rng, score)})
            next_id += 1
    rows.append({"Id": next_id, "PostTypeId": 2, "ParentId": 99999, "Score": 1, "Body": "<p>Orphan answer.</p>"})
    rows.append({"Id": next_id + 1, "PostTypeId": 4, "Score": 0, "Body": "<p>Tag wiki excerpt.</p>"})
    rng.shuffle(rows)  # answers need not follow their question in the file
    return rows


def write(folder: Path, seed: int) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for index, topic in enumerate(TOPICS):
        site = f"{topic}.stackexchange.com"
        xml = posts_xml(site_rows(rng, index))
        if topic in ARCHIVED:
            staging = folder / f".{site}.staging"
            staging.mkdir(exist_ok=True)
            (staging / "Posts.xml").write_bytes(xml)
            os.utime(staging / "Posts.xml", (FIXED_MTIME, FIXED_MTIME))  # the same archive bytes every run
            with py7zr.SevenZipFile(folder / f"{site}.7z", "w") as archive:
                archive.write(staging / "Posts.xml", "Posts.xml")
            (staging / "Posts.xml").unlink()
            staging.rmdir()
        else:
            (folder / site).mkdir(exist_ok=True)
            (folder / site / "Posts.xml").write_bytes(xml)
    # A download cut short, and a hostile file: both fail alone, counted, the run goes on.
    whole = (folder / "cooking.stackexchange.com.7z").read_bytes()
    (folder / "truncated.stackexchange.com.7z").write_bytes(whole[: len(whole) // 2])
    (folder / "hostile.stackexchange.com").mkdir(exist_ok=True)
    (folder / "hostile.stackexchange.com" / "Posts.xml").write_bytes(entity_bomb_xml())
