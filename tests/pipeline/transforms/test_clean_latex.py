"""The arXiv cleaning stages on hand-written papers: what each keeps, and what it counts."""

from __future__ import annotations

from pipeline.engine.document import Document
from pipeline.transforms.clean_latex import CutBeforeFirstSection, ExpandMacros, RemoveBibliography


def test_expand_macros_counts_the_definitions_it_leaves_unexpanded() -> None:
    stage = ExpandMacros()
    papers = ["\\NewDocumentCommand{\\q}{r()}{Q#1}\\def\\d#1.{D}\\NewDocumentCommand{\\s}{s m}{S#2}"
              "\\q(x) \\d a. \\s*{y}",
              "\\NewDocumentCommand{\\v}{v}{V}\\v|x|"]
    texts = [stage.process(Document(str(i), text, "arxiv", {})) for i, text in enumerate(papers)]
    assert [doc.text for doc in texts if isinstance(doc, Document)] == ["\\q(x) \\d a. Sy", "\\v|x|"]
    # Per worker, summed over the papers it cleaned, by reason.
    assert dict(stage.unsupported_definitions) == {"unsupported_xparse_spec": 2, "delimited_def": 1}


def test_the_cut_keeps_the_preamble_verbatim_environments_for_the_bibliography_cut() -> None:
    # Each way a preamble makes an environment verbatim; one the body defines stays in the text.
    preamble = ("\\documentclass{article}\n\\lstnewenvironment{code}{}{}\n\\newminted{python}{}\n"
                "\\DefineVerbatimEnvironment{term}{Verbatim}{}\n\\newtcblisting{box}{}\n\\begin{document}\n")
    body = ("\\section{A}\n\\DefineVerbatimEnvironment{late}{Verbatim}{}\n"
            + "".join(f"\\begin{{{name}}}\n\\end{{document}}\n\\end{{{name}}}\n"
                      for name in ("code", "pythoncode*", "term", "box", "late"))
            + "Kept.\n\\bibliography{refs}\n\\end{document}\n")
    doc = CutBeforeFirstSection().process(Document("1", preamble + body, "arxiv", {}))
    assert isinstance(doc, Document)
    assert doc.meta == {"_verbatim_environments": ["box", "code", "pythoncode", "pythoncode*", "term"]}
    bibliography = "\n\\bibliography{refs}\n\\end{document}\n"
    doc = RemoveBibliography().process(doc)
    assert isinstance(doc, Document) and doc.text == body.removesuffix(bibliography)
    assert doc.meta == {}  # the cut's message to the removal: never a column of the corpus
    # Without the cut before it the text still defines them.
    alone = RemoveBibliography().process(Document("2", preamble + body, "arxiv", {}))
    assert isinstance(alone, Document) and alone.text == (preamble + body).removesuffix(bibliography)
