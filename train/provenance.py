"""Provenance: the rows naming each sequence a step draws, and the corpus documents it covers.

One row per sequence, the same for `train data --trace FILE` and `train --log-documents`
(`<run>/documents.jsonl`):

    {"step": 12, "micro": 0, "rank": 1, "source": "c4", "start": 40960, "length": 2049,
     "documents": ["c4/en/c4-train.00012-of-01024.json.gz:881", ...]}

`micro` is the micro-batch on its data-parallel `rank` (the loop's accumulation index), `start`
the window's first token in the source's train split (shards concatenated in meta.json's order),
`length` seq_len + 1, `documents` the corpus ids of the documents the window's tokens come from
(the `.ids` sidecar of the token shards), or null where the shards have none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from train.sampler import Draw, ExactEpochSampler

NO_DOCUMENT_IDS = ("token shards without document ids (encoded before `.ids` sidecars existed, or planned "
                   "from --available): \"documents\" is null; re-encode with `tokenizer encode --restart` to get them")

Documents = Callable[[Draw], "list[str] | None"]


def step_rows(sampler: ExactEpochSampler, step: int, *, step_sequences: int, micro_batch: int, data_ranks: int,
              documents: Documents | None = None) -> Iterator[dict[str, Any]]:
    """Every sequence of `step`, rank by rank and micro-batch by micro-batch as the loop draws them
    (train/parallel.py `micro_index`: rank d's m-th micro-batch is global micro-batch d * accumulation + m)."""
    accumulation = step_sequences // (micro_batch * data_ranks)
    draws = sampler.draws(step * step_sequences, step_sequences)
    for position, draw in enumerate(draws):
        rank, micro = divmod(position // micro_batch, accumulation)
        yield {"step": step, "micro": micro, "rank": rank, "source": sampler.names[draw.source], "start": draw.start,
               "length": sampler.seq_len + 1, "documents": documents(draw) if documents is not None else None}
