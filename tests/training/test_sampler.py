"""Batch orders: every sentence once per epoch, a pure function of the seed, and short length spreads when grouped."""

from __future__ import annotations

import itertools
import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isbert.training.sampler import EpochSeededBatchSampler, LengthGroupedBatchSampler, length_grouped_batches

lengths_strategy = st.lists(st.integers(min_value=1, max_value=128), min_size=1, max_size=600)


@settings(max_examples=60, deadline=None)
@given(lengths=lengths_strategy, batch_size=st.integers(2, 40), seed=st.integers(0, 2**31), drop_last=st.booleans())
def test_every_sentence_once_and_deterministic(lengths: list[int], batch_size: int, seed: int, drop_last: bool) -> None:
    batches = length_grouped_batches(lengths, batch_size, seed, drop_last, pool_batches=4)
    flat = [index for batch in batches for index in batch]
    assert len(flat) == len(set(flat))
    dropped = len(lengths) % batch_size if drop_last else 0
    assert len(flat) == len(lengths) - dropped
    assert all(len(batch) == batch_size for batch in batches) or not drop_last
    assert sum(len(batch) < batch_size for batch in batches) <= 1
    assert batches == length_grouped_batches(lengths, batch_size, seed, drop_last, pool_batches=4)


@settings(max_examples=30, deadline=None)
@given(lengths=st.lists(st.integers(1, 128), min_size=200, max_size=600), seed=st.integers(0, 2**31))
def test_within_a_pool_batches_do_not_overlap_in_length(lengths: list[int], seed: int) -> None:
    """The pool is sorted, so a batch's lengths lie between its neighbours': with one pool, spans do not interleave."""
    batches = length_grouped_batches(lengths, 8, seed, drop_last=False, pool_batches=len(lengths))
    spans = sorted((min(lengths[i] for i in b), max(lengths[i] for i in b)) for b in batches)
    for (_, high), (low, _) in itertools.pairwise(spans):
        assert high <= low


def test_length_spread_is_small_on_realistic_lengths() -> None:
    rng = random.Random(0)
    lengths = [max(3, int(rng.gauss(16, 6))) for _ in range(20_000)]
    grouped = length_grouped_batches(lengths, 32, seed=1, drop_last=True)
    random_batches = [list(range(i, i + 32)) for i in range(0, 20_000 - 31, 32)]

    def spread(batches: list[list[int]]) -> float:
        return statistics.mean(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)

    assert spread(grouped) <= 1.0 < 10 <= spread(random_batches)
    # and batches are shuffled: the first batches are not the shortest
    assert statistics.mean(lengths[i] for b in grouped[:50] for i in b) > 12


def test_seeds_differ() -> None:
    lengths = list(range(1, 500))
    assert length_grouped_batches(lengths, 16, 1, True) != length_grouped_batches(lengths, 16, 2, True)


def test_samplers_follow_seed_plus_epoch() -> None:
    data = list(range(100))
    lengths = [i % 17 for i in data]
    grouped = LengthGroupedBatchSampler(data, batch_size=10, drop_last=True, seed=3, lengths=lengths)
    plain = EpochSeededBatchSampler(data, batch_size=10, drop_last=True, seed=3)
    first, first_plain = list(grouped), list(plain)
    assert len(first) == len(grouped) == 10 and len(first_plain) == len(plain) == 10
    grouped.set_epoch(1)
    plain.set_epoch(1)
    assert list(grouped) != first and list(plain) != first_plain
    grouped.set_epoch(0)
    assert list(grouped) == first
    assert sorted(i for b in first for i in b) == data


def test_lengths_must_match_the_dataset() -> None:
    with pytest.raises(ValueError, match="3 lengths for 4 sentences"):
        LengthGroupedBatchSampler([0, 1, 2, 3], batch_size=2, drop_last=True, lengths=[1, 2, 3])
