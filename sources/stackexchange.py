"""Stack Exchange: each question followed by its answers, best first, from the largest sites.

Input: one folder per site holding `Posts.xml` (the folder's name is the site's), or the
site's archive `<site>.7z` (also `<site>-Posts.7z`, as stackoverflow.com is published).

Reading a site streams Posts.xml (pipeline/formats/stackexchange_posts.py: entities never resolved, a file
that declares a DTD is refused, so an entity-expansion bomb ends as one counted failure) into
a temporary SQLite table (in tempfile's folder, which the engine puts in the task's folder
under the run's output), so that answers can be grouped under their question (by ParentId)
whatever their order in the file and however large the site. A document is the title, the
question and its answers sorted by numeric score, highest first, ties by id, each answer after
a line "A:" (see ANSWER_SEPARATOR); post bodies are HTML turned into text keeping code blocks
and list items.

Skipped and counted: rows whose Id, Score or ParentId SQLite cannot hold (2^63 or more),
malformed rows, answers without their question, posts nested deeper than lxml's HTML parser
goes (it stops at depth 255 and drops the rest), and a site given twice is refused.

Stages: the 28 largest sites by number of posts (every row of Posts.xml counts; a global
decision across all inputs), then the rule for unanswered questions (kept by default, as the
paper and RedPajama keep them, see pipeline/filters/unanswered.py). Metadata: site,
question_id, question_score, answer_count (answers in the document), title, site_posts.
"""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from pipeline.common.config import Count
from pipeline.common.errors import UserError
from pipeline.engine.document import Document, Skipped
from pipeline.engine.source import Source, SourceConfig
from pipeline.engine.stage import Stage
from pipeline.filters.largest_groups import LargestGroups
from pipeline.filters.unanswered import UnansweredQuestions
from pipeline.formats.stackexchange_posts import load_posts, open_posts_xml
from pipeline.text.html import HtmlTooDeep, html_fragment_to_text

# Before each answer: a line "A:" between blank lines, as The Pile laid out its Stack Exchange
# question-and-answer threads. A blank line alone is also a paragraph break inside a post, so a
# model could not tell where an answer starts; "A:" reads as plain Q&A text, costs two tokens,
# and is no markup (a Markdown rule "---" is also a YAML marker and common in code blocks).
ANSWER_SEPARATOR = "\n\nA:\n\n"


@dataclass
class StackExchangeConfig(SourceConfig):
    largest_sites: Count = 28  # keep the sites with the most posts; 0 keeps every site
    keep_unanswered: bool = True  # the paper and RedPajama drop no question; see pipeline/filters/unanswered.py
    # A .7z whose Posts.xml would inflate past this many times the archive's size is refused
    # before extraction: a decompression bomb (real dumps compress XML about 5-10 times).
    max_compression_ratio: Count = 100


def site_name(path: str) -> str:
    """`.../math.stackexchange.com/Posts.xml` and `.../math.stackexchange.com.7z` -> the site."""
    parts = path.rstrip("/").split("/")
    if parts[-1].lower() == "posts.xml":
        return parts[-2] if len(parts) > 1 else "unknown"
    return parts[-1].removesuffix(".7z").removesuffix("-Posts")


def _one_input_per_site(inputs: list[str]) -> None:
    """Ids are `<site>/<question id>`: a site given twice (its folder and its .7z) would write
    every question twice. Refused before anything runs, naming both inputs."""
    first: dict[str, str] = {}
    for path in inputs:
        site = site_name(path)
        if site in first:
            raise UserError(f"{path}: the site {site} is also given as {first[site]}; keep one of them "
                            "(ids are <site>/<question id> and must be unique)")
        first[site] = path


class StackExchange(Source):
    name = "stackexchange"
    config_class = StackExchangeConfig
    patterns = ("**/Posts.xml", "**/*.7z")

    def list_inputs(self, root: str) -> list[str]:
        inputs = super().list_inputs(root)
        _one_input_per_site(inputs)
        return inputs

    def fields(self) -> list[pa.Field]:
        return [
            pa.field("site", pa.string()),
            pa.field("question_id", pa.int64()),
            pa.field("question_score", pa.int64()),
            pa.field("answer_count", pa.int32()),
            pa.field("title", pa.string()),
            pa.field("site_posts", pa.int64()),
        ]

    def stages(self) -> list[Stage]:
        return [
            LargestGroups(self.config.largest_sites, "site", "site_posts", name="largest_sites"),
            UnansweredQuestions(self.config.keep_unanswered),
        ]

    def read(self, path: str) -> Iterator[Document | Skipped]:
        site = site_name(path)
        # tempfile's folder: the engine points it into the task's folder under the run's output,
        # so a killed run's SQLite file is removed when the task runs again.
        with tempfile.TemporaryDirectory(prefix="herd-stackexchange-") as tmp:
            with open_posts_xml(path, Path(tmp), self.config.max_compression_ratio) as stream:
                db = sqlite3.connect(Path(tmp) / "posts.sqlite")
                try:
                    posts, skipped = load_posts(path, stream, db)
                    for reason, count in sorted(skipped.items()):
                        for _ in range(count):
                            yield Skipped(reason)
                    yield from self._documents(db, site, posts)
                finally:
                    db.close()

    def _documents(self, db: sqlite3.Connection, site: str, posts: int) -> Iterator[Document | Skipped]:
        questions = db.execute("SELECT id, score, title, body FROM questions ORDER BY id")
        answers = iter(db.execute("SELECT parent, score, id, body FROM answers ORDER BY parent, score DESC, id"))
        answer = next(answers, None)
        for question_id, score, title, body in questions:
            while answer is not None and answer[0] < question_id:
                yield Skipped("answer_without_question")
                answer = next(answers, None)
            try:
                question = "\n\n".join(t for t in (title.strip(), html_fragment_to_text(body)) if t)
            except HtmlTooDeep:
                question = None
            answer_texts = []
            while answer is not None and answer[0] == question_id:
                try:
                    answer_text = html_fragment_to_text(answer[3])
                except HtmlTooDeep:
                    yield Skipped("answer_html_too_deep")  # the rest of the thread stays
                else:
                    if answer_text:
                        answer_texts.append(answer_text)
                    else:
                        yield Skipped("empty_answer")  # an "A:" with nothing after it
                answer = next(answers, None)
            if question is None:
                yield Skipped("html_too_deep")  # what lxml kept of the post would be cut short
                continue
            if not question and not answer_texts:
                yield Skipped("empty_question")
                continue
            text = question + "".join(ANSWER_SEPARATOR + answer_text for answer_text in answer_texts)
            meta = {"site": site, "question_id": question_id, "question_score": score,
                    "answer_count": len(answer_texts), "title": title, "site_posts": posts}
            yield Document(f"{site}/{question_id}", text, self.name, meta)
        while answer is not None:
            yield Skipped("answer_without_question")
            answer = next(answers, None)
