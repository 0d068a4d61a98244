"""The rule for questions nobody answered (question-and-answer sources).

A document of the paper's Stack Exchange data is a question followed by its answers. A
question without answers is dropped by default (reason `no_answers`): it is a request with
nothing given in return, and usually the lower-quality end of a site. With `keep=True`
such questions stay as their title and body alone.
"""

from __future__ import annotations

from pipeline.engine.document import Document
from pipeline.engine.stage import Filter


class UnansweredQuestions(Filter):
    name = "unanswered"

    def __init__(self, keep: bool = False) -> None:
        self.keep_unanswered = keep

    def keep(self, doc: Document) -> bool | str:
        return self.keep_unanswered or doc.meta["answer_count"] > 0 or "no_answers"
