"""Mixture sampling over token shards: exact shares and epochs, one set of sequences a step
for any world size, the documents a window covers, bad shards."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.common.errors import InputError, UserError
from pipeline.corpus.mixture import LLAMA1, Mixture
from tests.train.token_shards import write_llama1_tokens, write_source
from train.data import MixtureLoader, open_mixture, open_source
from train.parallel import Parallel

ROOT = Path(__file__).resolve().parents[2]


def test_token_shares_follow_llama1_exactly_and_epochs_count_windows(tmp_path: Path) -> None:
    # Sources of very different sizes: shares must follow the mixture, not the sizes. (The old
    # loader drew with replacement and only came within 2% of the shares; these are exact.)
    sizes = {"commoncrawl": 3000, "c4": 9000, "github": 2000, "wikipedia": 6000, "books": 1500, "arxiv": 2500,
             "stackexchange": 1000}
    written = write_llama1_tokens(tmp_path, tokens_per_source=sizes)
    data = open_mixture(tmp_path, LLAMA1)
    assert {s.name: s.tokens for s in data.sources} == written
    loader = MixtureLoader(data.sources, data.proportions, seq_len=16, micro_batch=25, batch_tokens=16 * 25, seed=0)
    steps = 400  # 10,000 sequences: 50 whole periods of the llama1 blend (200 sequences)
    drawn = loader.tokens_drawn(steps)
    assert sum(drawn.values()) == steps * 25 * 16
    for name, share in LLAMA1.proportions.items():
        assert drawn[name] == round(share * 10_000) * 16
        windows = (written[name] - 1) // 16  # windows of 17 tokens at stride 16
        assert loader.epochs(steps)[name] == round(share * 10_000) / windows
    # What the batches hold is what the counts say: every row is a window of its source.
    streams = {s.name: s.read(0, s.tokens) for s in data.sources}
    seen = dict.fromkeys(written, 0)
    for step in range(3):
        inputs, targets = loader.batch(step)
        for row, draw in enumerate(loader.draws(step)):
            name = data.sources[draw.source].name
            window = streams[name][draw.start:draw.start + 17]
            assert draw.start % 16 == 0 and inputs[row].tolist() == window[:-1].tolist()
            assert targets[row].tolist() == window[1:].tolist()
            seen[name] += 16
    assert seen == loader.tokens_drawn(3)


def test_batches_depend_only_on_seed_step_and_micro(tmp_path: Path) -> None:
    write_llama1_tokens(tmp_path)
    data = open_mixture(tmp_path, LLAMA1)

    def loader(seed: int = 0) -> MixtureLoader:
        return MixtureLoader(data.sources, data.proportions, seq_len=16, micro_batch=4, batch_tokens=16 * 4 * 2,
                             seed=seed)

    fresh, used = loader(), loader()
    for step in range(5):
        used.batch(step)
    assert all(np.array_equal(a, b) for a, b in zip(fresh.batch(7, 1), used.batch(7, 1)))
    x, y = fresh.batch(7, 1)
    assert x.shape == y.shape == (4, 16) and str(x.dtype) == "torch.int64"
    assert np.array_equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one
    assert not np.array_equal(fresh.batch(7, 0)[0], x)
    assert not np.array_equal(loader(seed=1).batch(7, 1)[0], x)
    # Micro-batch 1 of step 7 is global sequences 7 * 8 + 4 .. 7 * 8 + 7.
    assert [d.sequence for d in fresh.draws(7, 1)] == [60, 61, 62, 63]


def _step_draws(loader: MixtureLoader, step: int, world_size: int) -> list[tuple[str, int]]:
    """(source, start) of every sequence of `step`, drawn rank by rank as the training loop does."""
    accumulation = loader.step_sequences // (loader.micro_batch * world_size)
    found = []
    for rank in range(world_size):
        par = Parallel("fsdp", rank, world_size, 1, torch.device("cpu"), None)
        for micro in range(accumulation):
            found += [(loader.sources[d.source].name, d.start)
                      for d in loader.draws(step, par.micro_index(micro, accumulation))]
    return found


def test_a_step_draws_one_set_of_sequences_for_1_2_and_8_ranks(tmp_path: Path) -> None:
    write_llama1_tokens(tmp_path)
    data = open_mixture(tmp_path, LLAMA1)
    loader = MixtureLoader(data.sources, data.proportions, seq_len=16, micro_batch=2, batch_tokens=16 * 2 * 8,
                           seed=0)
    for step in (0, 1, 13, 57):
        one = _step_draws(loader, step, 1)
        assert len(one) == 16 == len(set(one))  # under one epoch of every source: no repeats within a step
        assert sorted(_step_draws(loader, step, 2)) == sorted(one)
        assert sorted(_step_draws(loader, step, 8)) == sorted(one)
    # Steps tile the global sequence index: a run of k steps then m more is a run of k + m.
    run = [d for step in range(10) for d in _step_draws(loader, step, 2)]
    assert run == [(data.sources[d.source].name, d.start) for d in loader.sampler.draws(0, 10 * 16)]


def test_documents_of_a_window_are_the_ones_its_tokens_come_from(tmp_path: Path) -> None:
    # Documents of different lengths, 3 per shard: windows cross documents and shards.
    lengths = [5, 30, 2, 12, 40, 7, 1, 25, 9, 14]
    docs = [[3 + d] * n for d, n in enumerate(lengths)]
    write_source(tmp_path / "c4", docs, vocab_size=300, docs_per_shard=3)
    source = open_source(tmp_path / "c4", "c4")
    owner = [f"c4-{d}" for d, n in enumerate(lengths) for _ in range(n + 2)]  # token -> document, bos/eos included
    for start in range(0, len(owner) - 17, 16):
        expected = list(dict.fromkeys(owner[start:start + 17]))
        assert source.documents(start, 17) == expected, start
    write_source(tmp_path / "old", docs, vocab_size=300, with_ids=False)
    assert open_source(tmp_path / "old", "old").documents(0, 17) is None


def test_damaged_document_ids_are_one_clear_error(tmp_path: Path) -> None:
    write_source(tmp_path / "c4", [[5] * 40] * 3, vocab_size=300)
    (tmp_path / "c4" / "train-00000.ids").write_bytes(b"not arrow")
    with pytest.raises(InputError, match=r"train-00000.ids: sha256 differs from meta.json's"):
        open_source(tmp_path / "c4", "c4").documents(0, 10)


def test_windows_cross_shard_boundaries_in_stream_order(tmp_path: Path) -> None:
    docs = [list(range(10 + 10 * d, 20 + 10 * d)) for d in range(9)]  # 9 docs of 10 ids, 3 per shard
    write_source(tmp_path / "c4", docs, vocab_size=1000, docs_per_shard=3)
    source = open_source(tmp_path / "c4", "c4")
    assert len(source.shards) == 3 and source.tokens == 9 * 12
    stream = np.concatenate([[1, *d, 2] for d in docs])
    for start in (0, 30, 34, 35, 50, 108 - 17):
        assert np.array_equal(source.read(start, 17), stream[start:start + 17])


def test_a_source_of_more_shards_than_the_process_may_open_is_read(tmp_path: Path) -> None:
    """The paper's corpus is some 18,000 token shards, two files each; the usual limit on open
    files is 1,024. Shards are read a window at a time: 300 shards train and name documents under
    a limit of 64 open files."""
    docs = [[10 + d % 50] * 5 for d in range(600)]
    write_source(tmp_path / "c4", docs, vocab_size=1000, docs_per_shard=2)
    script = (
        "import resource, sys; from pathlib import Path\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "from train.data import open_source\n"
        "source = open_source(Path(sys.argv[1]) / 'c4', 'c4')\n"
        "print(len(source.shards), source.read(0, source.tokens).tolist() == sum(([1, *[10 + d % 50] * 5, 2] "
        "for d in range(600)), []), source.documents(13, 10))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    # Tokens 13-22 fall in documents 1-3 (7 tokens each, BOS and EOS included): the writer's ids.
    assert done.stdout.strip() == "300 True ['c4-1', 'c4-2', 'c4-3']"


def test_document_ids_of_more_shards_than_are_kept_read_are_read_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import train.data

    monkeypatch.setattr(train.data, "IDS_HELD", 2)
    write_source(tmp_path / "c4", [[7] * 5] * 10, vocab_size=300, docs_per_shard=2)  # 5 shards, 7 tokens a doc
    source = open_source(tmp_path / "c4", "c4")
    for doc in [0, 9, 4, 0, 6, 2, 9, 8]:  # shards 0, 4, 2, 0, 3, 1, 4, 4
        assert source.documents(7 * doc, 7) == [f"c4-{doc}"]
    assert len(source._ids) == 2


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
    loader = MixtureLoader(data.sources, data.proportions, seq_len=8, micro_batch=1, batch_tokens=8, seed=0)
    assert loader.sampler.proportions == pytest.approx([p / 0.93 for p in (0.67, 0.15, 0.045, 0.045, 0.02)])
    assert loader.sampler.blend.period == 186  # 670 + 150 + 45 + 45 + 20 thousandths = 930, over their gcd 5


def test_skip_missing_sources_refuses_a_source_whose_encode_did_not_finish(tmp_path: Path) -> None:
    write_llama1_tokens(tmp_path)
    # What a killed `tokenizer encode` leaves: pairs and their markers, no meta.json (written last).
    (tmp_path / "books" / "meta.json").unlink()
    (tmp_path / "books" / "_work").mkdir()
    (tmp_path / "books" / "_work" / "done-00000.json").write_text("{}")
    (tmp_path / "arxiv" / "meta.json").unlink()  # never encoded: left out, as before
    with pytest.raises(InputError) as raised:
        open_mixture(tmp_path, LLAMA1, skip_missing=True)
    assert str(raised.value) == (f"{tmp_path / 'books' / 'meta.json'}: missing: the `tokenizer encode` started "
                                 "here has not finished (rerun it); --skip-missing-sources leaves out only sources "
                                 "never encoded")
    shutil.rmtree(tmp_path / "books")
    assert open_mixture(tmp_path, LLAMA1, skip_missing=True).skipped == ["books", "arxiv"]


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
        MixtureLoader([open_source(tmp_path / "c4", "c4")], [1.0], seq_len=32, micro_batch=1, batch_tokens=32, seed=0)


def test_bin_name_from_the_tokenizer_writers_bin_key(tmp_path: Path) -> None:
    write_source(tmp_path / "c4", [[7] * 20], vocab_size=300)
    meta_path = tmp_path / "c4" / "meta.json"
    meta = json.loads(meta_path.read_text())
    (tmp_path / "c4" / "train-00000.bin").rename(tmp_path / "c4" / "renamed.bin")
    meta["splits"]["train"]["shards"][0]["bin"] = "renamed.bin"
    meta_path.write_text(json.dumps(meta))
    assert open_source(tmp_path / "c4", "c4").tokens == 22


def test_loader_state_holds_the_exact_counts_and_rejects_other_sources(tmp_path: Path) -> None:
    write_llama1_tokens(tmp_path)
    data = open_mixture(tmp_path, LLAMA1)
    loader = MixtureLoader(data.sources, data.proportions, seq_len=8, micro_batch=3, batch_tokens=24, seed=0)
    state = loader.state_dict(5)
    counted = dict.fromkeys(state["tokens_drawn"], 0)
    for step in range(5):
        for draw in loader.draws(step):
            counted[data.sources[draw.source].name] += 8
    assert state["tokens_drawn"] == counted and sum(counted.values()) == 5 * 24
    loader.load_state_dict(state)
    with pytest.raises(UserError, match="checkpoint was drawn from sources"):
        loader.load_state_dict({"tokens_drawn": {"c4": 1}})
