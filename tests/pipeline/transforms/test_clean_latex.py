"""The arXiv cleaning stages on hand-written papers: what each keeps, and what it counts."""

from __future__ import annotations

from pipeline.engine.document import Document
from pipeline.transforms.clean_latex import ExpandMacros


def test_expand_macros_counts_the_definitions_it_leaves_unexpanded() -> None:
    stage = ExpandMacros()
    papers = ["\\NewDocumentCommand{\\q}{r()}{Q#1}\\def\\d#1.{D}\\NewDocumentCommand{\\s}{s m}{S#2}"
              "\\q(x) \\d a. \\s*{y}",
              "\\NewDocumentCommand{\\v}{v}{V}\\v|x|"]
    texts = [stage.process(Document(str(i), text, "arxiv", {})) for i, text in enumerate(papers)]
    assert [doc.text for doc in texts if isinstance(doc, Document)] == ["\\q(x) \\d a. Sy", "\\v|x|"]
    # Per worker, summed over the papers it cleaned, by reason.
    assert dict(stage.unsupported_definitions) == {"unsupported_xparse_spec": 2, "delimited_def": 1}
