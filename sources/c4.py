"""C4: the public allenai/c4 files, re-checked with the C4 quality rules.

Input: `*.json.gz` or `*.json` files (local paths or fsspec URLs), one JSON object a line
with `text`, `url` and `timestamp`. Language id and dedup were applied upstream, so the only
stage is the C4 quality filter with the rules of TFDS's `c4_utils` that made the public C4
(thresholds configurable under `[c4]` in --config): re-filtering allenai/c4 keeps it as it is.

A document's id is `<file>:<line number>`, the file named by its path under the input root
without `.json.gz`: allenai/c4's variants share file names (`en/` and `en.noblocklist/`,
`realnewslike/` beside them), so `en/c4-train.00000-of-01024:7` and
`realnewslike/c4-train.00000-of-01024:7` stay two ids. Files directly under the root keep
their bare names.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import fsspec
import pyarrow as pa

from pipeline.common.errors import InputError
from pipeline.common.warn import warn
from pipeline.engine.document import Document, Skipped, storable
from pipeline.engine.source import Source, SourceConfig
from pipeline.engine.stage import Stage
from pipeline.filters.c4_quality import C4Quality, C4Thresholds
from pipeline.formats.files import MALFORMED_JSON, bounded_lines, decoded_json, not_json_lines, open_binary


_NOT_JSON = (MALFORMED_JSON, "not_utf8")  # a line that is no JSON text at all


@dataclass
class C4Config(C4Thresholds, SourceConfig):
    """The C4 rules' thresholds are the whole configuration (`[c4]` in --config)."""


class C4(Source):
    name = "c4"
    config_class = C4Config
    patterns = ("**/*.json.gz", "**/*.json")

    def fields(self) -> list[pa.Field]:
        return [pa.field("url", pa.string()), pa.field("timestamp", pa.string())]

    def stages(self) -> list[Stage]:
        return [C4Quality(self.config)]

    def __init__(self, config: C4Config | None = None) -> None:
        super().__init__(config)
        self.input_root: str | None = None  # set by list_inputs: ids name files under it

    def list_inputs(self, root: str) -> list[str]:
        inputs = super().list_inputs(root)
        # Remembered for the ids (see the module docstring); travels with the source to workers.
        _, _, (self.input_root,) = fsspec.get_fs_token_paths(root)
        by_key: dict[str, list[str]] = {}
        for path in inputs:
            by_key.setdefault(self._file_key(path), []).append(path)
        twins = [paths for paths in by_key.values() if len(paths) > 1]
        if twins:  # x.json beside x.json.gz: the same ids, so the engine keeps the first file's records
            warn(f"warning: {len(twins)} file(s) beside another of the same name but its compression "
                 f"({' and '.join(twins[0])}{', ...' if len(twins) > 1 else ''}): their records share ids, so "
                 "the second's are dropped as duplicate_id; keep one of each")
        return inputs

    def _file_key(self, path: str) -> str:
        """`path` under the input root (its name alone when read on its own), without suffix."""
        under = f"{self.input_root.rstrip('/')}/" if self.input_root else None
        relative = path.split(under, 1)[1] if under and under in path else path.rsplit("/", 1)[-1]
        return relative.removesuffix(".gz").removesuffix(".json")

    def read(self, path: str) -> Iterator[Document | Skipped]:
        stem = self._file_key(path)
        try:
            with open_binary(path) as raw:
                # Lines are decoded one by one, so a stray non-UTF-8 line is skipped alone;
                # a line too long to be a page (or a newline-free bomb) is skipped unread.
                number, any_json, first = -1, False, None
                for number, line in enumerate(bounded_lines(raw)):
                    if line is None:
                        yield Skipped("line_too_long")
                        continue
                    if not line.strip():
                        continue
                    item = self._document(line, f"{stem}:{number}")
                    if isinstance(item, Skipped) and item.reason in _NOT_JSON:
                        first = line if first is None else first
                    else:
                        any_json = True
                    yield item
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise InputError(path, f"truncated or corrupt gzip file ({e})") from None
        if number < 0:
            raise InputError(path, "empty file")
        if first is not None and not any_json:  # a server's error page saved under the file's name
            raise not_json_lines(path, first)

    def _document(self, line: bytes, doc_id: str) -> Document | Skipped:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return Skipped("not_utf8")
        row = decoded_json(text)
        if isinstance(row, Skipped):
            return row
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            return Skipped("no_text_field")
        meta = {key: row[key] for key in ("url", "timestamp") if isinstance(row.get(key), str)}
        if not storable(row["text"], *meta.values()):  # a lone surrogate from a "\ud800" escape
            return Skipped("invalid_unicode")
        return Document(doc_id, row["text"], self.name, meta)
