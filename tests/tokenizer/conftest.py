"""A small tokenizer trained once per test session on generated multilingual shards."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.corpus.mixture import Mixture
from tests.tokenizer.corpus import write_source
from tokenizer.train import TrainResult, train_tokenizer

MIXTURE = Mixture("test", {"c4": 0.5, "wikipedia": 0.3, "github": 0.2})
SIZES = {"c4": 600, "wikipedia": 300, "github": 200}  # documents per source, about 640 bytes each
VOCAB = 1000


def write_corpus(root: Path, sizes: dict[str, int] = SIZES, shard_docs: int | None = 150) -> Path:
    for source, documents in sizes.items():
        write_source(root, source, documents, shard_docs=shard_docs)
    return root


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    root = tmp_path_factory.mktemp("tokenizer")
    corpus = write_corpus(root / "corpus")
    return train_tokenizer(MIXTURE, corpus, root / "tokenizer", vocab_size=VOCAB, sample_bytes=300_000, threads=1)
