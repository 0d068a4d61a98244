"""Passthrough source for custom data: JSON lines with a text field, kept as they are.

Input: `*.jsonl`, `*.jsonl.gz`, `*.json`, `*.json.gz`, one JSON object a line with `text`
(required) and optionally `id` and `url`. Useful to bring any corpus into the shard format
and mixtures, and the engine's own test source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import pyarrow as pa

from pipeline.common.config import Count
from pipeline.engine.document import Document, Skipped, storable
from pipeline.engine.source import Source, SourceConfig
from pipeline.engine.stage import Filter
from pipeline.filters.min_chars import MinChars
from pipeline.formats.files import text_rows


@dataclass
class JsonlConfig(SourceConfig):
    min_chars: Count = 1  # documents with fewer characters are dropped as "too_short"


class Jsonl(Source):
    name = "jsonl"
    config_class = JsonlConfig
    patterns = ("**/*.jsonl", "**/*.jsonl.gz", "**/*.json", "**/*.json.gz")

    def fields(self) -> list[pa.Field]:
        return [pa.field("url", pa.string())]

    def stages(self) -> list[Filter]:
        return [MinChars(self.config.min_chars)]

    def read(self, path: str) -> Iterator[Document | Skipped]:
        stem = path.rsplit("/", 1)[-1]
        for item in text_rows(path):
            if isinstance(item, Skipped):
                yield item
                continue
            number, row = item
            doc_id = str(row["id"]) if "id" in row else f"{stem}:{number}"
            meta = {"url": row["url"]} if isinstance(row.get("url"), str) else {}
            if not storable(doc_id, row["text"], *meta.values()):
                yield Skipped("invalid_unicode")
                continue
            yield Document(doc_id, row["text"], self.name, meta)
