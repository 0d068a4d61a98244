"""Mixture sampling over memory-mapped token shards: proportions, epochs, determinism, bad shards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.common.errors import InputError, UserError
from pipeline.corpus.mixture import LLAMA1, Mixture
from tests.train.token_shards import write_llama1_tokens, write_source
from train.data import MixtureLoader, open_mixture, open_source


def test_token_shares_follow_llama1_and_epochs_are_drawn_over_available(tmp_path: Path) -> None:
    # Sources of very different sizes: shares must follow the mixture, not the sizes.
    sizes = {"commoncrawl": 3000, "c4": 9000, "github": 2000, "wikipedia": 6000, "books": 1500, "arxiv": 2500,
             "stackexchange": 1000}
    written = write_llama1_tokens(tmp_path, tokens_per_source=sizes)
    data = open_mixture(tmp_path, LLAMA1)
    assert {s.name: s.tokens for s in data.sources} == written
    loader = MixtureLoader(data.sources, data.proportions, seq_len=16, micro_batch=25, seed=0)
    for step in range(400):  # 10,000 sequences
        loader.batch(step)
    drawn = loader.tokens_drawn
    total = sum(drawn.values())
    assert total == 400 * 25 * 16
    for name, share in LLAMA1.proportions.items():
        assert abs(drawn[name] / total - share) < 0.02, (name, drawn[name] / total, share)
    epochs = loader.epochs()
    for name in LLAMA1.proportions:
        assert epochs[name] == drawn[name] / written[name]
    assert epochs["commoncrawl"] > 10 * epochs["c4"]  # 67% of draws from a third of c4's tokens


def test_batches_depend_only_on_seed_step_rank_and_micro(tmp_path: Path) -> None:
    write_llama1_tokens(tmp_path)
    data = open_mixture(tmp_path, LLAMA1)

    def loader(seed: int = 0, rank: int = 0) -> MixtureLoader:
        return MixtureLoader(data.sources, data.proportions, seq_len=16, micro_batch=4, seed=seed, rank=rank)

    fresh, used = loader(), loader()
    for step in range(5):
        used.batch(step)
    assert all(np.array_equal(a, b) for a, b in zip(fresh.batch(7, 1), used.batch(7, 1)))
    x, y = fresh.batch(7, 1)
    assert x.shape == y.shape == (4, 16) and str(x.dtype) == "torch.int64"
    assert np.array_equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one
    assert not np.array_equal(fresh.batch(7, 0)[0], x)
    assert not np.array_equal(loader(rank=1).batch(7, 1)[0], x)
    assert not np.array_equal(loader(seed=1).batch(7, 1)[0], x)


def test_windows_cross_shard_boundaries_in_stream_order(tmp_path: Path) -> None:
    docs = [list(range(10 + 10 * d, 20 + 10 * d)) for d in range(9)]  # 9 docs of 10 ids, 3 per shard
    write_source(tmp_path / "c4", docs, vocab_size=1000, docs_per_shard=3)
    source = open_source(tmp_path / "c4", "c4")
    assert len(source.shards) == 3 and source.tokens == 9 * 12
    stream = np.concatenate([[1, *d, 2] for d in docs])
    for start in (0, 30, 34, 35, 50, 108 - 17):
        assert np.array_equal(source.read(start, 17), stream[start:start + 17])


def test_uint32_shards_for_large_vocabularies(tmp_path: Path) -> None:
    write_source(tmp_path / "c4", [[70000, 3, 65999]], vocab_size=100_000)
    source = open_source(tmp_path / "c4", "c4")
    assert source.meta["dtype"] == "uint32"
    assert source.read(0, 5).tolist() == [1, 70000, 3, 65999, 2]


def test_missing_source_is_one_clear_error(tmp_path: Path) -> None:
    write_llama1_tokens(tmp_path)
    (tmp_path / "arxiv" / "meta.json").unlink()
    with pytest.raises(InputError, match=r"arxiv/meta.json: missing"):
        open_mixture(tmp_path, LLAMA1)
    with pytest.raises(InputError, match="token shard folder does not exist"):
        open_mixture(tmp_path / "nowhere", LLAMA1)


def test_skip_missing_sources_renormalises_the_rest(tmp_path: Path) -> None:
    write_llama1_tokens(tmp_path)
    for name in ("books", "arxiv"):
        (tmp_path / name / "meta.json").unlink()
    data = open_mixture(tmp_path, LLAMA1, skip_missing=True)
    assert data.skipped == ["books", "arxiv"]
    loader = MixtureLoader(data.sources, data.proportions, seq_len=8, micro_batch=1, seed=0)
    assert loader.proportions.sum() == pytest.approx(1.0)
    assert loader.proportions[0] == pytest.approx(0.67 / 0.93)


def test_truncated_bin_is_detected(tmp_path: Path) -> None:
    write_source(tmp_path / "c4", [[5] * 40] * 3, vocab_size=300)
    with open(tmp_path / "c4" / "train-00000.bin", "r+b") as f:
        f.truncate(2 * 100)
    with pytest.raises(InputError, match=r"train-00000.idx: ends at token 126 but its .bin holds 100 tokens"):
        open_source(tmp_path / "c4", "c4")


def test_sources_with_different_tokenizers_are_refused(tmp_path: Path) -> None:
    write_source(tmp_path / "a", [[5] * 40], vocab_size=300, tokenizer_sha256="a" * 64)
    write_source(tmp_path / "b", [[5] * 40], vocab_size=300, tokenizer_sha256="b" * 64)
    with pytest.raises(InputError, match="tokenizer_sha256 .* differs"):
        open_mixture(tmp_path, Mixture("ab", {"a": 0.5, "b": 0.5}))


def test_source_shorter_than_one_sequence_is_refused(tmp_path: Path) -> None:
    write_source(tmp_path / "c4", [[5] * 10], vocab_size=300)
    with pytest.raises(InputError, match="holds 12 tokens, fewer than one sequence of 33"):
        MixtureLoader([open_source(tmp_path / "c4", "c4")], [1.0], seq_len=32, micro_batch=1, seed=0)


def test_bin_name_from_the_tokenizer_writers_bin_key(tmp_path: Path) -> None:
    write_source(tmp_path / "c4", [[7] * 20], vocab_size=300)
    meta_path = tmp_path / "c4" / "meta.json"
    meta = json.loads(meta_path.read_text())
    (tmp_path / "c4" / "train-00000.bin").rename(tmp_path / "c4" / "renamed.bin")
    meta["splits"]["train"]["shards"][0]["bin"] = "renamed.bin"
    meta_path.write_text(json.dumps(meta))
    assert open_source(tmp_path / "c4", "c4").tokens == 22


def test_loader_state_round_trips_and_rejects_other_sources(tmp_path: Path) -> None:
    write_llama1_tokens(tmp_path)
    data = open_mixture(tmp_path, LLAMA1)
    loader = MixtureLoader(data.sources, data.proportions, seq_len=8, micro_batch=3, seed=0)
    loader.batch(0)
    other = MixtureLoader(data.sources, data.proportions, seq_len=8, micro_batch=3, seed=0)
    other.load_state_dict(loader.state_dict())
    assert other.tokens_drawn == loader.tokens_drawn and sum(other.tokens_drawn.values()) == 24
    with pytest.raises(UserError, match="checkpoint was drawn from sources"):
        other.load_state_dict({"tokens_drawn": {"c4": 1}})
