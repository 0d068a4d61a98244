"""Wikitext to plain text as a stage (the cleaner is pipeline/text/wikitext.py)."""

from __future__ import annotations

import re

from pipeline.engine.document import Document
from pipeline.engine.stage import Stage
from pipeline.text.wikitext import clean_wikitext

LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class CleanWikitext(Stage):
    """Wikitext to plain text (see pipeline/text/wikitext.py); an article left empty is dropped."""

    name = "clean_wikitext"

    def process(self, doc: Document) -> Document | str:
        # "format" only travels from the reader to here and is never written: parquet rows
        # (wikimedia/wikipedia) are plain text already and must not be parsed as wikitext.
        if doc.meta.pop("format", None) == "plain":
            return doc
        doc.text = clean_wikitext(doc.text)
        if LONE_SURROGATE.search(doc.text):
            # `&#xD800;` decodes to half a UTF-16 pair: no UTF-8 shard can hold it.
            return "invalid_character"
        return doc if doc.text else "empty_after_cleaning"
