"""Books: Project Gutenberg plain text and Books3-style JSON lines, with book-level
near-duplicate removal.

Inputs: `*.txt` (Gutenberg form), `*.zip` (zipped Gutenberg .txt files, read in memory with
path and size checks) and `*.jsonl` / `*.jsonl.gz` (Books3 form: `text`, and `title` or
`meta.title`). The sub-corpus is the name of the folder a file sits in (`gutenberg/`,
`books3/`), and every id starts with it, so ids never collide across sub-corpora (RedPajama's
did). Stages: Gutenberg header/footer/licence removal, a minimum length, then near-duplicate
removal across every input (MinHash LSH, more than 90% word overlap; see
pipeline/dedup/near.py), the copy longest after stripping surviving (an edition whose
licence was left on must not win over a clean one). Line breaks are normalised to "\n" on read.

A book file (a .txt, or one in a .zip) that holds nothing is skipped as `empty_file`, one with
a NUL byte (an image or archive under a .txt name) as `binary_file`, and one that starts as
markup or JSON does, `<` or `{` (a server's error page saved under the book's name: a 404 page
of a mirror would otherwise be kept as a book) as `markup_file`; `pipeline download books`
refuses such a page by the same rule before it takes the file's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import fsspec
import pyarrow as pa

from pipeline.common.config import Count, Megabytes, Probability
from pipeline.common.errors import InputError
from pipeline.dedup.near import OVERLAP_THRESHOLD, NearDedup
from pipeline.engine.document import Document, Skipped, storable
from pipeline.engine.source import Source, SourceConfig
from pipeline.engine.stage import Stage
from pipeline.filters.min_chars import MinChars
from pipeline.formats.archives import ArchiveError, Limits, MiB, read_zip
from pipeline.formats.files import decode_utf8_or_latin1, read_capped, starts_with_markup, text_rows
from pipeline.text.gutenberg import header_title, normalize_newlines
from pipeline.transforms.strip_gutenberg import StripGutenberg


@dataclass
class BooksConfig(SourceConfig):
    min_chars: Count = 1000  # books shorter than this after cleaning are dropped as "too_short"
    overlap_threshold: Probability = OVERLAP_THRESHOLD  # word overlap above which a book is a near-duplicate
    max_book_mb: Megabytes = 64  # a book (a .txt, a zip member, a JSON line) larger than this is refused

    def limits(self) -> Limits:
        """A zip of books: members up to a book's size, four books' worth in all."""
        return Limits(max_member_bytes=self.max_book_mb * MiB, max_total_bytes=4 * self.max_book_mb * MiB)


def split_path(path: str) -> tuple[str, str]:
    """(sub-corpus, file name): the folder a file sits in names its sub-corpus."""
    parts = path.rstrip("/").split("/")
    return (parts[-2] if len(parts) >= 2 else "books"), parts[-1]


class Books(Source):
    name = "books"
    config_class = BooksConfig
    patterns = ("**/*.txt", "**/*.zip", "**/*.jsonl", "**/*.jsonl.gz")

    def fields(self) -> list[pa.Field]:
        return [pa.field("title", pa.string()), pa.field("subcorpus", pa.string())]

    def stages(self) -> list[Stage]:
        return [StripGutenberg(), MinChars(self.config.min_chars), NearDedup(self.config.overlap_threshold)]

    def read(self, path: str) -> Iterator[Document | Skipped]:
        subcorpus, file_name = split_path(path)
        if file_name.endswith(".zip"):
            yield from self._read_zip(path, subcorpus, file_name)
        elif file_name.endswith((".jsonl", ".jsonl.gz")):
            yield from self._read_jsonl(path, subcorpus, file_name)
        else:
            text = decode_utf8_or_latin1(read_capped(path, self.config.max_book_mb * MiB))
            yield self._book(f"{subcorpus}/{file_name.removesuffix('.txt')}", text, subcorpus, whole_file=True)

    def _book(self, doc_id: str, text: str, subcorpus: str, title: str = "",
              whole_file: bool = False) -> Document | Skipped:
        if not text.strip():
            return Skipped("empty_file")
        if "\0" in text[:8192]:  # no book holds NUL: an image or archive under a .txt name
            return Skipped("binary_file")
        if whole_file and starts_with_markup(text[:64].encode("utf-8", "replace")):
            return Skipped("markup_file")  # an error page (HTML, XML, JSON) saved under a book's name
        # Most real Gutenberg files use CRLF: kept text never carries a "\r", and the line-based
        # boilerplate rules see a CRLF blank line as blank.
        text = normalize_newlines(text)
        return Document(doc_id, text, self.name, {"title": title or header_title(text), "subcorpus": subcorpus})

    def _read_zip(self, path: str, subcorpus: str, file_name: str) -> Iterator[Document | Skipped]:
        try:
            with fsspec.open(path, "rb") as f:
                extracted = read_zip(f, self.config.limits())
        except ArchiveError as e:
            raise InputError(path, e.problem) from None
        for reason in extracted.refused:
            yield Skipped(reason)
        for member in sorted(extracted.files):
            if member.lower().endswith(".txt"):  # Gutenberg's own zips name some books PG30.TXT
                yield self._book(f"{subcorpus}/{file_name}:{member[:-len('.txt')]}",
                                 decode_utf8_or_latin1(extracted.files[member]), subcorpus, whole_file=True)
            else:  # an image or an HTML page beside the text: counted, never passed over in silence
                yield Skipped("zip_member_not_text")

    def _read_jsonl(self, path: str, subcorpus: str, file_name: str) -> Iterator[Document | Skipped]:
        stem = file_name.removesuffix(".gz").removesuffix(".jsonl")
        # A book a line: a line past max_book_mb is skipped unread, as a .txt that large fails.
        for item in text_rows(path, self.config.max_book_mb * MiB):
            if isinstance(item, Skipped):
                yield item
                continue
            number, row = item
            meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
            title = row.get("title") or meta.get("title") or ""
            if not storable(row["text"], str(title)):
                yield Skipped("invalid_unicode")
                continue
            yield self._book(f"{subcorpus}/{stem}:{number}", row["text"], subcorpus, str(title))
