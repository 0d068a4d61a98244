"""C4: the public allenai/c4 files, re-checked with the C4 quality rules.

Input: `*.json.gz` or `*.json` files (local paths or fsspec URLs), one JSON object a line
with `text`, `url` and `timestamp`. Language id and dedup were applied upstream, so the only
stage is the C4 quality filter (thresholds configurable under `[c4]` in --config).
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from typing import Iterator

import pyarrow as pa

from pipeline.c4_quality import C4Quality, C4Thresholds
from pipeline.document import Document, Skipped
from pipeline.errors import InputError
from pipeline.readers import bounded_lines, open_binary, storable
from pipeline.source import Source, SourceConfig
from pipeline.stage import Stage


@dataclass
class C4Config(SourceConfig):
    min_words_per_line: int = 3
    min_sentences: int = 5
    max_word_length: int = 1000
    remove_citations: bool = True
    require_terminal_punctuation: bool = True
    drop_lorem_ipsum: bool = True
    drop_curly_bracket: bool = True
    drop_javascript_lines: bool = True
    drop_policy_lines: bool = True


class C4(Source):
    name = "c4"
    config_class = C4Config
    patterns = ("**/*.json.gz", "**/*.json")

    def fields(self) -> list[pa.Field]:
        return [pa.field("url", pa.string()), pa.field("timestamp", pa.string())]

    def stages(self) -> list[Stage]:
        c = self.config
        return [
            C4Quality(
                C4Thresholds(
                    min_words_per_line=c.min_words_per_line,
                    min_sentences=c.min_sentences,
                    max_word_length=c.max_word_length,
                    remove_citations=c.remove_citations,
                    require_terminal_punctuation=c.require_terminal_punctuation,
                    drop_lorem_ipsum=c.drop_lorem_ipsum,
                    drop_curly_bracket=c.drop_curly_bracket,
                    drop_javascript_lines=c.drop_javascript_lines,
                    drop_policy_lines=c.drop_policy_lines,
                )
            )
        ]

    def read(self, path: str) -> Iterator[Document | Skipped]:
        stem = path.rsplit("/", 1)[-1].removesuffix(".gz").removesuffix(".json")
        try:
            with open_binary(path) as raw:
                # Lines are decoded one by one, so a stray non-UTF-8 line is skipped alone;
                # a line too long to be a page (or a newline-free bomb) is skipped unread.
                number = -1
                for number, line in enumerate(bounded_lines(raw)):
                    if line is None:
                        yield Skipped("line_too_long")
                        continue
                    if not line.strip():
                        continue
                    yield self._document(line, f"{stem}:{number}")
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise InputError(path, f"truncated or corrupt gzip file ({e})") from None
        if number < 0:
            raise InputError(path, "empty file")

    def _document(self, line: bytes, doc_id: str) -> Document | Skipped:
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            return Skipped("not_utf8")
        except json.JSONDecodeError:
            return Skipped("malformed_json")
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            return Skipped("no_text_field")
        meta = {key: row[key] for key in ("url", "timestamp") if isinstance(row.get(key), str)}
        if not storable(row["text"], *meta.values()):  # a lone surrogate from a "\ud800" escape
            return Skipped("invalid_unicode")
        return Document(doc_id, row["text"], self.name, meta)
