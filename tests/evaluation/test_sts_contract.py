"""The STS scoring functions' contract beyond the known answers of test_scoring.py: what each error says, the Pearson
column, the precision of the arithmetic on half-precision embeddings, and zero vectors. Written for the survivors of
mutmut on ``evaluation/sts.py`` (docs/testing.md lists the ones that are equivalent)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.stats import pearsonr

from isbert.errors import IsbertError
from isbert.evaluation.sts import aggregate, check_finite, cosine_rows, evaluate_sts, pearson, spearman
from isbert.evaluation.tasks import StsSubset, StsTask


def test_the_non_finite_message_counts_the_rows_and_names_what() -> None:
    embeddings = np.ones((5, 3))
    embeddings[1, 2] = np.nan
    embeddings[3, 0] = np.inf
    embeddings[3, 1] = np.nan  # two bad values in one row: counted once
    message = "the model produced non-finite embeddings (2 of 5 rows contain NaN/inf)"
    with pytest.raises(IsbertError, match=f"^{re.escape(message)}$"):
        check_finite(embeddings)
    with pytest.raises(IsbertError, match=r"^the model produced non-finite sentence vectors \(1 of 2 rows"):
        check_finite(np.array([[np.nan, 1.0], [1.0, 1.0]]), "sentence vectors")
    check_finite(np.zeros((3, 2)))  # zeros are finite


def test_half_precision_embeddings_are_compared_in_double_precision() -> None:
    """fp16 vectors of norm above 256 overflow when squared in fp16 (65504 is its largest value): the cosine must be
    computed after the conversion to float64, for a model run in half precision."""
    a = np.full((2, 4), 300.0, dtype=np.float16)
    b = np.array([[300.0, 300.0, 300.0, 300.0], [300.0, -300.0, 300.0, -300.0]], dtype=np.float16)
    np.testing.assert_allclose(cosine_rows(a, b), [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(cosine_rows(a.astype(np.float64), b), [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(cosine_rows(a, b.astype(np.float64)), [1.0, 0.0], atol=1e-12)


def test_zero_rows_get_exactly_zero_whatever_the_memory_held() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.normal(size=(64, 8))
        b = rng.normal(size=(64, 8))
        a[::2] = 0.0
        np.full(64, 7.0)  # a freed buffer of the result's size with non-zero bytes in it
        similarity = cosine_rows(a, b)
        assert np.all(similarity[::2] == 0.0)


def test_spearman_refuses_mismatched_lengths_with_its_own_error() -> None:
    with pytest.raises(IsbertError, match=r"^cannot correlate 3 predictions with 2 gold scores$"):
        spearman(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0]))
    undefined = "Spearman correlation is undefined (constant predictions or gold scores)"
    with pytest.raises(IsbertError, match=f"^{re.escape(undefined)}$"):
        spearman(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0]))


def test_pearson_known_values_and_nan_when_undefined() -> None:
    predicted, gold = np.array([1.0, 2.0, 3.0, 5.0]), np.array([2.0, 4.0, 7.0, 8.0])
    assert pearson(predicted, gold) == pytest.approx(100 * pearsonr(predicted, gold).statistic, rel=1e-12)
    assert pearson(predicted, -gold) == pytest.approx(-100 * pearsonr(predicted, gold).statistic, rel=1e-12)
    assert np.isnan(pearson(np.ones(4), gold))  # undefined: NaN in the report, not an error
    half = predicted.astype(np.float16) * 100, gold.astype(np.float16) * 100  # squares beyond fp16's range
    assert pearson(*half) == pytest.approx(pearson(predicted, gold), rel=1e-9)


def test_aggregate_reports_pearson_pooled_and_per_subset_and_refuses_nothing_to_score() -> None:
    a = (np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0]))
    b = (np.array([3.0, 1.0, 2.0, 4.0]), np.array([2.0, 1.0, 3.0, 4.0]))
    result = aggregate({"a": a, "b": b})
    pooled = np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])
    assert result["pearson"] == pytest.approx(100 * pearsonr(*pooled).statistic, rel=1e-12)
    for name, (predicted, gold) in {"a": a, "b": b}.items():
        assert set(result["subsets"][name]) == {"spearman", "pearson", "n"}
        assert result["subsets"][name]["pearson"] == pytest.approx(100 * pearsonr(predicted, gold).statistic)
    with pytest.raises(IsbertError, match=r"^no sub-dataset to score$"):
        aggregate({})


def test_record_receives_the_pooled_similarities_and_gold_scores_in_subset_order() -> None:
    vectors = {"a": [1.0, 0.0], "b": [1.0, 1.0], "c": [0.2, 1.0], "d": [-1.0, 0.5]}
    first = StsSubset(["a", "b"], ["b", "c"], np.array([4.0, 3.0]))
    second = StsSubset(["c", "d", "a"], ["d", "a", "a"], np.array([1.0, 0.5, 5.0]))
    task = StsTask("STS12", {"one": first, "two": second})
    recorded = []
    result = evaluate_sts(task, lambda batch: np.array([vectors[s] for s in batch]), lambda *got: recorded.append(got))
    ((similarity, gold),) = recorded
    expected = np.concatenate([cosine_rows(*(np.array([vectors[s] for s in side]) for side in (p.sentences1,
                                                                                               p.sentences2)))
                               for p in (first, second)])  # fmt: skip
    np.testing.assert_allclose(similarity, expected, rtol=1e-12)
    np.testing.assert_array_equal(gold, [4.0, 3.0, 1.0, 0.5, 5.0])
    assert similarity.dtype == gold.dtype == np.float64
    assert result["all"] == pytest.approx(spearman(similarity, gold))
