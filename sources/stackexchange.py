"""Stack Exchange: each question followed by its answers, best first, from the largest sites.

Input: one folder per site holding `Posts.xml` (the folder's name is the site's), or the
site's archive `<site>.7z` (also `<site>-Posts.7z`, as stackoverflow.com is published).

A plain Posts.xml larger than `task_bytes` is read as byte ranges cut where rows start, each
an input (a task) of its own (pipeline/formats/stackexchange_posts.py: entities never
resolved, a file that declares a DTD is refused, so an entity-expansion bomb ends as one
counted failure); a .7z is unpacked into the task's temporary folder and read whole
(`pipeline download stackexchange` unpacks the archives it fetches, so that Stack Overflow's is
split). A range yields its questions and its answers as records of their own, in file order;
the global stage JoinAnswers (pipeline/transforms/join_answers.py) then gives each question
its answers wherever they were read, so the documents are the same for any range size and any
number of tasks. A document is the title, the question and its answers sorted by numeric score,
highest first, ties by id, each answer after a line "A:" (see ANSWER_SEPARATOR); post bodies
are HTML turned into text keeping code blocks and list items.

Skipped and counted: rows whose Id, Score or ParentId an int64 cannot hold (2^63 or more),
malformed rows, other post types, posts nested deeper than lxml's HTML parser goes (it stops
at depth 255 and drops the rest) and answers with no text, at read; answers without their
question (also those of a question skipped at read) and questions with no text and no answer,
at the join, where every answer record is counted as `joined_to_question`. A site given twice
is refused.

Stages: the join, the 28 largest sites by number of posts (every row of Posts.xml counts; a
global decision across all inputs), then the rule for unanswered questions (kept by default, as the
paper and RedPajama keep them, see pipeline/filters/unanswered.py). Metadata: site,
question_id, question_score, answer_count (answers in the document), title, site_posts.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import fsspec
import pyarrow as pa

from pipeline.common.config import Bytes, Count
from pipeline.common.errors import UserError
from pipeline.common.warn import warn
from pipeline.engine.document import Document, Skipped
from pipeline.engine.source import Source, SourceConfig
from pipeline.engine.stage import Stage
from pipeline.filters.largest_groups import LargestGroups
from pipeline.filters.unanswered import UnansweredQuestions
from pipeline.formats.stackexchange_posts import (
    MAX_COMPRESSION_RATIO,
    Answer,
    Question,
    open_rows,
    read_rows,
    split_rows,
    whole_file,
)
from pipeline.text.html import HtmlTooDeep, html_fragment_to_text
from pipeline.transforms.join_answers import JoinAnswers

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
    max_compression_ratio: Count = MAX_COMPRESSION_RATIO
    # A plain Posts.xml larger than this is read as byte ranges of about this size, one task each
    # (Stack Overflow's 100 GB: about 100 tasks of some 10 minutes of one core); 0: files whole.
    task_bytes: Bytes = 1 << 30


def site_name(path: str) -> str:
    """`.../math.stackexchange.com/Posts.xml` (or a range of it) and `.../math.stackexchange.com.7z`
    -> the site."""
    parts = whole_file(path).rstrip("/").split("/")
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
        if self.config.task_bytes <= 0:
            return inputs
        return [part for path in inputs for part in self._split(path)]

    def _split(self, path: str) -> list[str]:
        if path.endswith(".7z"):
            size = _size(path)
            if size > self.config.task_bytes:
                warn(f"warning: {path}: a .7z is read whole, as one task ({size / 1e9:.1f} GB packed); "
                     "unpack its Posts.xml into a folder of the site's name to read it by ranges (`pipeline "
                     "download stackexchange` does unless --no-unpack)")
            return [path]
        return split_rows(path, self.config.task_bytes)

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
            JoinAnswers(ANSWER_SEPARATOR),
            LargestGroups(self.config.largest_sites, "site", "site_posts", name="largest_sites"),
            UnansweredQuestions(self.config.keep_unanswered),
        ]

    def read(self, path: str) -> Iterator[Document | Skipped]:
        """The questions and answers of `path` (a file, or a range of one) as records, in file order.

        A record's `site_posts` is the number of rows it stands for: itself and the rows skipped
        since the record before it (the last record of the range also takes those after it), so
        JoinAnswers' sum over a site's records counts every row of its Posts.xml, whatever the
        ranges. A range holding no question or answer at all adds nothing (not met in real dumps)."""
        site = site_name(path)
        pending: Document | None = None  # held back until the next record: the last one takes the tail
        rows = 0
        # tempfile's folder: the engine points it into the task's folder under the run's output,
        # so a killed run's unpacked .7z is removed when the task runs again.
        with tempfile.TemporaryDirectory(prefix="herd-stackexchange-") as tmp:
            try:
                with open_rows(path, Path(tmp), self.config.max_compression_ratio) as stream:
                    for post in read_rows(path, stream):
                        rows += 1
                        if isinstance(post, Question):
                            record = self._question(site, post)
                        elif isinstance(post, Answer):
                            record = self._answer(site, post)
                        else:
                            record = Skipped(post)
                        if isinstance(record, Skipped):
                            yield record
                            continue
                        if pending is not None:
                            yield pending
                        record.meta["site_posts"] = rows
                        pending, rows = record, 0
            finally:  # also before a failure further on: the rows before the damage are kept, as a dump's pages are
                if pending is not None:
                    pending.meta["site_posts"] += rows
                    yield pending

    def _question(self, site: str, post: Question) -> Document | Skipped:
        try:
            text = "\n\n".join(t for t in (post.title.strip(), html_fragment_to_text(post.body)) if t)
        except HtmlTooDeep:
            return Skipped("html_too_deep")  # what lxml kept of the post would be cut short
        meta = {"site": site, "question_id": post.id, "question_score": post.score, "title": post.title}
        return Document(f"{site}/{post.id}", text, self.name, meta)

    def _answer(self, site: str, post: Answer) -> Document | Skipped:
        """A record JoinAnswers folds into its question's document: `question_id` is that
        question, `answer_score` the answer's own score; its id names both."""
        try:
            text = html_fragment_to_text(post.body)
        except HtmlTooDeep:
            return Skipped("answer_html_too_deep")  # the rest of the thread stays
        if not text:
            return Skipped("empty_answer")  # an "A:" with nothing after it
        meta = {"site": site, "question_id": post.parent, "answer_score": post.score}
        return Document(f"{site}/{post.parent}/{post.id}", text, self.name, meta)


def _size(path: str) -> int:
    try:
        fs, _, (base,) = fsspec.get_fs_token_paths(path)
        return fs.size(base) or 0
    except (OSError, ValueError):
        return 0  # reading it reports the problem
