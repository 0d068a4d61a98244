"""The rule for questions nobody answered (question-and-answer sources).

A document of the paper's Stack Exchange data is a question followed by its answers. The paper
drops no question for lacking answers and RedPajama keeps them, so by default such questions
stay as their title and body alone. With `keep=False` they are dropped (reason `no_answers`):
a request with nothing given in return is often the lower-quality end of a site.
"""

from __future__ import annotations

from pipeline.engine.document import Document
from pipeline.engine.stage import Filter


class UnansweredQuestions(Filter):
    name = "unanswered"

    def __init__(self, keep: bool = True) -> None:
        self.keep_unanswered = keep

    def keep(self, doc: Document) -> bool | str:
        return self.keep_unanswered or doc.meta["answer_count"] > 0 or "no_answers"
