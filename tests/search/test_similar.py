"""Paraphrase mining (search/similar.py) against an exact brute force: the pairs, their scores and order, the cap,
the tiles, the memory bound, the progress bar, the argument checks and the grouping of identical texts.

Embeddings are multiples of 1/8 with at most 4 columns, so every dot product is a multiple of 1/64 that float32
holds exactly whatever order the tiles add it in: scores compare with ``==``, and thresholds of k/64 put many pairs
exactly on the threshold (and many ties in the order).
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import isbert.search.similar as similar
from isbert.errors import IsbertError
from isbert.search.similar import _prune, group_identical, mine_pairs


@st.composite
def dyadic_matrices(draw: st.DrawFn, max_rows: int = 16) -> np.ndarray:
    """An n x d integer matrix (entries -4..4; the embeddings are it / 8)."""
    n, d = draw(st.integers(0, max_rows)), draw(st.integers(1, 4))
    return np.array(draw(st.lists(st.integers(-4, 4), min_size=n * d, max_size=n * d)), dtype=np.int64).reshape(n, d)


def brute_force(ints: np.ndarray, cut: int) -> list[tuple[int, int, float]]:
    """Every (i, j, score), i < j, with score = ints[i].ints[j] / 64 >= cut / 64, best first, then by i, then j."""
    dots = ints @ ints.T
    pairs = [(i, j, dots[i, j] / 64) for i in range(len(ints)) for j in range(i + 1, len(ints)) if dots[i, j] >= cut]
    return sorted(pairs, key=lambda p: (-p[2], p[0], p[1]))


def as_tuples(report: similar.PairReport) -> list[tuple[int, int, float]]:
    return list(zip(report.first.tolist(), report.second.tolist(), report.scores.tolist(), strict=True))


@settings(max_examples=300, deadline=None)
@given(dyadic_matrices(), st.integers(-64, 64), st.integers(1, 9), st.integers(1, 40))
@example(np.array([[4, 0], [4, 0], [0, 4], [2, 2]]), 0, 1, 40)  # threshold 0: the diagonal tile's masked cells
@example(np.array([[4, 0], [-4, 0], [0, 4]]), -64, 2, 40)  # threshold -1: every pair, the opposite ones too
@example(np.array([[4, 0], [2, 2], [0, 4], [4, 0], [2, 2]]), 32, 2, 3)  # pairs exactly at 0.5, ties at the cap
def test_pairs_equal_the_brute_force(ints: np.ndarray, cut: int, block: int, max_pairs: int) -> None:
    """Any tiling gives exactly the brute force's pairs: catches tiles that skip rows or columns (starting at 1),
    row/column offsets added wrongly, self pairs or (j, i) duplicates from a wrong diagonal mask (k=0, k=2, a +2
    fill, triu's zeros at thresholds <= 0), a strict ``>`` dropping pairs exactly at the threshold, a pruned list
    rebuilt from the wrong columns, scores off by rounding, a wrong order (score, then first, then second), a wrong
    ``qualified``/``truncated``, and an empty report of the wrong length or dtype."""
    report = mine_pairs(ints.astype(np.float32) / 8, cut / 64, block=block, max_pairs=max_pairs)
    want, got = brute_force(ints, cut), as_tuples(report)
    kept = min(len(want), max_pairs)
    assert (report.first.dtype, report.second.dtype, report.scores.dtype) == (np.int64, np.int64, np.float32)
    assert report.first.shape == report.second.shape == report.scores.shape == (kept,) and len(report) == kept
    assert report.qualified == len(want) and report.truncated == (len(want) > max_pairs)
    assert [s for *_, s in got] == [s for *_, s in want[:kept]]  # the best scores, exactly, best first
    assert got == sorted(got, key=lambda p: (-p[2], p[0], p[1]))  # ties: by first, then second
    assert set(got) <= set(want) and len(set(got)) == len(got)  # real pairs (i < j) with their scores, once each
    if kept == len(want) or want[kept - 1][2] > want[kept][2]:  # no tie across the cap: the pairs are determined
        assert got == want[:kept]


@settings(max_examples=100, deadline=None)
@given(dyadic_matrices(max_rows=30), st.integers(-64, 64), st.integers(1, 6), st.integers(1, 8))
@example(np.ones((30, 1), dtype=np.int64), -64, 3, 6)  # tiles of 3 then 9 pairs: 12 held, exactly 2 * max_pairs
def test_held_pairs_stay_within_the_memory_bound(ints: np.ndarray, cut: int, block: int, max_pairs: int) -> None:
    """The pairs held during the scan are pruned to the best ``max_pairs`` as soon as more than ``2 * max_pairs``
    are held, and only then: catches a held count that is reset (``=``) or decreased (``-=``) per tile instead of
    summed (no pruning at all: every qualified pair held), pruning above 3 * max_pairs, and pruning too eagerly
    (at 2 * max_pairs exactly, or above 2 / max_pairs: an argpartition per tile)."""
    sizes: list[int] = []

    def spy(first: np.ndarray, second: np.ndarray, scores: np.ndarray, keep: int) -> tuple[np.ndarray, ...]:
        sizes.append(len(scores))
        return real(first, second, scores, keep)

    real = similar._prune
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(similar, "_prune", spy)
        report = mine_pairs(ints.astype(np.float32) / 8, cut / 64, block=block, max_pairs=max_pairs)
    if not report.qualified:
        assert sizes == []
        return
    *during, last = sizes
    assert all(2 * max_pairs < size <= 2 * max_pairs + block * block for size in during), (sizes, max_pairs)
    assert last <= 2 * max_pairs, (sizes, max_pairs)
    if report.qualified > 2 * max_pairs + block * block:
        assert during  # so many pairs cannot all be held: the scan pruned


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1, 1, width=32), min_size=1, max_size=40, unique=True), st.data())
def test_prune_keeps_the_best_rows_together(values: list[float], data: st.DataObject) -> None:
    """_prune keeps the ``keep`` best scores with their own first/second: catches partitioning around the wrong
    element (keep + 1 raises or keeps a worse one, keep - 2 keeps an arbitrary last one)."""
    scores = np.array(values, dtype=np.float32)
    keep = data.draw(st.integers(1, len(values) + 2))
    first, second, kept = _prune(np.arange(len(values)), np.arange(len(values)) + 100, scores, keep)
    assert sorted(kept.tolist(), reverse=True) == sorted(scores.tolist(), reverse=True)[:keep]
    assert np.array_equal(second, first + 100) and np.array_equal(scores[first], kept)


def test_prune_keeps_exactly_the_best_of_a_long_list() -> None:
    """Every cap of 300 distinct scores keeps exactly the best: catches partitioning around ``keep - 2``, which
    numpy's introselect only gets away with on short lists (keep 1 of 300 returns an arbitrary one)."""
    scores = np.random.default_rng(0).permutation(300).astype(np.float32)
    rows = np.arange(300)
    for keep in range(1, 302):
        first, second, kept = _prune(rows, rows + 1000, scores, keep)
        assert sorted(kept.tolist()) == list(range(max(300 - keep, 0), 300)), keep
        assert np.array_equal(second, first + 1000) and np.array_equal(scores[first], kept)


def test_a_pair_exactly_at_the_threshold_is_kept() -> None:
    """``>= threshold``, not ``>``: catches dropping the pair whose cosine equals the threshold (-1, 0.5 and 1)."""
    data = np.array([[1, 0], [0.5, 0.75**0.5], [-1, 0]], dtype=np.float32)
    assert as_tuples(mine_pairs(data, 0.5)) == [(0, 1, 0.5)]
    assert as_tuples(mine_pairs(data[[0, 0]], 1.0)) == [(0, 1, 1.0)]
    assert (mine_pairs(data, -1.0).qualified, mine_pairs(data, -1.0).scores[-1]) == (3, -1.0)


def test_a_tiny_positive_threshold_lists_no_self_or_reversed_pairs() -> None:
    """A threshold above 0 that float32 rounds to 0 (1e-46) once masked the diagonal tile with triu's zeros, which
    then passed ``tile >= 0`` in float32: every (i, i) and (j, i) was listed with score 0."""
    report = mine_pairs(np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32), 1e-46)
    assert np.all(report.first < report.second) and report.qualified <= 3
    assert [(i, j) for i, j, _ in as_tuples(report)][:2] == [(1, 2), (0, 2)]


