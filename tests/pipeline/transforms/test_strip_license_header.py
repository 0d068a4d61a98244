"""The licence-header stage picks the comment syntax by the file's extension."""

from __future__ import annotations

from pipeline.engine.document import Document
from pipeline.transforms.strip_license_header import StripLicenseHeader


def test_stage_uses_the_extension_and_drops_header_only_files() -> None:
    stage = StripLicenseHeader()
    doc = Document("r/a.rs", "// Copyright A\nfn main() {}\n", "github", {"path": "a.rs"})
    assert stage.process(doc).text == "fn main() {}\n"
    only = Document("r/b.c", "/* Copyright A */\n", "github", {"path": "b.c"})
    assert stage.process(only) == "only_license_header"
    unknown = Document("r/c.txt", "# Copyright A\n", "github", {"path": "c.txt"})
    assert stage.process(unknown).text == "# Copyright A\n"
