"""The exact-epoch sampler on its own (numbers, no files): the window permutation is a bijection,
every window of a source drawn e epochs is drawn floor(e) or ceil(e) times, the blend keeps each
source within one sequence of its proportion at every prefix, and a plan for 1.4T tokens is small."""

from __future__ import annotations

import math
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.corpus.mixture import LLAMA1
from train.sampler import PERIOD_LIMIT, ExactEpochSampler, WindowPermutation, window_count


@settings(max_examples=60, deadline=None)
@given(n=st.integers(min_value=1, max_value=5000), key=st.binary(min_size=0, max_size=16))
def test_window_permutation_is_a_bijection_of_zero_to_n(n: int, key: bytes) -> None:
    images = WindowPermutation(n, key)(np.arange(n))
    assert np.array_equal(np.sort(images), np.arange(n))


def test_window_permutation_depends_on_its_key_and_maps_one_position_alone_the_same() -> None:
    n = 1000
    first, second = WindowPermutation(n, b"seed 0 epoch 0"), WindowPermutation(n, b"seed 0 epoch 1")
    whole = first(np.arange(n))
    assert not np.array_equal(whole, second(np.arange(n)))
    assert not np.array_equal(whole, np.arange(n))  # it shuffles
    assert [int(first(k)[0]) for k in (0, 17, 999)] == [int(whole[0]), int(whole[17]), int(whole[999])]


def test_windows_are_cut_at_stride_seq_len_sharing_one_token() -> None:
    # Window w is tokens [w*L, w*L + L] (L + 1 tokens): it needs w*L + L + 1 <= T.
    for tokens, seq_len in ((33, 32), (32, 32), (65, 32), (100, 8), (1, 8)):
        expected = sum(1 for w in range(tokens) if w * seq_len + seq_len + 1 <= tokens)
        assert window_count(tokens, seq_len) == expected


def _counts_at_every_prefix(sampler: ExactEpochSampler, sequences: int) -> np.ndarray:
    """(sequences + 1, sources): how many of the first j sequences each source gave."""
    which, _ = sampler.windows_of(np.arange(sequences))
    onehot = np.zeros((sequences + 1, len(sampler.names)), dtype=np.int64)
    onehot[np.arange(1, sequences + 1), which] = 1
    return np.cumsum(onehot, axis=0)


def _assert_within_one_sequence(counts: np.ndarray, proportions: list[str]) -> None:
    # The proportions as the decimals the mixture wrote, normalised, in exact arithmetic.
    exact = [Fraction(p) for p in proportions]
    shares = [p / sum(exact) for p in exact]
    for j in range(counts.shape[0]):
        for i, share in enumerate(shares):
            assert abs(counts[j, i] - share * j) < 1, (j, i, counts[j, i], float(share * j))


def test_llama1_blend_is_within_one_sequence_of_each_proportion_at_every_prefix() -> None:
    proportions = list(LLAMA1.proportions.values())
    sampler = ExactEpochSampler(list(LLAMA1.proportions), [10**6] * 7, proportions, seq_len=2048, seed=0)
    counts = _counts_at_every_prefix(sampler, 2345)  # several periods and a part of one
    _assert_within_one_sequence(counts, [repr(p) for p in proportions])
    assert counts[1000].tolist() == [670, 150, 45, 45, 45, 25, 20]  # a whole number of periods: exact


@settings(max_examples=60, deadline=None)
@given(weights=st.lists(st.integers(min_value=1, max_value=40), min_size=2, max_size=8))
def test_any_blend_is_within_one_sequence_of_each_proportion_at_every_prefix(weights: list[int]) -> None:
    proportions = [w / 100 for w in weights]  # decimals, as a mixture file writes them
    names = [f"s{i}" for i in range(len(weights))]
    sampler = ExactEpochSampler(names, [50] * len(weights), proportions, seq_len=4, seed=1)
    counts = _counts_at_every_prefix(sampler, 3 * sum(weights) + 7)
    _assert_within_one_sequence(counts, [repr(p) for p in proportions])