def test_float64_embeddings_are_compared_in_float32() -> None:
    """The input is converted to float32 (the documented 64 MB tile at block 4096): catches tiles computed in the
    input's float64 (twice the memory, and results that depend on the dtype: 0.5 - 1e-12 rounds to 0.5 in float32)."""
    x = 0.5 - 1e-12
    data = np.array([[1.0, 0.0], [x, np.sqrt(1 - x * x)]])
    assert as_tuples(mine_pairs(data, 0.5)) == as_tuples(mine_pairs(data.astype(np.float32), 0.5)) == [(0, 1, 0.5)]


@pytest.mark.parametrize("threshold", [-1.0, 1.0])
def test_thresholds_minus_one_and_one_are_accepted(threshold: float) -> None:
    """The range -1..1 is closed: catches refusing -1 (``-1 < t``) or 1 (``t < 1``)."""
    assert mine_pairs(np.array([[1.0, 0.0], [threshold, 0.0]]), threshold).qualified == 1


@pytest.mark.parametrize("threshold", [-1.5, -1.0000001, 1.0000001, float("nan")])
def test_thresholds_outside_minus_one_to_one_are_refused(threshold: float) -> None:
    """Catches a widened range (-2 <= t) and a check that lets NaN through; the message names the value."""
    message = f"--threshold must be a cosine similarity between -1 and 1, got {threshold}"
    with pytest.raises(IsbertError, match=f"^{re.escape(message)}$"):
        mine_pairs(np.eye(2), threshold)


