"""Correlation, aggregation and transfer classifiers on small inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from isbert.errors import IsbertError
from isbert.evaluation.sts import aggregate, cosine_rows, evaluate_sts, spearman
from isbert.evaluation.tasks import LabeledSplit, StsSubset, StsTask, TransferTask
from isbert.evaluation.transfer import TransferConfig, evaluate_transfer


def test_cosine_rows_known_values_and_zero_vector() -> None:
    a = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    b = np.array([[0.0, 2.0], [2.0, 2.0], [1.0, 0.0]])
    np.testing.assert_allclose(cosine_rows(a, b), [0.0, 1.0, 0.0])


def test_cosine_rows_rejects_nan() -> None:
    with pytest.raises(IsbertError, match="non-finite"):
        cosine_rows(np.array([[np.nan, 1.0]]), np.array([[1.0, 1.0]]))


def test_spearman_known_answers() -> None:
    assert spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) == pytest.approx(100.0)
    assert spearman(np.array([1, 2, 3, 4]), np.array([4, 3, 2, 1])) == pytest.approx(-100.0)
    # ranks (1,2,3) vs (1,3,2): 1 - 6*2/(3*8) = 0.5
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])) == pytest.approx(50.0)


def test_spearman_undefined_is_an_error() -> None:
    with pytest.raises(IsbertError, match="undefined"):
        spearman(np.ones(4), np.arange(4.0))


def test_aggregate_known_answer() -> None:
    # sub-dataset a: perfect (100), b: reversed (-100); pooled: preds 1,2,3,5,4 vs gold 1,2,3,4,5
    result = aggregate(
        {"a": (np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])), "b": (np.array([5.0, 4.0]), np.array([4.0, 5.0]))}
    )
    assert result["subsets"]["a"]["spearman"] == pytest.approx(100.0)
    assert result["subsets"]["b"]["spearman"] == pytest.approx(-100.0)
    assert result["mean"] == pytest.approx(0.0)
    assert result["wmean"] == pytest.approx((3 * 100 - 2 * 100) / 5)
    # ranks differ in the last two: 1 - 6*2/(5*24) = 0.9
    assert result["all"] == pytest.approx(90.0)
    assert result["spearman"] == result["all"]
    assert result["n"] == 5


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.floats(-1, 1), st.floats(0, 5)), min_size=3, max_size=20),
        min_size=1,
        max_size=4,
    )
)
def test_aggregate_invariants(parts: list[list[tuple[float, float]]]) -> None:
    arrays = {f"s{i}": (np.array([p for p, _ in part]), np.array([g for _, g in part])) for i, part in enumerate(parts)}
    try:
        result = aggregate(arrays)
    except IsbertError:  # a constant sub-dataset: undefined correlation is reported, not returned as NaN
        return
    pooled_pred = np.concatenate([p for p, _ in arrays.values()])
    pooled_gold = np.concatenate([g for _, g in arrays.values()])
    assert result["all"] == pytest.approx(100 * spearmanr(pooled_pred, pooled_gold).statistic)
    scores = [v["spearman"] for v in result["subsets"].values()]
    assert min(scores) - 1e-9 <= result["wmean"] <= max(scores) + 1e-9
    assert min(scores) - 1e-9 <= result["mean"] <= max(scores) + 1e-9
    if len(set(len(g) for _, g in arrays.values())) == 1:
        assert result["wmean"] == pytest.approx(result["mean"])


def _lookup(table: dict[str, np.ndarray]):
    return lambda sentences: np.stack([table[s] for s in sentences])


def test_evaluate_sts_single_file_task_has_no_breakdown() -> None:
    table = {"a": np.array([1.0, 0.0]), "b": np.array([0.9, 0.1]), "c": np.array([0.0, 1.0]), "d": np.array([0.5, 0.5])}
    subset = StsSubset(["a", "a", "a"], ["b", "c", "d"], np.array([5.0, 0.0, 2.5]))
    result = evaluate_sts(StsTask("STSBenchmark", {"STSBenchmark": subset}), _lookup(table))
    assert result["spearman"] == pytest.approx(100.0)
    assert "subsets" not in result and result["n"] == 3


def _separable(n: int, seed: int, noise: float = 0.3) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    vectors = rng.normal(size=(n, 4)) * noise
    vectors[:, 0] += np.where(labels == 1, 1.0, -1.0)
    texts = [f"s{seed}-{i}" for i in range(n)]
    return texts, labels, dict(zip(texts, vectors, strict=True))


@pytest.mark.parametrize("full", [False, True])
def test_transfer_cv_on_separable_data(full: bool) -> None:
    texts, labels, table = _separable(60, 0)
    task = TransferTask("MR", "cv", {"all": LabeledSplit(texts, labels)})
    result = evaluate_transfer(task, _lookup(table), TransferConfig(full=full))
    assert result["accuracy"] == pytest.approx(100.0)
    assert result["folds"] == (10 if full else 5)
    assert result["setting"] == ("full" if full else "fast")


def test_transfer_dev_and_kfold_protocols() -> None:
    splits = {}
    table: dict[str, np.ndarray] = {}
    for seed, name in enumerate(("train", "dev", "test")):
        texts, labels, part = _separable(40, seed)
        splits[name] = LabeledSplit(texts, labels)
        table |= part
    sst = evaluate_transfer(TransferTask("SST2", "dev", splits), _lookup(table))
    assert sst["accuracy"] == pytest.approx(100.0) and sst["n_test"] == 40
    trec = evaluate_transfer(
        TransferTask("TREC", "kfold", {"train": splits["train"], "test": splits["test"]}), _lookup(table)
    )
    assert trec["accuracy"] == pytest.approx(100.0) and trec["C"] in TransferConfig().grid


def test_transfer_pair_features_detect_paraphrases() -> None:
    rng = np.random.default_rng(1)
    table: dict[str, np.ndarray] = {}
    splits = {}
    for name in ("train", "test"):
        a, b, labels = [], [], []
        for i in range(40):
            u = rng.normal(size=4)
            same = i % 2
            v = u + rng.normal(size=4) * 0.05 if same else rng.normal(size=4) * 3
            table[f"{name}a{i}"], table[f"{name}b{i}"] = u, v
            a.append(f"{name}a{i}")
            b.append(f"{name}b{i}")
            labels.append(same)
        splits[name] = LabeledSplit(a, np.array(labels), texts_b=b)
    result = evaluate_transfer(TransferTask("MRPC", "kfold", splits), _lookup(table), TransferConfig(standardize=True))
    assert result["accuracy"] >= 90.0


def test_transfer_rejects_nan_embeddings() -> None:
    texts, labels, table = _separable(20, 0)
    table[texts[3]] = np.full(4, np.nan)
    with pytest.raises(IsbertError, match="non-finite"):
        evaluate_transfer(TransferTask("MR", "cv", {"all": LabeledSplit(texts, labels)}), _lookup(table))


def test_cosine_rows_rejects_nan_on_either_side() -> None:
    """Kills sts-second-side-unchecked: NaN in the second sentences' embeddings must not pass silently."""
    good, bad = np.array([[1.0, 1.0]]), np.array([[np.nan, 1.0]])
    for a, b in ((bad, good), (good, bad)):
        with pytest.raises(IsbertError, match="non-finite"):
            cosine_rows(a, b)
