"""Removes the licence header of each source file (the cleaner is pipeline/text/code_headers.py)."""

from __future__ import annotations

from pipeline.engine.document import Document
from pipeline.engine.stage import Result, Stage
from pipeline.filters.code_quality import extension_of
from pipeline.text.code_headers import SYNTAX_BY_EXTENSION, strip_license_header


class StripLicenseHeader(Stage):
    """Removes the licence header of each file, by the comment syntax of its extension."""

    name = "strip_license_header"

    def process(self, doc: Document) -> Result:
        syntax = SYNTAX_BY_EXTENSION.get(extension_of(doc.meta.get("path") or doc.id))
        if syntax is None:
            return doc
        text = strip_license_header(doc.text, syntax)
        if not text.strip():
            return "only_license_header"
        doc.text = text
        return doc
