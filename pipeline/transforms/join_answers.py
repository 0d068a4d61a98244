"""Joins answers to their questions across a whole run: each question's document gets its
answers, highest score first, ties by id, wherever in the run they were read.

Stack Exchange's Posts.xml is read by byte ranges, one task each (pipeline/formats/
stackexchange_posts.py), and an answer is often far from its question in the file (a question
of 2009 answered in 2023): no task can build a question's document alone. So a range's reader
yields questions and answers as records of their own, and this global stage joins them:

- `collect` writes each task's answers (site, question id, score, id, text) and question ids
  into a SQLite file, and passes questions and answers on;
- `merge` copies every task's file into one SQLite database with the answers indexed by
  (site, question, score descending, id), and sums each site's posts: a record's `site_posts`
  is the number of rows of Posts.xml it stands for (itself and rows the reader skipped);
- `process` gives a question its answers' texts (one indexed query) and the site's post count,
  and drops an answer record: `joined_to_question` when its question was read, else
  `answer_without_question`.

Memory stays bounded whatever the site's size: answers live on disk in SQLite (the partials
and the merged database, each about the answers' text), never in a Python structure; a worker
holds one question's answers at a time. The merge is one sequential copy and one index build
(minutes for Stack Overflow's 60 million posts), in the driver between the passes.

An answer record is told apart by its `answer_score` (null on every question, so on every
published document); its `question_id` is the question it answers.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa

from pipeline.engine.document import Document
from pipeline.engine.stage import GlobalStage, Result

INSERT_BATCH = 2000  # rows per executemany: short inserts, flat memory
DATABASE = "answers.sqlite"
SCHEMA = (
    "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
    "CREATE TABLE answers (site TEXT, parent INTEGER, score INTEGER, id INTEGER, text TEXT);"
    "CREATE TABLE questions (site TEXT, id INTEGER);"
    "CREATE TABLE site_rows (site TEXT, rows INTEGER);"
)


class JoinAnswers(GlobalStage):
    name = "join_answers"
    state_in_memory = False  # answers go to SQLite on disk as they come
    merged_reasons = frozenset({"joined_to_question"})  # the answer's text is in its question's document

    def __init__(self, separator: str) -> None:
        self.separator = separator  # written before each answer's text
        self.database: Path | None = None
        self._db: sqlite3.Connection | None = None  # opened in the worker, on its first document
        self._site_posts: dict[str, int] = {}  # site -> its post count, asked once per worker

    def fields(self) -> list[pa.Field]:
        return [pa.field("answer_score", pa.int64())]

    def collect(self, docs: Iterable[Document], partial: Path) -> None:
        try:
            with sqlite_writes(partial):
                self._collect(docs, partial)
        except BaseException:
            partial.unlink(missing_ok=True)  # half a database: the rerun of the task writes it again
            raise

    def _collect(self, docs: Iterable[Document], partial: Path) -> None:
        db = sqlite3.connect(partial)
        try:
            db.executescript(SCHEMA)
            answers: list[tuple] = []
            questions: list[tuple] = []
            rows: dict[str, int] = {}
            for doc in docs:
                meta = doc.meta
                rows[meta["site"]] = rows.get(meta["site"], 0) + meta["site_posts"]
                if meta.get("answer_score") is None:
                    questions.append((meta["site"], meta["question_id"]))
                else:
                    answers.append((meta["site"], meta["question_id"], meta["answer_score"],
                                    int(doc.id.rsplit("/", 1)[1]), doc.text))
                if len(answers) + len(questions) >= INSERT_BATCH:
                    _insert(db, answers, questions)
            _insert(db, answers, questions)
            db.executemany("INSERT INTO site_rows VALUES (?, ?)", sorted(rows.items()))
            db.commit()
        finally:
            db.close()

    def merge(self, partials: list[Path], artefact: Path) -> None:
        with sqlite_writes(artefact / DATABASE):
            self._merge(partials, artefact)

    def _merge(self, partials: list[Path], artefact: Path) -> None:
        db = sqlite3.connect(artefact / DATABASE)
        try:
            db.executescript(SCHEMA)
            for partial in partials:
                db.execute("ATTACH DATABASE ? AS task", (str(partial),))
                db.execute("INSERT INTO answers SELECT * FROM task.answers")
                db.execute("INSERT INTO questions SELECT * FROM task.questions")
                db.execute("INSERT INTO site_rows SELECT * FROM task.site_rows")
                db.commit()
                db.execute("DETACH DATABASE task")
            db.executescript(
                "CREATE INDEX answers_by_question ON answers (site, parent, score DESC, id);"
                "CREATE INDEX questions_by_id ON questions (site, id);"
                "CREATE TABLE site_posts AS SELECT site, sum(rows) AS posts FROM site_rows GROUP BY site;"
            )
            db.commit()
        finally:
            db.close()

    def load(self, artefact: Path) -> None:
        self.database = artefact / DATABASE
        self._site_posts = {}

    def process(self, doc: Document) -> Result:
        db = self._connection()
        site, question = doc.meta["site"], doc.meta["question_id"]
        if doc.meta.get("answer_score") is not None:
            asked = db.execute("SELECT 1 FROM questions WHERE site = ? AND id = ? LIMIT 1", (site, question)).fetchone()
            return "joined_to_question" if asked else "answer_without_question"
        answers = [text for (text,) in db.execute(
            "SELECT text FROM answers WHERE site = ? AND parent = ? ORDER BY score DESC, id", (site, question))]
        if not doc.text and not answers:
            return "empty_question"
        doc.text += "".join(self.separator + answer for answer in answers)
        posts = self._site_posts.get(site)
        if posts is None:  # site_posts has a row per site and no index: asked once per site
            (posts,) = db.execute("SELECT posts FROM site_posts WHERE site = ?", (site,)).fetchone()
            self._site_posts[site] = posts
        doc.meta.update(answer_count=len(answers), site_posts=posts)
        return doc

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            assert self.database is not None, "load() comes before process()"
            self._db = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)
            # Questions come in file order, their answers anywhere in the database: SQLite's
            # default 2 MiB page cache rereads pages from the file at every turn once the
            # database outgrows it. 32 MiB of cache, whatever the site's size.
            self._db.execute("PRAGMA cache_size = -32768")
        return self._db


@contextlib.contextmanager
def sqlite_writes(path: Path) -> Iterator[None]:
    """SQLite's failed writes as the OSError the engine reports in one line naming the file. SQLite
    gives no errno: a full disk is SQLITE_FULL and a write past a file size limit (EFBIG) is a
    disk I/O error (SQLITE_IOERR_WRITE); both are out of space for whoever reruns the command."""
    try:
        yield
    except sqlite3.OperationalError as e:
        name = getattr(e, "sqlite_errorname", "")
        if name == "SQLITE_FULL" or name.startswith("SQLITE_IOERR"):
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (SQLite: {e})", str(path)) from e
        raise


def _insert(db: sqlite3.Connection, answers: list[tuple], questions: list[tuple]) -> None:
    db.executemany("INSERT INTO answers VALUES (?, ?, ?, ?, ?)", answers)
    db.executemany("INSERT INTO questions VALUES (?, ?)", questions)
    answers.clear()
    questions.clear()
