"""A stage's exception on a document, handled inside the worker: the document is dropped as
`stage_error`, listed with where it was read, and the task goes on.

A library that raises on markup nobody foresaw (a parser's error on one page) used to fail the
whole attempt, as a crash does: the task ran again to pin the document, and once more to drop
it, so each such document cost two runs of its task (hours at the paper's scale), and a task
holding 13 of them used up its failures and ended the run.
An exception, unlike a crash or a stall, leaves the worker able to go on: the chunk is given to
the stage again one document at a time, each document it raises on is dropped, and the rest go
on as if nothing had happened. Crashes and stalls are still the supervisor's to isolate, by
running the task again (pipeline/engine/supervisor.py).

A stage that raises on MAX_IN_A_ROW documents in a row, none passing it between them, is failing
itself (a bug, a model it cannot use), not meeting bad documents: the run ends with one line
naming the stage and its error, rather than dropping the corpus one document at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.common.errors import UserError
from pipeline.engine.document import Document, Skipped
from pipeline.engine.stage import Result, Stage
from pipeline.engine.unreadable import described

STAGE_ERROR = "stage_error"
MAX_IN_A_ROW = 25


class StageFailing(UserError):
    """A stage raised on MAX_IN_A_ROW documents in a row: the stage's failure, not theirs."""


class StageErrors:
    """One task's stage exceptions: documents dropped and listed in `documents_failed` (with the
    input and record they were read from, and `how`: the error and where it was raised), and how
    many documents in a row each stage has raised on."""

    def __init__(self, where: str, documents_failed: list[dict]) -> None:
        self.where = where  # "task 3 of pass 0": named when a stage is given up
        self.documents_failed = documents_failed
        self.in_a_row: dict[str, int] = {}
        self._input: str | None = None
        self._item = 0
        self._chunk: Sequence[Document | Skipped] = ()

    def reading(self, input_path: str | None, item: int, chunk: Sequence[Document | Skipped]) -> None:
        """The chunk now going through the stages: read from `input_path` (None: an earlier pass's
        parts), its first entry record `item`."""
        self._input, self._item, self._chunk = input_path, item, chunk

    def process(self, stage: Stage, docs: list[Document]) -> list[Result]:
        """`stage.process_batch(docs)`; when it raises (but for the user's errors and the machine's),
        each document alone, as it came in, the ones it raises on given the drop reason STAGE_ERROR.

        Stages change documents in place (a transform sets `doc.text`, a filter writes `meta`),
        and one that raised may have changed some: each is given back its text and metadata as
        they came in before it goes again (a transform applied twice, line dedup's line removal
        among them, would remove other lines). What is kept: the text (immutable) and a copy of
        the metadata dict, a few percent of the engine's time per document."""
        texts, metas = [doc.text for doc in docs], [doc.meta.copy() for doc in docs]
        try:
            results = stage.process_batch(docs)
        except (UserError, OSError):
            raise
        except Exception:  # noqa: BLE001  (which document: found below, one at a time)
            return [self._alone(stage, doc, entered) for doc, entered in zip(docs, zip(texts, metas))]
        self.in_a_row[stage.name] = 0
        return results

    def _alone(self, stage: Stage, doc: Document, entered: tuple[str, dict]) -> Result:
        doc.text, doc.meta = entered[0], entered[1].copy()
        try:
            results = stage.process_batch([doc])
        except (UserError, OSError):
            raise
        except Exception as e:  # noqa: BLE001  (this document's: dropped and listed, as it came in)
            doc.text, doc.meta = entered
            count = self.in_a_row[stage.name] = self.in_a_row.get(stage.name, 0) + 1
            if count >= MAX_IN_A_ROW:
                raise StageFailing(f"{self.where}: stage {stage.name} raised {described(e)} on {count} documents in "
                                   f"a row, the last {self._shown(doc)}; giving up: the stage fails, not the "
                                   "documents (rerun the same command to try again)") from None
            how = "raised " + described(e, f" in stage {stage.name}")
            self.documents_failed.append({"input": self._input, "record": self._record(doc), "id": doc.id,
                                          "stage": stage.name, "reason": STAGE_ERROR, "how": how})
            return STAGE_ERROR
        self.in_a_row[stage.name] = 0
        return results[0]

    def _record(self, doc: Document) -> int:
        """The record `doc` was read as: its place in the chunk (skipped entries count), past the chunk's first."""
        for offset, entry in enumerate(self._chunk):
            if isinstance(entry, Document) and entry.id == doc.id:
                return self._item + offset
        return self._item

    def _shown(self, doc: Document) -> str:
        return f"{self._input or 'of its documents'} record {self._record(doc)}"


def dropped_line(where: str, failed: dict) -> str:
    """The warning for a document `StageErrors` dropped, as `documents_failed` lists it."""
    return (f"warning: {where}, {failed.get('input') or 'its documents'} record {failed.get('record')}: "
            f"{failed.get('how')}; the document is dropped as {STAGE_ERROR}")