def test_proportions_with_many_digits_round_to_a_period_of_period_limit_by_largest_remainders() -> None:
    proportions = [0.3333333, 0.3333333, 0.3333334]  # exactly: a period of 10**7 sequences
    sampler = ExactEpochSampler(["a", "b", "c"], [10, 10, 10], proportions, seq_len=4, seed=0)
    assert sampler.blend.period == PERIOD_LIMIT == 65536
    # Ideal 21845.331, 21845.331, 21845.338 sequences: the one left over goes to the largest remainder, c's.
    assert sampler.blend.quotas.tolist() == [21845, 21845, 21846]


def test_each_source_walks_its_sequences_in_order_of_the_blend() -> None:
    # The k-th time a source comes up in the blend it gives its k-th sequence: no gaps, no repeats.
    sampler = ExactEpochSampler(["a", "b", "c"], [7, 5, 3], [0.5, 0.3, 0.2], seq_len=4, seed=0)
    which, index = sampler.blend.locate(np.arange(500))
    for source in range(3):
        assert index[which == source].tolist() == list(range(int((which == source).sum())))


def test_a_source_drawn_e_epochs_draws_every_window_floor_or_ceil_e_times() -> None:
    windows = [37, 11, 5, 400]
    proportions = [0.5, 0.25, 0.2, 0.05]
    seq_len = 8
    sampler = ExactEpochSampler(["a", "b", "c", "d"], windows, proportions, seq_len=seq_len, seed=3)
    sequences = 301
    which, drawn = sampler.windows_of(np.arange(sequences))
    for source, n in enumerate(windows):
        picked = drawn[which == source]
        per_window = np.bincount(picked, minlength=n)
        assert len(per_window) == n  # no window outside [0, n)
        epochs = len(picked) / n
        assert sampler.epochs(sequences)[sampler.names[source]] == epochs
        assert set(per_window.tolist()) <= {math.floor(epochs), math.ceil(epochs)}, (source, epochs)
        # Every input token [w*L, w*L + L) of a drawn window, counted one by one.
        per_token = np.bincount((picked[:, None] * seq_len + np.arange(seq_len)).ravel(), minlength=n * seq_len)
        assert set(per_token.tolist()) <= {math.floor(epochs), math.ceil(epochs)}
    # Source d is drawn under one epoch (15 of 400 windows): nothing repeats.
    d = drawn[which == 3]
    assert len(d) == 15 and len(set(d.tolist())) == 15


def test_a_fractional_last_epoch_is_a_prefix_of_a_fresh_permutation() -> None:
    sampler = ExactEpochSampler(["a"], [10], [1.0], seq_len=4, seed=0)
    _, drawn = sampler.windows_of(np.arange(25))
    epochs = [drawn[0:10].tolist(), drawn[10:20].tolist(), drawn[20:25].tolist()]
    assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(10))
    assert epochs[0] != epochs[1]  # a new seed per epoch
    assert len(set(epochs[2])) == 5


def test_plan_for_65b_at_1_4t_tokens_is_small_and_locates_its_last_step() -> None:
    # Tokens available from the paper's Table 1: proportion x 1.4T / epochs.
    available = {s: round(p * 1.4e12 / LLAMA1.reference_epochs[s]) for s, p in LLAMA1.proportions.items()}
    seq_len, step_sequences, steps = 2048, 2048, 1_400_000_000_000 // (2048 * 2048)
    tracemalloc.start()
    sampler = ExactEpochSampler(list(available), [window_count(t, seq_len) for t in available.values()],
                                list(LLAMA1.proportions.values()), seq_len=seq_len, seed=0)
    last_step = sampler.draws((steps - 1) * step_sequences, step_sequences)
    epochs = sampler.epochs(steps * step_sequences)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2 << 20, peak  # 2 MiB, including the last step's 2048 draws
    assert len(last_step) == 2048
    for source, reference in LLAMA1.reference_epochs.items():
        assert epochs[source] == pytest.approx(reference, abs=0.005)