@pytest.mark.parametrize(("max_pairs", "block"), [(0, 5), (5, 0), (-1, 1), (1, -3), (0, 0)])
def test_max_pairs_or_block_below_one_is_refused(max_pairs: int, block: int) -> None:
    """Catches ``and`` for ``or`` (one bad value let through) and a lost or changed message."""
    with pytest.raises(IsbertError, match=r"^max_pairs and block must be at least 1$"):
        mine_pairs(np.eye(2), 0.5, max_pairs=max_pairs, block=block)


def test_max_pairs_one_and_block_one_are_accepted() -> None:
    """Catches ``<= 1`` / ``< 2`` refusing the smallest legal cap or tile."""
    data = np.array([[1, 0], [0.8, 0.6], [0.6, 0.8]], dtype=np.float32)
    report = mine_pairs(data, 0.5, max_pairs=1, block=1)
    assert as_tuples(report) == [(1, 2, pytest.approx(0.96))] and report.qualified == 3 and report.truncated


def test_progress_bar_counts_tiles_and_is_off_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    """5 rows in tiles of 2: 3 row blocks, 6 upper-triangle tiles. Catches a wrong tile total (None, a float,
    n(n-1)/2, n(n+2)/2, /3), a step of 2 or None, the bar's name and unit lost, and the bar shown when not asked
    for (a default of True, ``disable=show_progress``, no ``disable``) or hidden when asked for (``disable=None``
    hides it off a terminal)."""
    data = np.eye(5, dtype=np.float32)
    mine_pairs(data, 0.5, block=2)
    assert capsys.readouterr().err == ""
    mine_pairs(data, 0.5, block=2, show_progress=True)
    bar = capsys.readouterr().err.strip().split("\r")[-1]
    assert re.fullmatch(r"pairs: 100%\|[^|]*\| 6/6 \[[^\]]*(tile/s|s/tile)\]", bar), bar


def test_default_block_is_4096_rows(capsys: pytest.CaptureFixture[str]) -> None:
    """The documented default tile (4096 rows, 64 MB): 4097 rows take 2 row blocks, 3 tiles. Catches another
    default (4097 would take 1 tile of 4097^2)."""
    mine_pairs(np.zeros((4097, 1), dtype=np.float32), 1.0, show_progress=True)
    assert " 3/3 [" in capsys.readouterr().err.strip().split("\r")[-1]


def test_default_cap_is_100000_pairs() -> None:
    """450 identical rows: 101025 pairs qualify, the best 100000 are kept by default. Catches another default."""
    report = mine_pairs(np.ones((450, 1), dtype=np.float32), 1.0)
    assert (len(report), report.qualified, report.truncated) == (100_000, 101_025, True)


def test_no_pairs_is_an_empty_report_of_the_usual_dtypes() -> None:
    """No rows, one row, or no pair above the threshold: empty int64/int64/float32 arrays, 0 qualified. Catches
    None, a length-1 or float64 array, or qualified 1 in the empty report."""
    for data in (np.empty((0, 3)), np.eye(1), np.eye(4)):
        report = mine_pairs(data, 0.5, block=2)
        assert (report.first.dtype, report.second.dtype, report.scores.dtype) == (np.int64, np.int64, np.float32)
        assert report.first.shape == report.second.shape == report.scores.shape == (0,)
        assert (len(report), report.qualified, report.truncated) == (0, 0, False)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "A", "a ", ""]), max_size=20))
def test_group_identical_is_first_rows_and_counts(texts: list[str]) -> None:
    """Each distinct text (exactly equal: case and spaces count) once, at its first row, with how often it occurs,
    as int64 arrays (also for no texts: catches counts built without a dtype, float64 when empty)."""
    groups = group_identical(texts)
    distinct = list(dict.fromkeys(texts))
    assert groups.first_rows.tolist() == [texts.index(t) for t in distinct]
    assert groups.counts.tolist() == [texts.count(t) for t in distinct]
    assert groups.first_rows.dtype == groups.counts.dtype == np.int64
    assert groups.repeated == sum(c > 1 for c in Counter(texts).values())


def test_group_identical_of_no_texts() -> None:
    """Empty input: empty int64 arrays (np.array([]) alone would be float64)."""
    groups = group_identical([])
    assert groups.first_rows.dtype == groups.counts.dtype == np.int64 and groups.counts.shape == (0,)
    assert groups.repeated == 0
