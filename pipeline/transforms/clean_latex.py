"""The arXiv cleaning stages: each applies one LaTeX cleaner of pipeline/text/ to a paper and
drops it with the cleaner's reason when the source cannot be cleaned."""

from __future__ import annotations

from collections import Counter

from pipeline.engine.document import Document
from pipeline.engine.stage import Stage
from pipeline.text.latex import LatexError, check_braces, cut_before_first_section, remove_bibliography
from pipeline.text.latex_macros import MAX_EXPANSIONS, collect_macros, expand_macros
from pipeline.text.latex_verbatim import Environments, regions

# The verbatim environments a paper's cut-off preamble defines (`\lstnewenvironment{code}`): the
# kept text no longer says that `code` is verbatim, so the bibliography's removal, the next stage,
# takes them from this metadata key. It is set by the cut and removed by that removal, in the same
# pass: no shard holds it, and the corpus's columns stay those of every earlier release.
VERBATIM_ENVIRONMENTS = "_verbatim_environments"


class ExpandMacros(Stage):
    """Expands user macros (pipeline/text/latex_macros.py) after removing their definitions.

    Definitions it cannot expand (a \\def with delimited parameters, an xparse argument type
    not read) are summed per reason in `unsupported_definitions` (per worker, as C4Quality sums
    the lines it removes); `pipeline audit arxiv --raw` counts their uses left in the corpus."""

    name = "expand_macros"

    def __init__(self, max_expansions: int = MAX_EXPANSIONS) -> None:
        self.max_expansions = max_expansions
        self.unsupported_definitions: Counter[str] = Counter()

    def process(self, doc: Document) -> Document | str:
        try:
            check_braces(doc.text)
            macros, text = collect_macros(doc.text, unsupported=self.unsupported_definitions)
            doc.text = expand_macros(text, macros, self.max_expansions)
        except LatexError as e:
            return e.reason
        return doc


class CutBeforeFirstSection(Stage):
    """Cuts the text before the first section, handing RemoveBibliography (the next stage) the
    verbatim environments the cut part defines in VERBATIM_ENVIRONMENTS (those the kept text
    defines it still says itself)."""

    name = "cut_before_first_section"

    def process(self, doc: Document) -> Document | str:
        text = cut_before_first_section(doc.text)
        if text is None:
            return "no_section"
        # The preamble alone is scanned, at a fraction of the whole text's cost: the cut lies
        # outside verbatim, so the definitions read there are those a scan of the whole text reads.
        preamble = doc.text[: len(doc.text) - len(text)]
        doc.meta[VERBATIM_ENVIRONMENTS] = sorted(regions(preamble).environments.verbatim)
        doc.text = text
        return doc


class RemoveBibliography(Stage):
    name = "remove_bibliography"

    def process(self, doc: Document) -> Document | str:
        # Absent when no cut ran before: the text then still holds the definitions. Removed here:
        # the key is the cut's message to this stage, never a column. Comment environments need
        # no message: the reader removed their blocks before the cut.
        cut_verbatim = frozenset(doc.meta.pop(VERBATIM_ENVIRONMENTS, ()))
        doc.text = remove_bibliography(doc.text, Environments(verbatim=cut_verbatim))
        return doc
