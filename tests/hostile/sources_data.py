"""Good inputs of every source, made by the tests, to stand beside the hostile ones: a run must
keep these whatever else is in the folder."""

from __future__ import annotations

import json
import random
from pathlib import Path

from sources.samples.arxiv import tar_gz
from sources.samples.commoncrawl import warc_record, write_members
from sources.samples.github import LICENSES
from sources.samples.stackexchange import posts_xml
from sources.samples.wikipedia import Page, dump_xml
from tests.hostile.helpers import json_line, write_lines

C4_PAGE = " ".join(f"Sentence number {n} of a good page is here." for n in range(6))
BOOK = "It was a quiet morning in the valley and the river ran slowly past the mill. " * 20
CODE = "def area(width, height):\n    return width * height\n"
ARTICLE = "'''Alder River''' is a [[river]] in the north. It flows into a lake."
PAPER = r"""\documentclass{article}
\newcommand{\R}{\mathbb{R}}
\begin{document}
\section{Intro}
Every $x \in \R$ is real.
\end{document}
"""
PAPER_TEXT = "\\section{Intro}\nEvery $x \\in \\mathbb{R}$ is real."
MIT = LICENSES["MIT"].format(year=2023, owner="Example Authors")


def c4_lines(n: int = 1) -> list[bytes]:
    return [json_line(C4_PAGE, url=f"https://a.example/{i}", timestamp="2019-04-25T12:57:54Z") for i in range(n)]


def github_row(path: str = "a.py", content: str = CODE) -> bytes:
    return json.dumps({"repo_name": "o/r", "path": path, "content": content, "license": "mit"}).encode()


def github_repo(root: Path, name: str, files: dict[str, str | bytes]) -> Path:
    for rel, content in {"LICENSE": MIT, **files}.items():
        path = root / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root / name


def wiki_dump(pages: int = 3) -> str:
    return dump_xml("en", [Page(f"Page {i}", ARTICLE, i) for i in range(1, pages + 1)])


def se_site(questions: int = 1) -> bytes:
    rows: list[dict] = []
    for q in range(1, questions + 1):
        rows.append({"Id": 2 * q - 1, "PostTypeId": 1, "Score": 1, "Title": f"Question {q}", "Body": "<p>How?</p>"})
        rows.append({"Id": 2 * q, "PostTypeId": 2, "ParentId": 2 * q - 1, "Score": 1, "Body": "<p>Like so.</p>"})
    return posts_xml(rows)


def wet_records(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [warc_record(rng, "conversion", f"https://a.example/{i}", f"Page {i}. {BOOK}".encode(), "text/plain")
            for i in range(n)]


def write_wet(path: Path, n: int = 2, seed: int = 0) -> Path:
    write_members(path, wet_records(n, seed))
    return path


def write_paper(path: Path, members: list | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tar_gz(members if members is not None else [("main.tex", PAPER.encode())]))
    return path


def write_c4(path: Path, n: int = 1) -> Path:
    return write_lines(path, c4_lines(n))
