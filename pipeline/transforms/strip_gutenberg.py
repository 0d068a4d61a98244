"""Removes Project Gutenberg's headers, footers, licence and the edition's transcriber's notes
(pipeline/text/gutenberg.py)."""

from __future__ import annotations

from pipeline.engine.document import Document
from pipeline.engine.stage import Stage
from pipeline.text.gutenberg import strip_boilerplate


class StripGutenberg(Stage):
    name = "strip_gutenberg"

    def process(self, doc: Document) -> Document | str:
        doc.text = strip_boilerplate(doc.text)
        return doc if doc.text else "empty_after_stripping"
